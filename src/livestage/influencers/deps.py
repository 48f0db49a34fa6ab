"""Dependencies of the admin routes on influencers, shared by the pages and the JSON API.

`AdminActions` is the one path of each admin action: the validated body (the same schema for a
form and for JSON) goes to the service with this request's session, actor, clock, provider and
configuration. The pages and the API differ only in how they answer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, cast

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from livestage.accounts.auth import ActorDep, CurrentAdmin
from livestage.audit.service import Actor
from livestage.influencers.schemas import (
    InfluencerCreate,
    InfluencerCreated,
    InfluencerRead,
    RoomCodeSet,
    StreamingSet,
    TokenSet,
)
from livestage.influencers.service import TokenPolicy
from livestage.influencers.service import influencer as influencer_service
from livestage.kit.crypto import SecretBox
from livestage.models import Influencer
from livestage.providers.base import StreamingProvider
from livestage.web.deps import DbSession, Now, ProviderDep


@dataclass(frozen=True, slots=True)
class InfluencerConfig:
    box: SecretBox
    token_policy: TokenPolicy
    broadcaster_role: str


async def get_influencer_config(connection: HTTPConnection) -> InfluencerConfig:
    return cast(InfluencerConfig, connection.app.state.livestage.influencers)


InfluencerConfigDep = Annotated[InfluencerConfig, Depends(get_influencer_config)]


async def get_managed_influencer(
    _admin: CurrentAdmin, session: DbSession, influencer_id: uuid.UUID
) -> Influencer:
    """The influencer named in the path; admins only."""
    return await influencer_service.get(session, influencer_id)


ManagedInfluencer = Annotated[Influencer, Depends(get_managed_influencer)]


@dataclass(frozen=True, slots=True)
class AdminActions:
    session: AsyncSession
    actor: Actor
    config: InfluencerConfig
    provider: StreamingProvider | None
    now: datetime

    @property
    def provider_name(self) -> str:
        """Which provider Start Streaming uses here: the pages show 100ms's controls for it."""
        return self.provider.name if self.provider is not None else "none"

    async def list(self) -> list[InfluencerRead]:
        config = self.config
        return await influencer_service.list(
            self.session, config.box, config.token_policy, now=self.now
        )

    async def read(self, found: Influencer) -> InfluencerRead:
        config = self.config
        return await influencer_service.read_one(
            self.session, found, config.box, config.token_policy, now=self.now
        )

    async def create(self, body: InfluencerCreate) -> InfluencerCreated:
        created, password = await influencer_service.create(
            self.session,
            self.actor,
            email=body.email,
            name=body.name,
            handle=body.handle,
            password=body.password or None,
            now=self.now,
        )
        view = influencer_service.read(
            created, self.config.box, self.config.token_policy, now=self.now
        )
        return InfluencerCreated(**view.model_dump(), generated_password=password)

    async def set_token(self, found: Influencer, body: TokenSet) -> None:
        """Validate (structure, claims, expiry, signature when the secret is known), encrypt,
        store."""
        await influencer_service.set_token(
            self.session,
            self.actor,
            found,
            body.token,
            box=self.config.box,
            policy=self.config.token_policy,
            now=self.now,
        )

    async def clear_token(self, found: Influencer) -> None:
        await influencer_service.clear_token(self.session, self.actor, found, now=self.now)

    async def set_room_code(self, found: Influencer, body: RoomCodeSet) -> None:
        await influencer_service.set_room_code(
            self.session, self.actor, found, body.code, provider=self.provider, now=self.now
        )

    async def generate_room_code(self, found: Influencer) -> None:
        """Ask 100ms to create the room's codes and keep the broadcaster's."""
        await influencer_service.generate_room_code(
            self.session,
            self.actor,
            found,
            provider=self.provider,
            broadcaster_role=self.config.broadcaster_role,
            now=self.now,
        )

    async def set_streaming(self, found: Influencer, body: StreamingSet) -> None:
        await influencer_service.set_streaming_enabled(
            self.session, self.actor, found, body.enabled, now=self.now
        )


async def get_admin_actions(
    _admin: CurrentAdmin,
    session: DbSession,
    actor: ActorDep,
    config: InfluencerConfigDep,
    provider: ProviderDep,
    now: Now,
) -> AdminActions:
    return AdminActions(session, actor, config, provider, now)


Actions = Annotated[AdminActions, Depends(get_admin_actions)]
