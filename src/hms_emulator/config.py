"""Emulator settings. Everything has a throwaway default except the credentials."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def new_object_id() -> str:
    """24 hex characters, the shape 100ms uses for rooms, templates, sessions and beams."""
    return secrets.token_hex(12)


@dataclass(frozen=True)
class WebhookChaos:
    """Chaos delivery: each event goes out `duplicates_min`..`duplicates_max` times, each copy
    after a random delay in [0, `max_delay_seconds`]. A seed makes the plan reproducible."""

    duplicates_min: int = 1
    duplicates_max: int = 3
    max_delay_seconds: float = 0.5
    seed: int | None = None


@dataclass
class EmulatorConfig:
    access_key: str
    app_secret: str
    customer_id: str = field(default_factory=new_object_id)
    app_id: str = field(default_factory=new_object_id)
    default_template_id: str = field(default_factory=new_object_id)
    default_template_name: str = "livestage-default"
    webhook_url: str | None = None
    webhook_headers: Mapping[str, str] = field(default_factory=dict)
    webhook_retry_delays: tuple[float, ...] = (1.0, 3.0, 10.0)
    webhook_timeout_seconds: float = 5.0
    webhook_chaos: WebhookChaos | None = None
    # 100ms replays at 10 events/s; None replays as fast as the sender goes.
    replay_events_per_second: float | None = 10.0
    # Only HIPAA workspaces sign webhooks on the real service; None keeps the header off.
    hipaa_signature_secret: str | None = None
    # How long a live stream stays `starting` (and `stopping`) before the next state + webhook.
    hls_transition_seconds: float = 1.0
    # 100ms stops a room's live stream this long after its last peer left (reason `last peer
    # left`), unless someone joined again meanwhile.
    hls_idle_stop_seconds: float = 300.0
    # A `timeout` fault without `seconds` holds the request this long (past any client timeout).
    timeout_fault_seconds: float = 30.0
    auth_token_ttl_seconds: int = 24 * 3600
    clock: Clock = system_clock
    # Tests hand in an httpx.MockTransport so webhook delivery needs no socket.
    webhook_transport: httpx.AsyncBaseTransport | None = None
