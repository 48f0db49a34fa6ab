"""Helpers for the tests of one migration's data on both databases: an empty database to take
up and down, its statements run with livestage's engine, and the schema compared with the
models."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from livestage.config import Settings
from livestage.db import create_engine
from livestage.models import Base
from tests.support.fixtures import _psql
from tests.support.postgres import PostgresServer


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, not migrated."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"migrations_{uuid.uuid4().hex[:12]}"
    _psql(server, f"CREATE DATABASE {name}")
    yield server.url(name)
    _psql(server, f"DROP DATABASE {name} WITH (FORCE)")


def run(url: str, *statements: Any) -> list[list[Any]]:
    """Each statement in one transaction (SQLite with livestage's pragmas: foreign keys on);
    the rows each returned."""

    async def execute() -> list[list[Any]]:
        engine = create_engine(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
        try:
            async with engine.begin() as connection:
                results = [await connection.execute(s) for s in statements]
                return [list(r.all()) if r.returns_rows else [] for r in results]
        finally:
            await engine.dispose()

    return asyncio.run(execute())


def index_names(url: str, table: str) -> set[str]:
    """The names of the table's indexes in the database."""

    async def names() -> set[str]:
        engine = create_engine(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: {str(i["name"]) for i in inspect(sync).get_indexes(table)}
                )
        finally:
            await engine.dispose()

    return asyncio.run(names())


def schema_differences(url: str) -> list[Any]:
    """What Alembic finds between the database's schema and the models (types aside)."""

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
