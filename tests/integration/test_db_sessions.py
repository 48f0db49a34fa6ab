"""Read sessions next to SQLite's one writer: they must neither wait for it nor block it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import exc, text

from livestage.config import Settings
from livestage.db import (
    WalCheckpoints,
    create_engine,
    create_read_sessionmaker,
    create_sessionmaker,
    transaction,
)
from livestage.kit.tasks import uncancelled
from tests.support.fixtures import make_settings

pytestmark = pytest.mark.asyncio


async def test_a_read_session_answers_while_a_write_transaction_is_open(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None, env="test", database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    )
    engine = create_engine(settings)
    try:
        writes = create_sessionmaker(engine)
        async with transaction(writes) as session:
            await session.execute(text("CREATE TABLE t (n INTEGER)"))
            await session.execute(text("INSERT INTO t VALUES (1)"))
        async with transaction(writes) as writer:
            # The writer holds SQLite's write lock (BEGIN IMMEDIATE) from here on.
            await writer.execute(text("INSERT INTO t VALUES (2)"))
            async with create_read_sessionmaker(engine)() as reader:
                seen = await asyncio.wait_for(reader.scalar(text("SELECT count(*) FROM t")), 1)
            assert seen == 1  # the committed row; the open transaction's is not visible
        async with create_read_sessionmaker(engine)() as reader:
            assert await reader.scalar(text("SELECT count(*) FROM t")) == 2
    finally:
        await engine.dispose()


async def test_a_stopped_writer_never_leaves_sqlites_write_lock_held(tmp_path: Path) -> None:
    """Cancelling a transaction midway (twice: a stop, then a shutdown's timeout) made
    SQLAlchemy abandon the driver connection with its transaction open, so the next writer
    waited out the busy timeout: the background loops run each transaction `uncancelled`."""
    path = tmp_path / "db.sqlite"
    settings = Settings(_env_file=None, env="test", database_url=f"sqlite+aiosqlite:///{path}")
    engine = create_engine(settings)
    writes = create_sessionmaker(engine)

    reads = 0

    async def insert_then_read() -> None:
        nonlocal reads
        async with transaction(writes) as session:
            await session.execute(text("INSERT INTO t VALUES (1)"))
            for _ in range(20):
                await session.execute(text("SELECT count(*) FROM t"))
                reads += 1

    try:
        async with transaction(writes) as session:
            await session.execute(text("CREATE TABLE t (n INTEGER)"))
        for attempt in range(20):
            reads = 0
            stopped = asyncio.create_task(uncancelled(insert_then_read()))
            # Stopped at its start or after 1-4 of its 20 reads, however fast the machine: a
            # fixed sleep of up to 4 ms let a fast run finish first.
            await asyncio.sleep(0)
            while reads < attempt % 5:
                await asyncio.sleep(0)
            stopped.cancel()
            await asyncio.sleep(0)
            stopped.cancel()
            with pytest.raises(asyncio.CancelledError):
                await stopped
            other = sqlite3.connect(path, timeout=0)  # no busy wait: the lock is free or not
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
            finally:
                other.close()
        async with create_read_sessionmaker(engine)() as reader:
            assert await reader.scalar(text("SELECT count(*) FROM t")) == 20  # none cut short
    finally:
        await engine.dispose()


async def _write_pages(engine: Any, megabytes: int) -> None:
    async with transaction(create_sessionmaker(engine)) as session:
        await session.execute(text("CREATE TABLE IF NOT EXISTS blobs (b BLOB)"))
        for _ in range(megabytes):
            await session.execute(text("INSERT INTO blobs VALUES (randomblob(1048576))"))


@pytest.mark.parametrize("background", [False, True])
async def test_a_served_apps_commits_leave_sqlites_checkpoints_to_the_background(
    tmp_path: Path, background: bool
) -> None:
    """SQLite checkpoints inside the commit that crosses 1,000 logged pages (4 MB): the data
    reaches the database file at once. With background checkpoints the commit only logs it,
    and `WalCheckpoints` copies it back after its pause."""
    path = tmp_path / "db.sqlite"
    settings = Settings(_env_file=None, env="test", database_url=f"sqlite+aiosqlite:///{path}")
    engine = create_engine(settings, background_checkpoints=background)
    checkpoints = WalCheckpoints(engine, pause_seconds=0.05)
    try:
        await _write_pages(engine, 6)
        megabytes = path.stat().st_size / 2**20
        if not background:
            assert megabytes > 5  # the commit checkpointed
            return
        assert megabytes < 1  # the commit only logged it
        checkpoints.start()
        await _write_pages(engine, 1)
        for _ in range(100):
            if path.stat().st_size / 2**20 > 6:
                break
            await asyncio.sleep(0.05)
        assert path.stat().st_size / 2**20 > 6
    finally:
        await checkpoints.stop()
        await engine.dispose()


class _RecordedCheckpoints(WalCheckpoints):
    """Keeps the log's length (in pages) each pass found: it falls only when the log started
    over."""

    logged: list[int]

    async def checkpoint(self) -> tuple[int, int, int]:
        busy, logged, copied = await super().checkpoint()
        self.logged.append(logged)
        return busy, logged, copied


@pytest.mark.parametrize("restart_pages", [1024, 10**9])
async def test_background_checkpoints_restart_the_log_under_a_writer_that_never_pauses(
    tmp_path: Path, restart_pages: int
) -> None:
    """A writer that begins its next transaction as soon as one commits (almost) never leaves
    SQLite the moment to start the log over: with PASSIVE passes alone (a limit never reached)
    the log grows by what was written. Once it holds `restart_pages` (here 4 MB), the pass
    under the write gate lets the next writer start it over: 80 MB written, a log file of
    12-14 MB on a quiet machine (23-49 MB under heavy load: how much is written between two
    checkpoints)."""
    path = tmp_path / "db.sqlite"
    settings = Settings(_env_file=None, env="test", database_url=f"sqlite+aiosqlite:///{path}")
    engine = create_engine(settings, background_checkpoints=True)
    checkpoints = _RecordedCheckpoints(engine, pause_seconds=0.02, restart_pages=restart_pages)
    checkpoints.logged = []
    log = Path(f"{path}-wal")
    largest = 0.0
    try:
        checkpoints.start()
        for _ in range(80):
            await _write_pages(engine, 1)
            largest = max(largest, log.stat().st_size / 2**20)
        seen = checkpoints.logged
        restarts = sum(1 for before, after in zip(seen, seen[1:], strict=False) if after < before)
        if restart_pages > 10**6:
            # A PASSIVE pass that happens to catch up between two writes lets SQLite start the
            # log over by itself: rare (once in some runs on a loaded machine), and never often
            # enough to bound it. One such restart leaves at least half the writes in one log.
            assert restarts <= 1
            assert largest > 38
        else:
            assert restarts >= 1
            assert largest < 75
    finally:
        await checkpoints.stop()
        await engine.dispose()


async def test_read_sessions_hold_no_transaction_open(database_url: str) -> None:
    """Read sessions run in autocommit: no BEGIN before their statements and no ROLLBACK
    after (two of a PostgreSQL read's three round trips); write sessions still begin one."""
    engine = create_engine(make_settings(database_url))
    try:
        for sessions, transactional in (
            (create_read_sessionmaker(engine), False),
            (create_sessionmaker(engine), True),
        ):
            async with sessions() as session:
                assert await session.scalar(text("SELECT 1")) == 1
                raw = await (await session.connection()).get_raw_connection()
                driver: Any = raw.driver_connection
                is_open = (
                    driver.in_transaction
                    if engine.dialect.name == "sqlite"
                    else driver.is_in_transaction()
                )
                assert is_open is transactional
    finally:
        await engine.dispose()


async def test_a_sqlite_connection_returned_mid_transaction_is_rolled_back(tmp_path: Path) -> None:
    """The pool rolls back only connections with a transaction open on the driver (after a
    commit there is none, and the rollback was a hop to aiosqlite's thread for nothing)."""
    settings = Settings(
        _env_file=None, env="test", database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    )
    engine = create_engine(settings)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            await session.execute(text("CREATE TABLE t (n INTEGER)"))
        async with engine.connect() as connection:
            driver: Any = (await connection.get_raw_connection()).driver_connection
            await driver.execute("BEGIN IMMEDIATE")
            await driver.execute("INSERT INTO t VALUES (1)")
        assert not driver.in_transaction
        async with create_read_sessionmaker(engine)() as reader:
            assert await reader.scalar(text("SELECT count(*) FROM t")) == 0
    finally:
        await engine.dispose()


async def test_a_sqlite_statement_is_one_call_on_the_drivers_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each statement runs, fetches and closes its cursor in one call on aiosqlite's thread
    (SQLAlchemy's adapter made four), and SQLAlchemy still gets everything a cursor tells."""
    settings = Settings(
        _env_file=None, env="test", database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    )
    engine = create_engine(settings)
    calls: list[str] = []
    queue_call = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await queue_call(self, fn, *args, **kwargs)

    try:
        writes = create_sessionmaker(engine)
        async with transaction(writes) as session:
            await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)"))
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        async with transaction(writes) as session:
            inserted = await session.execute(text("INSERT INTO t (n) VALUES (7)"))
            assert inserted.lastrowid == 1
            await session.execute(text("INSERT INTO t (n) VALUES (:n)"), [{"n": 8}, {"n": 9}])
            changed = await session.execute(text("UPDATE t SET n = n + 1 WHERE n > 7"))
            assert changed.rowcount == 2
            returned = await session.execute(
                text("UPDATE t SET n = 0 WHERE id = 1 RETURNING id, n")
            )
            assert list(returned.keys()) == ["id", "n"] and returned.all() == [(1, 0)]
        # BEGIN IMMEDIATE, four statements, the commit: one call each.
        assert len(calls) == 6, calls
        async with create_read_sessionmaker(engine)() as reader:
            rows = await reader.execute(text("SELECT n FROM t ORDER BY id"))
            assert rows.scalars().all() == [0, 9, 10]
            with pytest.raises(exc.OperationalError, match="no such table"):
                await reader.execute(text("SELECT * FROM missing"))
        async with transaction(writes) as session:
            with pytest.raises(exc.IntegrityError):
                await session.execute(text("INSERT INTO t (id, n) VALUES (1, 1)"))
    finally:
        await engine.dispose()
