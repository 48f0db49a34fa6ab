"""Shared fixtures: databases built by Alembic (SQLite and a real PostgreSQL), the app, clients."""

from __future__ import annotations

import itertools
import secrets
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from livestage import migrate
from livestage.accounts import totp
from livestage.accounts.service import account as account_service
from livestage.app import AppState, create_app
from livestage.audit.service import Actor
from livestage.config import Settings
from livestage.db import create_engine, create_sessionmaker, transaction
from livestage.influencers.service import influencer as influencer_service
from livestage.models import Influencer
from tests.support.postgres import PostgresServer, start_postgres
from tests.support.redis import RedisServer, start_redis


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


_redis_databases = itertools.cycle(range(1, 64))


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """An empty Redis database of the session's server (a deployment of its own: livestage
    names its pub/sub channels after the database)."""
    database = next(_redis_databases)
    redis_server.flush(database)
    return redis_server.url(database)


def _psql(server: PostgresServer, sql: str) -> None:
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(server.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-c",
            sql,
        ],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> str:
    _psql(postgres_server, "CREATE DATABASE livestage_template")
    migrate.upgrade(postgres_server.url("livestage_template"))
    return "livestage_template"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database per test, on each backend (copied from a migrated template)."""
    if request.param == "sqlite":
        path = tmp_path / "livestage.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        path.unlink(missing_ok=True)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    template = request.getfixturevalue("postgres_template")
    name = f"test_{uuid.uuid4().hex[:12]}"
    _psql(server, f"CREATE DATABASE {name} TEMPLATE {template}")
    yield server.url(name)
    # Kept, the databases of a full run fill gigabytes of the disk CI runs on.
    _psql(server, f"DROP DATABASE {name} WITH (FORCE)")


@pytest_asyncio.fixture
async def sessionmaker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on `database_url`, as the app makes them, without the app."""
    engine = create_engine(Settings(_env_file=None, database_url=database_url))
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "database_url": database_url,
        "secret_key": secrets.token_urlsafe(32),
        "log_level": "WARNING",
    }
    return Settings(_env_file=None, **{**values, **overrides})


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to configure the app (e.g. 100ms credentials)."""
    return {}


@pytest.fixture
def settings(database_url: str, settings_overrides: dict[str, Any]) -> Settings:
    return make_settings(database_url, **settings_overrides)


@pytest.fixture
def provider() -> Any:
    """The provider the app uses; None means "whatever the settings build"."""
    return None


@pytest_asyncio.fixture
async def app(settings: Settings, clock: FakeClock, provider: Any) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock=clock, provider=provider)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def ctx(app: FastAPI) -> AppState:
    return AppState.of(app)


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        yield c


@dataclass
class AdminAccount:
    email: str
    password: str
    totp_secret: str
    id: uuid.UUID = field(default_factory=uuid.uuid4)

    def code(self, now: datetime) -> str:
        return totp.code_at(self.totp_secret, now)


@dataclass
class InfluencerAccount:
    email: str
    password: str
    handle: str
    id: uuid.UUID


async def create_admin(ctx: AppState, email: str = "root@example.com") -> AdminAccount:
    password = secrets.token_urlsafe(12)
    async with transaction(ctx.database.sessionmaker) as session:
        new = await account_service.create_admin(
            session, ctx.box, email=email, password=password, name="Root"
        )
    return AdminAccount(new.user.email, password, new.totp_secret, new.user.id)


async def create_influencer(
    ctx: AppState, handle: str = "alice", **fields: Any
) -> InfluencerAccount:
    password = secrets.token_urlsafe(12)
    async with transaction(ctx.database.sessionmaker) as session:
        created, _ = await influencer_service.create(
            session,
            Actor(None, None),
            email=f"{handle}@example.com",
            name=handle.title(),
            handle=handle,
            password=password,
            now=ctx.clock(),
        )
        for name, value in fields.items():
            setattr(created, name, value)
    return InfluencerAccount(f"{handle}@example.com", password, handle, created.id)


async def load_influencer(ctx: AppState, influencer_id: uuid.UUID) -> Influencer:
    async with transaction(ctx.database.sessionmaker) as session:
        return await influencer_service.get(session, influencer_id)


@pytest_asyncio.fixture
async def admin(ctx: AppState) -> AdminAccount:
    return await create_admin(ctx)


async def csrf_token(client: httpx.AsyncClient) -> str:
    response = await client.get("/api/auth/csrf")
    token: str = response.json()["csrf_token"]
    return token


async def login_admin(client: httpx.AsyncClient, account: AdminAccount, clock: FakeClock) -> str:
    """Sign in through the JSON API; returns the session's CSRF token."""
    token = await csrf_token(client)
    response = await client.post(
        "/api/auth/login",
        json={
            "email": account.email,
            "password": account.password,
            "totp_code": account.code(clock()),
            "role": "admin",
        },
        headers={"x-csrf-token": token},
    )
    assert response.status_code == 200, response.text
    session_csrf: str = response.json()["csrf_token"]
    client.headers["x-csrf-token"] = session_csrf
    return session_csrf


async def login_influencer(client: httpx.AsyncClient, account: InfluencerAccount) -> str:
    token = await csrf_token(client)
    response = await client.post(
        "/api/auth/login",
        json={"email": account.email, "password": account.password, "role": "influencer"},
        headers={"x-csrf-token": token},
    )
    assert response.status_code == 200, response.text
    session_csrf: str = response.json()["csrf_token"]
    client.headers["x-csrf-token"] = session_csrf
    return session_csrf


@pytest_asyncio.fixture
async def admin_client(
    client: httpx.AsyncClient, admin: AdminAccount, clock: FakeClock
) -> httpx.AsyncClient:
    await login_admin(client, admin, clock)
    return client
