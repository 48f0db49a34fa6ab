"""livestage as a separate OS process, and what it stored, read back from its database.

- `AppProcess`: `python -m uvicorn livestage.app:create_app --factory` on 127.0.0.1:`port`,
  configured only by `LIVESTAGE_*` environment variables (nothing of the test's environment
  leaks in); `start()` waits for `/healthz`, `kill()` is SIGKILL (a crash), `stop()` a SIGTERM.
- `migrated_sqlite(path)`: a fresh SQLite file built by Alembic; its URL.
- `read_stream`, `read_events`: the stored stream record (figures, peers, per-minute series) and
  the inbox rows, through a plain read-only engine (no `BEGIN IMMEDIATE`, so reading never
  takes SQLite's write lock away from the app under test).
- `expected_from_ground_truth`: the emulator's ground truth in the same shape as `read_stream`.
- `seed_influencer`, `seed_stream`: the rows a test starts from, written by the services (or
  the models) in one transaction, before or beside the app under test.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from livestage import migrate
from livestage.audit.service import Actor
from livestage.config import Settings
from livestage.db import create_engine, create_sessionmaker, transaction
from livestage.influencers.service import influencer as influencer_service
from livestage.kit.time import parse_rfc3339, utc_now
from livestage.models import (
    LiveStream,
    ProviderEvent,
    StreamPeer,
    StreamStatus,
    StreamStrategy,
    ViewerSample,
)

START_TIMEOUT = 30.0

# (peer_id, user_id, role, joined_at, left_at)
PeerRow = tuple[str, str, str, datetime | None, datetime | None]


def free_port() -> int:
    """A loopback port nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def migrated_sqlite(path: Path) -> str:
    url = f"sqlite+aiosqlite:///{path}"
    migrate.upgrade(url)
    return url


def app_environment(**settings: object) -> dict[str, str]:
    """The process environment: the test's, minus every `LIVESTAGE_*`, plus `settings` as
    `LIVESTAGE_<NAME>` variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESTAGE_")}
    env.update({f"LIVESTAGE_{k.upper()}": str(v) for k, v in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


class AppProcess:
    """One uvicorn process serving livestage; several may run one after another on one port."""

    def __init__(self, env: Mapping[str, str], *, port: int, workdir: Path) -> None:
        self.env, self.port, self.workdir = dict(env), port, workdir
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_path: Path | None = None
        self.returncode: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self) -> AppProcess:
        assert self._process is None, "an AppProcess starts once; make a new one to restart"
        self._log_path = self.workdir / f"uvicorn-{self.port}-{uuid.uuid4().hex[:8]}.log"
        self._log = self._log_path.open("wb")
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "livestage.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "2",
        ]
        self._process = subprocess.Popen(
            command, env=self.env, cwd=self.workdir, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._healthy():
            if self._process.poll() is not None:
                self._reap()
                raise RuntimeError(f"livestage exited on start:\n{self.output()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"livestage did not start in {START_TIMEOUT} s:\n{self.output()}"
                )
            time.sleep(0.05)
        return self

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no lifespan; what the kernel keeps is what survives."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._reap()

    def _reap(self) -> None:
        if self._process is not None:
            self.returncode = self._process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def output(self) -> str:
        return self.log_text()[-5000:]

    def log_text(self) -> str:
        """Everything the process has written to stdout and stderr so far."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text(errors="replace")


# Reading what livestage stored.


@dataclass(frozen=True)
class StoredEvent:
    external_id: str
    type: str
    processed_at: datetime | None
    attempts: int
    error: str | None
    stream_id: uuid.UUID | None


@dataclass(frozen=True)
class StoredStream:
    id: uuid.UUID
    status: str
    session_id: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    facts: dict[str, Any]
    peers: frozenset[PeerRow]
    peer_rows: int
    samples: list[tuple[datetime, int]]


async def read_events(url: str) -> list[StoredEvent]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(
                    ProviderEvent.external_id,
                    ProviderEvent.type,
                    ProviderEvent.processed_at,
                    ProviderEvent.attempts,
                    ProviderEvent.error,
                    ProviderEvent.stream_id,
                )
            )
            return [StoredEvent(*row) for row in rows]
    finally:
        await engine.dispose()


async def read_stream(url: str, stream_id: uuid.UUID) -> StoredStream:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            stream = (
                await connection.execute(select(LiveStream).where(LiveStream.id == stream_id))
            ).one()
            peers = list(
                await connection.execute(
                    select(
                        StreamPeer.peer_id,
                        StreamPeer.user_id,
                        StreamPeer.role,
                        StreamPeer.joined_at,
                        StreamPeer.left_at,
                    ).where(StreamPeer.stream_id == stream_id)
                )
            )
            samples = list(
                await connection.execute(
                    select(ViewerSample.minute, ViewerSample.viewers)
                    .where(ViewerSample.stream_id == stream_id)
                    .order_by(ViewerSample.minute)
                )
            )
    finally:
        await engine.dispose()
    return StoredStream(
        id=stream.id,
        status=str(stream.status),
        session_id=stream.session_id,
        created_at=stream.created_at,
        started_at=stream.started_at,
        ended_at=stream.ended_at,
        end_reason=stream.end_reason,
        facts={
            "peak_viewers": stream.peak_viewers,
            "unique_viewers": stream.unique_viewers,
            "total_watch_seconds": stream.total_watch_seconds,
            "avg_watch_seconds": stream.avg_watch_seconds,
            "duration_seconds": stream.duration_seconds,
            "current_viewers": stream.current_viewers,
        },
        peers=frozenset(tuple(row) for row in peers),  # type: ignore[misc]
        peer_rows=len(peers),
        samples=[(minute, viewers) for minute, viewers in samples],
    )


def _time(value: str | None) -> datetime | None:
    return None if value is None else parse_rfc3339(value)


@dataclass(frozen=True)
class Expected:
    """The emulator's ground truth of one closed session, shaped like `StoredStream`."""

    session_id: str
    started_at: datetime
    ended_at: datetime
    facts: dict[str, Any]
    peers: frozenset[PeerRow]
    samples: list[tuple[datetime, int]]


def expected_from_ground_truth(truth: Mapping[str, Any]) -> Expected:
    assert truth["active"] is False, "compare a closed session"
    unique = truth["unique_viewers"]
    total = truth["total_watch_seconds"]
    started, ended = _time(truth["started_at"]), _time(truth["ended_at"])
    assert started is not None and ended is not None
    return Expected(
        session_id=truth["session_id"],
        started_at=started,
        ended_at=ended,
        facts={
            "peak_viewers": truth["peak_viewers"],
            "unique_viewers": unique,
            "total_watch_seconds": total,
            "avg_watch_seconds": total / unique if unique else 0.0,
            "duration_seconds": truth["duration_seconds"],
            "current_viewers": 0,
        },
        peers=frozenset(
            (p["peer_id"], p["user_id"], p["role"], _time(p["joined_at"]), _time(p["left_at"]))
            for p in truth["peers"]
        ),
        samples=[(parse_rfc3339(m["minute"]), m["viewers"]) for m in truth["per_minute_peak"]],
    )


# Writing the rows a test starts from (before the app runs, or beside it).


@dataclass(frozen=True)
class SeededInfluencer:
    id: uuid.UUID
    handle: str
    email: str
    password: str


async def seed_influencer(url: str, handle: str) -> SeededInfluencer:
    """An influencer (streaming enabled) created by the same service the admin UI uses."""
    settings = Settings(_env_file=None, database_url=url)
    engine = create_engine(settings)
    password = secrets.token_urlsafe(12)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            created, _ = await influencer_service.create(
                session,
                Actor(None, "test"),
                email=f"{handle}@example.com",
                name=handle.title(),
                handle=handle,
                password=password,
                now=utc_now(),
            )
            return SeededInfluencer(created.id, handle, f"{handle}@example.com", password)
    finally:
        await engine.dispose()


async def seed_stream(
    url: str,
    influencer_id: uuid.UUID,
    *,
    room_id: str,
    created_at: datetime,
    status: StreamStatus = StreamStatus.starting,
    peers: Sequence[StreamPeer] = (),
) -> uuid.UUID:
    """A 100ms stream row as go-live leaves it (room created, nobody joined yet)."""
    settings = Settings(_env_file=None, database_url=url)
    engine = create_engine(settings)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            stream = LiveStream(
                influencer_id=influencer_id,
                provider="hms",
                strategy=StreamStrategy.automatic,
                status=status,
                title="Seeded",
                description="",
                room_id=room_id,
                room_name=f"livestage-{room_id[:8]}",
                room_codes={},
                created_at=created_at,
                started_at=created_at if status == StreamStatus.live else None,
            )
            session.add(stream)
            await session.flush()
            for peer in peers:
                peer.stream_id = stream.id
                session.add(peer)
            return stream.id
    finally:
        await engine.dispose()


class ServeProcess:
    """`livestage serve` itself, as a deployer starts it (the CLI's own choices included), in a
    process group of its own so its workers stop with it."""

    def __init__(self, env: Mapping[str, str], *, workdir: Path, workers: int = 1) -> None:
        self.port = free_port()
        self.log_path = workdir / f"serve-{self.port}.log"
        livestage = Path(sys.executable).with_name("livestage")
        command = [str(livestage), "serve", "--port", str(self.port), "--workers", str(workers)]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                env=dict(env),
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, path: str = "/readyz", timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(self.log_path.read_text(errors="replace"))
            try:
                if httpx.get(f"{self.base_url}{path}", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"not ready:\n{self.log_path.read_text(errors='replace')}")

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
