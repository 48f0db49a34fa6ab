"""Where provider events come in, and the dependency the webhook route reads it from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import Depends
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


async def get_ingestion(connection: HTTPConnection) -> Ingestion:
    return cast(Ingestion, connection.app.state.livestage.ingestion)


IngestionDep = Annotated[Ingestion, Depends(get_ingestion)]
