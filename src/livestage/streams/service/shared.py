"""What the parts of the stream service share: go-live's configuration and result, and how a
browser joins a stream's room."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from livestage.config import Settings
from livestage.influencers.service import TokenPolicy
from livestage.kit.crypto import SecretBox
from livestage.models import Influencer, LiveStream, StreamStatus, StreamStrategy
from livestage.providers.base import JoinToken, StreamingProvider, WebhookTarget, browser_signalling
from livestage.streams.schemas import JoinInfo, TokenJoin


@dataclass(frozen=True, slots=True)
class GoLiveConfig:
    """Everything go-live needs from the app besides the database."""

    provider: StreamingProvider | None
    box: SecretBox
    token_policy: TokenPolicy
    broadcaster_role: str
    viewer_role: str
    auth_url: str
    webhook: WebhookTarget | None
    # The 100ms browser SDK the broadcast and watch pages load.
    sdk_url: str
    # Every provider call and retry of one go-live shares this budget.
    deadline_seconds: float
    # LIVESTAGE_PUBLIC_URL: HLS's recorder opens the stream's page there ("" : HLS cannot start).
    public_url: str = ""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        provider: StreamingProvider | None,
        box: SecretBox,
        token_policy: TokenPolicy,
        webhook: WebhookTarget | None,
    ) -> GoLiveConfig:
        return cls(
            provider=provider,
            box=box,
            token_policy=token_policy,
            broadcaster_role=settings.hms_broadcaster_role,
            viewer_role=settings.hms_viewer_role,
            auth_url=settings.hms_auth_url,
            webhook=webhook,
            sdk_url=settings.hms_sdk_url,
            deadline_seconds=settings.go_live_deadline_seconds,
            public_url=settings.public_url,
        )


@dataclass(frozen=True, slots=True)
class GoLiveResult:
    stream: LiveStream
    join: JoinInfo
    created: bool


# The provider's client stops at the go-live deadline by itself; this catches one that does not.
BACKSTOP_SECONDS = 1.0


def being_set_up(stream: LiveStream) -> bool:
    """A claim whose go-live has not recorded its room yet (every automatic stream has one)."""
    return claim_unset(stream.status, stream.strategy, stream.room_id)


def claim_unset(status: StreamStatus, strategy: StreamStrategy, room_id: str | None) -> bool:
    """`being_set_up` for a stream's columns read without the ORM."""
    return (
        status == StreamStatus.starting and strategy == StreamStrategy.automatic and room_id is None
    )


def token_join(provider: StreamingProvider, token: JoinToken, influencer: Influencer) -> JoinInfo:
    fields = provider_fields(provider, token.room_id)
    name = influencer.user.display_name
    return TokenJoin(token.token, token.role, token.room_id, token.user_id, name, fields).info()


def provider_fields(provider: StreamingProvider, room_id: str) -> dict[str, Any]:
    """How the browser reaches the provider: the 100ms SDK, or livestage's own signalling."""
    if (signalling := browser_signalling(provider)) is not None:
        return {
            "provider": signalling.name,
            "signal_url": signalling.signal_path(room_id),
            "ice_servers": signalling.ice_servers,
        }
    return {"provider": provider.name}
