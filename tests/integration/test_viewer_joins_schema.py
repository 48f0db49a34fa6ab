"""The join intents' table after 9e1b7c4d2a60 (an integer key, no foreign key checked per row),
on both databases: the rows already recorded are kept in the order they were requested, a
stream's joins still go with the stream, deleted directly or with its influencer, and the
migration goes back down."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from bench.seed import seed_live_streams
from sqlalchemy import Uuid, column, delete, insert, select, table, text

from livestage import migrate
from livestage.config import Settings
from livestage.db import create_engine
from livestage.kit.db import UTCDateTime
from livestage.models import Base, Influencer, LiveStream
from tests.support.fixtures import _psql
from tests.support.postgres import PostgresServer

BEFORE = "3c8f1d6a9e42"
AT = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
COLUMNS = (column("stream_id", Uuid()), column("viewer_id"), column("requested_at", UTCDateTime()))
OLD_TABLE = table("viewer_joins", column("id", Uuid()), *COLUMNS)
NEW_TABLE = table("viewer_joins", *(column(c.name, c.type) for c in COLUMNS))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"migrations_{uuid.uuid4().hex[:12]}"
    _psql(server, f"CREATE DATABASE {name}")
    yield server.url(name)
    _psql(server, f"DROP DATABASE {name} WITH (FORCE)")


def _run(url: str, *statements: Any) -> list[list[Any]]:
    """Each statement in one transaction (SQLite with livestage's pragmas: foreign keys on);
    the rows each returned."""

    async def run() -> list[list[Any]]:
        engine = create_engine(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
        try:
            async with engine.begin() as connection:
                results = [await connection.execute(s) for s in statements]
                return [list(r.all()) if r.returns_rows else [] for r in results]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _stream_ids(url: str) -> list[Any]:
    (rows,) = _run(url, select(LiveStream.id).order_by(LiveStream.room_id))
    return [r[0] for r in rows]


def _joins(url: str) -> list[tuple[Any, ...]]:
    (rows,) = _run(url, text("SELECT id, stream_id, viewer_id FROM viewer_joins ORDER BY id"))
    return [tuple(r) for r in rows]


def test_the_joins_recorded_before_are_kept_in_the_order_requested(empty_database: str) -> None:
    url = empty_database
    migrate.upgrade(url)
    seed_live_streams(url, 2)  # by today's models, then down to the schema of the joins below
    command.downgrade(migrate.alembic_config(url), BEFORE)
    first, second = _stream_ids(url)
    rows = [(second, "viewer-late", 2), (first, "viewer-early", 0), (first, "viewer-mid", 1)]
    _run(
        url,
        insert(OLD_TABLE).values(
            [
                {
                    "id": uuid.uuid4(),
                    "stream_id": s,
                    "viewer_id": v,
                    "requested_at": AT + n * SECOND,
                }
                for s, v, n in rows
            ]
        ),
    )

    migrate.upgrade(url)

    kept = _joins(url)
    assert [(r[2]) for r in kept] == ["viewer-early", "viewer-mid", "viewer-late"]
    assert [r[0] for r in kept] == sorted(r[0] for r in kept)
    assert all(isinstance(r[0], int) for r in kept)
    assert _schema_differences(url) == []

    migrate.upgrade(url, BEFORE)  # down again: the same joins, each with a key of its own
    assert sorted(r[2] for r in _joins(url)) == ["viewer-early", "viewer-late", "viewer-mid"]


def test_a_streams_joins_go_with_it(empty_database: str) -> None:
    url = empty_database
    migrate.upgrade(url)
    seed_live_streams(url, 3)
    deleted, of_deleted_influencer, kept = _stream_ids(url)
    _run(
        url,
        insert(NEW_TABLE).values(
            [
                {"stream_id": s, "viewer_id": f"viewer-{n}", "requested_at": AT}
                for n, s in enumerate((deleted, of_deleted_influencer, kept))
            ]
        ),
    )
    (influencer,) = _run(
        url, select(LiveStream.influencer_id).where(LiveStream.id == of_deleted_influencer)
    )[0]

    _run(
        url,
        delete(LiveStream).where(LiveStream.id == deleted),
        delete(Influencer).where(Influencer.id == influencer[0]),
    )

    assert [r[2] for r in _joins(url)] == ["viewer-2"]


def _schema_differences(url: str) -> list[Any]:
    async def compare() -> list[Any]:
        engine = create_engine(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": False}),
                        Base.metadata,
                    )
                )
        finally:
            await engine.dispose()

    return asyncio.run(compare())
