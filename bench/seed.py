"""Scenario data written straight into a migrated database (SQLite or PostgreSQL) through the
models, so the bench measures serving, not set-up."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from livestage.accounts.passwords import hash_password
from livestage.config import Settings
from livestage.db import create_engine, create_sessionmaker, transaction
from livestage.kit.time import utc_now
from livestage.models import (
    AuditLog,
    Influencer,
    LiveStream,
    StreamPeer,
    StreamStatus,
    StreamStrategy,
    User,
    UserRole,
)

CHUNK = 5000


@dataclass(frozen=True)
class LiveChannel:
    handle: str
    room_id: str


def seed_live_streams(database_url: str, count: int, prefix: str = "live") -> list[LiveChannel]:
    """`count` influencers, each with a live stream on the hms provider."""
    return asyncio.run(_seed(database_url, count, prefix))


async def _seed(database_url: str, count: int, prefix: str) -> list[LiveChannel]:
    settings = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
    engine = create_engine(settings)
    now = utc_now()
    channels = [LiveChannel(f"{prefix}{i}", secrets.token_hex(12)) for i in range(count)]
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            for channel in channels:
                user = User(
                    email=f"{channel.handle}@bench.test",
                    display_name=channel.handle,
                    password_hash="not-a-password",
                    role=UserRole.influencer,
                )
                influencer = Influencer(
                    user=user, handle=channel.handle, hms_room_id=channel.room_id
                )
                session.add(
                    LiveStream(
                        influencer=influencer,
                        provider="hms",
                        strategy=StreamStrategy.automatic,
                        status=StreamStatus.live,
                        title="bench",
                        room_id=channel.room_id,
                        started_at=now,
                    )
                )
    finally:
        await engine.dispose()
    return channels


def seed_crowd(database_url: str, history: int) -> LiveChannel:
    """One live stream whose audience already holds `history` peers, each joined and left over
    its last two hours: a big creator's stream, every recompute of which reads them all."""
    return asyncio.run(_seed_crowd(database_url, history))


async def _seed_crowd(database_url: str, history: int) -> LiveChannel:
    (channel,) = await _seed(database_url, 1, "crowd")
    settings = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
    engine = create_engine(settings)
    began = utc_now() - timedelta(hours=2)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            stream = await session.scalar(
                select(LiveStream).where(LiveStream.room_id == channel.room_id)
            )
            assert stream is not None
            stream.started_at = began
            peers = [
                {
                    "id": uuid.uuid4(),
                    "stream_id": stream.id,
                    "peer_id": f"h{i}",
                    "user_id": f"past-viewer-{i}",
                    "role": "viewer",
                    "joined_at": began + timedelta(milliseconds=50 * i),
                    "left_at": began + timedelta(milliseconds=50 * i, minutes=1),
                    "leave_reason": "left",
                }
                for i in range(history)
            ]
            for chunk in range(0, len(peers), CHUNK):
                await session.execute(insert(StreamPeer), peers[chunk : chunk + CHUNK])
        await _analyze(engine)
    finally:
        await engine.dispose()
    return channel


@dataclass(frozen=True)
class History:
    """One creator's streams (the newest with a crowd of peers) and an audit log, at `rows`."""

    handle: str
    email: str
    password: str
    stream_id: str


def seed_history(database_url: str, rows: int) -> History:
    """One creator with `rows` streams, the newest with `rows - 1` peers, and `rows - 1` audit
    entries, with Core inserts (the ORM's bookkeeping would dominate at 100,000 rows)."""
    return asyncio.run(_seed_history(database_url, rows))


async def _seed_history(url: str, rows: int) -> History:
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    engine = create_engine(settings)
    now = utc_now()
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            password = secrets.token_urlsafe(12)
            user = User(
                email="growth@bench.test",
                display_name="growth",
                password_hash=hash_password(password),
                role=UserRole.influencer,
            )
            influencer = Influencer(user=user, handle="growth")
            newest = LiveStream(
                influencer=influencer,
                provider="hms",
                strategy=StreamStrategy.automatic,
                status=StreamStatus.ended,
                title="the crowd",
                created_at=now,
            )
            session.add(newest)
            await session.flush()
            history = History("growth", user.email, password, str(newest.id))
            stream_id, influencer_id = newest.id, influencer.id
            count = rows - 1
            start = now - timedelta(days=30)
            streams = [
                {
                    "id": uuid.uuid4(),
                    "influencer_id": influencer_id,
                    "provider": "hms",
                    "strategy": StreamStrategy.automatic,
                    "status": StreamStatus.ended,
                    "title": "old",
                    "created_at": start - timedelta(seconds=1 + i),
                    "updated_at": start,
                }
                for i in range(count)
            ]
            peers = [
                {
                    "id": uuid.uuid4(),
                    "stream_id": stream_id,
                    "peer_id": f"p{1 + i}",
                    "user_id": f"viewer-{1 + i}",
                    "name": f"Viewer {1 + i}",
                    "role": "viewer",
                    "joined_at": now - timedelta(seconds=1 + i),
                }
                for i in range(count)
            ]
            audit = [
                {
                    "id": uuid.uuid4(),
                    "created_at": start - timedelta(seconds=1 + i),
                    "action": "x",
                }
                for i in range(count)
            ]
            tables: list[tuple[Any, list[dict[str, Any]]]] = [
                (LiveStream.__table__, streams),
                (StreamPeer.__table__, peers),
                (AuditLog.__table__, audit),
            ]
            for table, values in tables:
                for chunk in range(0, len(values), CHUNK):
                    await session.execute(insert(cast(Table, table)), values[chunk : chunk + CHUNK])
            # The figures stay what the stream row says: the page never counts its peers.
            await session.execute(
                update(LiveStream).where(LiveStream.id == stream_id).values(unique_viewers=rows)
            )
        await _analyze(engine)
    finally:
        await engine.dispose()
    return history


async def _analyze(engine: AsyncEngine) -> None:
    """The database as it stands between bulk loads: statistics as autovacuum would have them
    after this many inserts (it runs on its own schedule, so a bench that measures at once
    would see plans for an empty table). On PostgreSQL also vacuumed and checkpointed, so that
    autovacuum and the checkpointer do not work through the load while the bench measures, on
    the server's core (not shown to move a figure: the runs it was tried in were noisier)."""
    if engine.dialect.name != "postgresql":
        async with engine.connect() as connection:
            await connection.execute(text("ANALYZE"))
            await connection.commit()
        return
    async with engine.connect() as connection:
        settled = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await settled.execute(text("VACUUM (ANALYZE)"))
        await settled.execute(text("CHECKPOINT"))
