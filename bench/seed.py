"""Scenario data written straight into a migrated database (SQLite or PostgreSQL) through the
models, so the bench measures serving, not set-up."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from livestage.config import Settings
from livestage.db import create_engine, create_sessionmaker, transaction
from livestage.kit.time import utc_now
from livestage.models import Influencer, LiveStream, StreamStatus, StreamStrategy, User, UserRole


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
