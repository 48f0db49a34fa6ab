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
from starlette.requests import HTTPConnection, Request

from livestage.accounts.auth import (
    SESSION_COOKIE,
    ActorDep,
    CurrentAdmin,
    NotSignedIn,
    signed_in_session,
)
from livestage.audit.service import Actor
from livestage.db import Database
from livestage.errors import Forbidden
from livestage.influencers.schemas import (
    InfluencerCreate,
    InfluencerCreated,
    InfluencerPage,
    InfluencerRead,
    RoomCodeSet,
    StreamingSet,
    TokenSet,
)
from livestage.influencers.service import TokenPolicy
from livestage.influencers.service import influencer as influencer_service
from livestage.kit.crypto import SecretBox, csrf_token_of
from livestage.models import Influencer, UserRole
from livestage.providers.base import StreamingProvider
from livestage.web.deps import (
    DatabaseDep,
    DbSession,
    Now,
    ProviderDep,
    ReadSessions,
    client_ip,
)
from livestage.web.templating import SignedIn


@dataclass(frozen=True, slots=True)
class InfluencerConfig:
    box: SecretBox
    token_policy: TokenPolicy
    broadcaster_role: str
    # The room-code actions' 100ms calls stop here (LIVESTAGE_GO_LIVE_DEADLINE_SECONDS).
    deadline_seconds: float = 12.0


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

    async def list(self, *, limit: int, cursor: str | None = None) -> InfluencerPage:
        config = self.config
        return await influencer_service.list(
            self.session, config.box, config.token_policy, now=self.now, limit=limit, cursor=cursor
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


async def get_admin_by_reads(request: Request, reads: ReadSessions, now: Now) -> Actor:
    """The signed-in admin, read in a read-only session of its own: for the actions that call
    100ms, which open their own short transactions (no request transaction may stay open
    across a provider call)."""
    record = await signed_in_session(request, reads, now)
    if record is None:
        raise NotSignedIn(UserRole.admin)
    user = record.user
    if user.role != UserRole.admin:
        raise Forbidden(f"This page is for {UserRole.admin.value}s only.")
    raw = request.cookies.get(SESSION_COOKIE, "")
    request.state.signed_in = SignedIn(
        user.email, user.role.value, user.display_name, csrf_token_of(raw)
    )
    return Actor(user, client_ip(request))


ReadAdmin = Annotated[Actor, Depends(get_admin_by_reads)]


@dataclass(frozen=True, slots=True)
class RoomCodeActions:
    """The admin actions on room codes, which ask 100ms: like `AdminActions`, the one path of
    each for the pages and the API, but with no request transaction (see `get_admin_by_reads`)."""

    database: Database
    actor: Actor
    config: InfluencerConfig
    provider: StreamingProvider | None
    now: datetime

    @property
    def provider_name(self) -> str:
        return self.provider.name if self.provider is not None else "none"

    async def find(self, influencer_id: uuid.UUID) -> Influencer:
        async with self.database.read_sessionmaker() as session:
            return await influencer_service.get(session, influencer_id)

    async def read(self, found: Influencer) -> InfluencerRead:
        """`found` as stored now."""
        config = self.config
        async with self.database.read_sessionmaker() as session:
            fresh = await influencer_service.get(session, found.id, reload=True)
            return await influencer_service.read_one(
                session, fresh, config.box, config.token_policy, now=self.now
            )

    async def set_room_code(self, found: Influencer, body: RoomCodeSet) -> None:
        await influencer_service.set_room_code(
            self.database,
            self.actor,
            found.id,
            body.code,
            provider=self.provider,
            deadline_seconds=self.config.deadline_seconds,
            now=self.now,
        )

    async def generate_room_code(self, found: Influencer) -> None:
        """Ask 100ms to create the room's codes and keep the broadcaster's."""
        await influencer_service.generate_room_code(
            self.database,
            self.actor,
            found,
            provider=self.provider,
            broadcaster_role=self.config.broadcaster_role,
            deadline_seconds=self.config.deadline_seconds,
            now=self.now,
        )


async def get_room_code_actions(
    actor: ReadAdmin,
    database: DatabaseDep,
    config: InfluencerConfigDep,
    provider: ProviderDep,
    now: Now,
) -> RoomCodeActions:
    return RoomCodeActions(database, actor, config, provider, now)


RoomCodeActionsDep = Annotated[RoomCodeActions, Depends(get_room_code_actions)]


async def get_room_code_target(actions: RoomCodeActionsDep, influencer_id: uuid.UUID) -> Influencer:
    """The influencer named in the path, read with no transaction open; admins only."""
    return await actions.find(influencer_id)


RoomCodeTarget = Annotated[Influencer, Depends(get_room_code_target)]
