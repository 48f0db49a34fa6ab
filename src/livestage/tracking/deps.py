"""Where provider events come in, and how the webhook route finds it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from starlette.requests import HTTPConnection

from livestage.tracking.inbox import InboxWriter
from livestage.tracking.verification import WebhookPolicy
from livestage.tracking.worker import TrackingWorker


@dataclass(frozen=True, slots=True)
class Ingestion:
    """Where provider events come in: 100ms webhooks (checked against `policy`) and the local
    provider's lifecycle events. Each is stored once, durably, then the worker is woken."""

    policy: WebhookPolicy
    inbox: InboxWriter
    worker: TrackingWorker

    async def store(self, source: str, payload: dict[str, Any]) -> bool:
        """True when the event was new, False for a duplicate."""
        stored = await self.inbox.store(source, payload)
        if stored:
            self.worker.notify()
        return stored


def ingestion_of(connection: HTTPConnection) -> Ingestion:
    return cast(Ingestion, connection.app.state.livestage.ingestion)
