from __future__ import annotations

from typing import Any

from livestage.models import LiveStream


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
