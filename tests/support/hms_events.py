"""100ms-shaped webhook envelopes for tests (reference §4.4–4.5), with consistent ids."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from livestage.kit.time import rfc3339


@dataclass
class SessionScript:
    room_id: str
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:24])
    room_name: str = "livestage-alice"
    started_at: datetime | None = None

    def envelope(self, kind: str, at: datetime, **data: Any) -> dict[str, Any]:
        base = {
            "room_id": self.room_id,
            "room_name": self.room_name,
            "session_id": self.session_id,
            "template_id": "t" * 24,
        }
        if self.started_at is not None:
            base["session_started_at"] = rfc3339(self.started_at)
        return {
            "version": "2.0",
            "id": str(uuid.uuid4()),
            "account_id": "a" * 24,
            "app_id": "b" * 24,
            "timestamp": rfc3339(at),
            "type": kind,
            "data": {**base, **data},
        }

    def open(self, at: datetime) -> dict[str, Any]:
        self.started_at = at
        return self.envelope("session.open.success", at)

    def close(self, at: datetime) -> dict[str, Any]:
        assert self.started_at is not None
        duration = int((at - self.started_at).total_seconds())
        return self.envelope(
            "session.close.success", at, session_stopped_at=rfc3339(at), session_duration=duration
        )

    def join(self, peer_id: str, user_id: str, role: str, at: datetime) -> dict[str, Any]:
        return self.envelope(
            "peer.join.success",
            at,
            peer_id=peer_id,
            user_id=user_id,
            user_name=user_id,
            role=role,
            joined_at=rfc3339(at),
            type="regular",
        )

    def leave(
        self,
        peer_id: str,
        user_id: str,
        role: str,
        joined: datetime,
        left: datetime,
        reason: str = "client request",
    ) -> dict[str, Any]:
        return self.envelope(
            "peer.leave.success",
            left,
            peer_id=peer_id,
            user_id=user_id,
            user_name=user_id,
            role=role,
            joined_at=rfc3339(joined),
            left_at=rfc3339(left),
            duration=int((left - joined).total_seconds()),
            reason=reason,
            type="regular",
        )


def visit(
    script: SessionScript, user_id: str, role: str, joined: datetime, seconds: float
) -> list[dict[str, Any]]:
    """A peer's join and leave events."""
    peer = str(uuid.uuid4())
    left = joined + timedelta(seconds=seconds)
    return [
        script.join(peer, user_id, role, joined),
        script.leave(peer, user_id, role, joined, left),
    ]
