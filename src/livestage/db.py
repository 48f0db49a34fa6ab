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

    Read-only sessions (`create_read_sessionmaker`) begin DEFERRED: in WAL mode they never
    wait for the writer, where IMMEDIATE would put them in the busy handler's unfair queue."""
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


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


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        engine = create_async_engine(settings.database_url, connect_args={"timeout": 15})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _begin_immediate)
        return engine
    engine = create_async_engine(settings.database_url, pool_size=10)
    event.listen(engine.sync_engine.pool, "checkin", _note_return)
    event.listen(engine.sync_engine.pool, "checkout", _ping_if_idle)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def create_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads outside a request's transaction (the viewer join's lookups); they
    must not write."""
    return create_sessionmaker(engine.execution_options(**{READ_ONLY: True}))


@dataclass(frozen=True, slots=True)
class Database:
    """The engine and its two kinds of session, built once by the app's lifespan."""

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    read_sessionmaker: async_sessionmaker[AsyncSession]

    @classmethod
    def open(cls, settings: Settings) -> Database:
        engine = create_engine(settings)
        return cls(engine, create_sessionmaker(engine), create_read_sessionmaker(engine))

    async def aclose(self) -> None:
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
