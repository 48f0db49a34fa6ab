"""Read sessions next to SQLite's one writer: they must neither wait for it nor block it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from livestage.config import Settings
from livestage.db import create_engine, create_read_sessionmaker, create_sessionmaker, transaction

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
