"""The stream service: going live (go_live.py), marking live and ending (ending.py), watching
(watching.py), one object, `stream`, for the routes; its errors in errors.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from livestage.errors import NotFound
from livestage.streams.service.ending import Ending, EndService
from livestage.streams.service.errors import (
    Banned,
    NoActiveStream,
    ProviderUnavailable,
    RoomCodeRequired,
    StartInterrupted,
    StillSettingUp,
    StreamFull,
    StreamingDisabled,
)
from livestage.streams.service.go_live import GoLiveService
from livestage.streams.service.shared import GoLiveConfig, GoLiveResult
from livestage.streams.service.watching import WatchService

__all__ = [
    "Banned",
    "Ending",
    "GoLiveConfig",
    "GoLiveResult",
    "NoActiveStream",
    "ProviderUnavailable",
    "RoomCodeRequired",
    "StartInterrupted",
    "StillSettingUp",
    "StreamFull",
    "StreamService",
    "StreamingDisabled",
    "read_live_state",
    "stream",
]


class StreamService(GoLiveService, EndService, WatchService):
    pass


stream = StreamService()


async def read_live_state(
    reads: async_sessionmaker[AsyncSession], handle: str
) -> dict[str, Any] | None:
    """What a page watching `handle` shows now, read in a session of its own; None for an
    unknown handle."""
    async with reads() as session:
        try:
            return await stream.live_state(session, handle)
        except NotFound:
            return None
