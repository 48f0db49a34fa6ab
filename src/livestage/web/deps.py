"""Request dependencies every domain shares: the transaction, the clock, the provider.

Each reads one part of what the app's lifespan built once (`app.state`, see `app.py`); the
domains' own dependencies live in their packages (`accounts/auth.py`, `streams/deps.py`, ...).
Dependencies are `async def` even when they never await: FastAPI runs plain `def` ones in a
worker thread, a round trip that cost every request more than the work itself (bench/)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, cast

from fastapi import Depends
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from livestage.db import Database, transaction
from livestage.kit.time import Clock
from livestage.providers.base import StreamingProvider


async def get_database(connection: HTTPConnection) -> Database:
    return cast(Database, connection.app.state.livestage.database)


DatabaseDep = Annotated[Database, Depends(get_database)]


async def get_db_session(database: DatabaseDep) -> AsyncIterator[AsyncSession]:
    """One transaction per request: commit on success, roll back on error."""
    async with transaction(database.sessionmaker) as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]


async def get_read_sessions(database: DatabaseDep) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads that must not wait behind a writer (and never write)."""
    return database.read_sessionmaker


ReadSessions = Annotated[async_sessionmaker[AsyncSession], Depends(get_read_sessions)]


def clock_of(connection: HTTPConnection) -> Clock:
    return cast(Clock, connection.app.state.livestage.clock)


async def get_now(connection: HTTPConnection) -> datetime:
    return clock_of(connection)()


Now = Annotated[datetime, Depends(get_now)]


async def get_provider(connection: HTTPConnection) -> StreamingProvider | None:
    return cast(StreamingProvider | None, connection.app.state.livestage.provider)


ProviderDep = Annotated[StreamingProvider | None, Depends(get_provider)]


def client_ip(connection: HTTPConnection) -> str | None:
    return connection.client.host if connection.client else None


async def get_redis(connection: HTTPConnection) -> Redis | None:
    """The cluster's Redis; None when livestage runs as one process."""
    return cast(Redis | None, connection.app.state.livestage.redis)


RedisDep = Annotated[Redis | None, Depends(get_redis)]
