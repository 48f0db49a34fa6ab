"""Engine and sessions: one transaction per request, job or CLI command; services never commit.

A request that calls a provider holds no transaction across the call (on SQLite it would hold
the one write lock for everyone): go-live opens short ones itself, through `transaction`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import structlog
from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from livestage.config import Settings
from livestage.errors import LivestageError
from livestage.kit.db import discard_after_commit, run_after_commit
from livestage.kit.sqlite_driver import one_hop_dbapi
from livestage.kit.tasks import STOP_SECONDS, cancel_all, uncancelled

log = structlog.get_logger()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # We issue BEGIN ourselves (below); the driver's implicit BEGIN would be DEFERRED.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


READ_ONLY = "livestage_read_only"


def _begin_immediate(connection: Any) -> None:
    """SQLite has one writer. A DEFERRED transaction that reads and then writes fails at once
    with "database is locked" when another writer got in between; IMMEDIATE takes the write
    lock up front, so concurrent requests and the worker wait (busy_timeout) instead.

    Read-only sessions (`create_read_sessionmaker`) begin nothing: each statement reads on
    its own, and in WAL mode never waits for the writer, where IMMEDIATE would put them in the
    busy handler's unfair queue."""
    if not connection.get_execution_options().get(READ_ONLY, False):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


# A pooled connection left unused this long is pinged before it is handed out: the server may
# have restarted or dropped it meanwhile (the pool then opens a new one). One in steady use is
# not: a ping is three round trips on asyncpg (BEGIN, ";", ROLLBACK), which were three of a chat
# post's eight (bench/results/NOTES.md). A connection that fails in use is discarded with the
# pool's older ones, as SQLAlchemy does after any disconnect.
IDLE_PING_SECONDS = 1.0
_RETURNED_AT = "livestage_returned_at"


def _note_return(_dbapi_connection: Any, record: Any) -> None:
    record.info[_RETURNED_AT] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    returned_at = record.info.get(_RETURNED_AT)
    if returned_at is None or time.monotonic() - returned_at < IDLE_PING_SECONDS:
        return  # just opened, or in steady use
    try:
        dbapi_connection.ping()
    except Exception as error:
        # The pool discards this connection and checks out another (its documented protocol).
        raise exc.DisconnectionError(str(error)) from error


# 64 MB of 4 KB pages: past this the background checkpoints make room for the log to start over.
WAL_RESTART_PAGES = 16384


def _no_automatic_checkpoints(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    # When the log starts over, a file grown past this is cut back to it.
    cursor.execute(f"PRAGMA journal_size_limit={WAL_RESTART_PAGES * 4096}")
    cursor.close()


def _roll_back_if_open(dbapi_connection: Any, _record: Any, state: Any) -> None:
    """The pool's reset of a returned SQLite connection, only when a transaction is open: the
    pool's own rolls back every connection not returned by a rollback, a hop to the driver's
    thread after every commit (two of a go-live's ~31)."""
    if state.asyncio_safe and dbapi_connection.driver_connection.in_transaction:
        dbapi_connection.rollback()


def create_engine(settings: Settings, *, background_checkpoints: bool = False) -> AsyncEngine:
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url,
            module=one_hop_dbapi(),
            connect_args={"timeout": 15},
            pool_reset_on_return=None,
        )
        event.listen(engine.sync_engine.pool, "reset", _roll_back_if_open)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        if background_checkpoints:
            event.listen(engine.sync_engine, "connect", _no_automatic_checkpoints)
        event.listen(engine.sync_engine, "begin", _begin_immediate)
        return engine
    engine = create_async_engine(settings.database_url, pool_size=10)
    event.listen(engine.sync_engine.pool, "checkin", _note_return)
    event.listen(engine.sync_engine.pool, "checkout", _ping_if_idle)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def create_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads outside a request's transaction (the viewer join's lookups, the
    signed-in session of every request); they must not write. They run in autocommit: no
    BEGIN and ROLLBACK around their statements (two of a PostgreSQL read's three round
    trips), and each statement sees what was committed when it began."""
    options: dict[str, Any] = {READ_ONLY: True}
    if engine.dialect.name != "sqlite":
        options["isolation_level"] = "AUTOCOMMIT"
    return create_sessionmaker(engine.execution_options(**options))


class WalCheckpoints:
    """SQLite copies its write-ahead log back into the database file (a checkpoint, with an
    fsync) inside whichever commit crosses 1,000 logged pages: every hundredth go-live's
    commit took 20-30 ms instead of 1 (bench/results/NOTES.md). A served app turns that off
    (`background_checkpoints`) and checkpoints here instead, on a connection of its own, at
    most once a `pause_seconds`, after commits. PASSIVE: it waits for no reader or writer, and
    none waits for it.

    A PASSIVE pass alone cannot bound the log. SQLite writes it from the start again only when
    a transaction begins after a checkpoint copied all of it, and a writer that always has one
    open (the worker draining a backlog) never lets that happen: the log grew from 51 to 215 MB
    over three drains. So once the log holds `restart_pages`, one more pass runs under the
    write gate, between two transactions, and the next writer starts the log over. Before it,
    another pass outside the gate copies what was committed during the first, so the gated one
    has little left but its fsyncs: it held the gate 25-106 ms, every 2.5 s under the bench's
    webhook flood. Gating every pass cost that flood 15-25 % of its rate."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        pause_seconds: float = 1.0,
        restart_pages: int = WAL_RESTART_PAGES,
    ) -> None:
        self._engine = engine
        self._pause_seconds = pause_seconds
        self._restart_pages = restart_pages
        self._committed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        event.listen(engine.sync_engine, "commit", self._note_commit)

    def _note_commit(self, _connection: Any) -> None:
        self._committed.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sqlite-wal-checkpoints")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_all([self._task], timeout=STOP_SECONDS, what="WAL checkpoints")
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._committed.wait()
            await asyncio.sleep(self._pause_seconds)
            self._committed.clear()
            try:
                await uncancelled(self._checkpoint_and_restart())
            except Exception:
                log.exception("db.checkpoint_failed")

    async def _checkpoint_and_restart(self) -> None:
        _busy, logged, _copied = await self.checkpoint()
        if logged >= self._restart_pages:
            await self.checkpoint()  # what was committed during the first pass
            began = time.monotonic()
            async with write_gate(self._engine):
                gated = time.monotonic()
                await self.checkpoint()
            log.debug(
                "db.log_restart",
                pages=logged,
                waited_ms=round((gated - began) * 1000, 1),
                held_ms=round((time.monotonic() - gated) * 1000, 1),
            )

    async def checkpoint(self) -> tuple[int, int, int]:
        """(busy, pages in the log, pages copied back), as SQLite reports them."""
        # On the driver's connection: SQLAlchemy's would begin a transaction (`_begin_immediate`),
        # inside which SQLite refuses to checkpoint.
        async with self._engine.connect() as connection:
            raw = await connection.get_raw_connection()
            assert raw.driver_connection is not None
            async with raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)") as cursor:
                busy, logged, copied = await cursor.fetchone()
            return busy, logged, copied


@dataclass(frozen=True, slots=True)
class Database:
    """The engine and its two kinds of session, built once by the app's lifespan; on SQLite,
    the log's checkpoints run in the background (`WalCheckpoints`)."""

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    read_sessionmaker: async_sessionmaker[AsyncSession]
    checkpoints: WalCheckpoints | None = None

    @classmethod
    def open(cls, settings: Settings) -> Database:
        engine = create_engine(settings, background_checkpoints=settings.is_sqlite)
        checkpoints = WalCheckpoints(engine) if settings.is_sqlite else None
        return cls(
            engine, create_sessionmaker(engine), create_read_sessionmaker(engine), checkpoints
        )

    def start(self) -> None:
        if self.checkpoints is not None:
            self.checkpoints.start()

    async def aclose(self) -> None:
        if self.checkpoints is not None:
            await self.checkpoints.stop()
        await self.engine.dispose()


_gates: WeakKeyDictionary[AsyncEngine, asyncio.Lock] = WeakKeyDictionary()


def write_gate(engine: AsyncEngine | None) -> AbstractAsyncContextManager[object]:
    """SQLite allows one writer, and its busy handler is not fair: a busy worker can starve
    requests. Transactions on a SQLite engine therefore queue on one FIFO lock per engine;
    PostgreSQL needs no gate."""
    if engine is None or engine.dialect.name != "sqlite":
        return nullcontext()
    gate = _gates.get(engine)
    if gate is None:
        gate = _gates[engine] = asyncio.Lock()
    return gate


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """Commit when the block succeeds, roll back when it raises (but commit when the error
    says the changes made so far must stay, `LivestageError.keeps_changes`)."""
    async with write_gate(sessionmaker.kw.get("bind")), sessionmaker() as session:
        try:
            yield session
        except LivestageError as error:
            await (session.commit() if error.keeps_changes else session.rollback())
            discard_after_commit(session)
            raise
        except BaseException:
            await session.rollback()
            discard_after_commit(session)
            raise
        else:
            await session.commit()
            run_after_commit(session)
