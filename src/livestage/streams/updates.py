"""What open pages are told when a stream changes, and when they are told."""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from livestage.kit.db import on_commit
from livestage.models import LiveStream
from livestage.streams.broker import LiveBroker


def live_update(stream: LiveStream) -> dict[str, Any]:
    """What open pages are told when a stream changes (no secrets, no tokens)."""
    return {
        "stream_id": str(stream.id),
        "handle": stream.influencer.handle,
        "status": str(stream.status),
        "viewers": stream.current_viewers,
        "peak": stream.peak_viewers,
        "title": stream.title,
        "started_at": stream.started_at.isoformat() if stream.started_at else None,
        "ended_at": stream.ended_at.isoformat() if stream.ended_at else None,
    }


def announce(session: AsyncSession, broker: LiveBroker, stream: LiveStream) -> None:
    """Tell open pages about the change once it is committed."""
    update = live_update(stream)
    on_commit(session, partial(broker.publish, update["handle"], update))
