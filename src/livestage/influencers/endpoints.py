"""Admin JSON API for influencers: /api/admin/influencers/..."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from livestage.influencers.auth import ManagedInfluencer
from livestage.influencers.schemas import (
    InfluencerCreate,
    InfluencerCreated,
    InfluencerRead,
    RoomCodeSet,
    StreamingSet,
    TokenSet,
)
from livestage.influencers.service import influencer as influencer_service
from livestage.models import Influencer
from livestage.web.context import AppContext
from livestage.web.deps import ActorDep, Ctx, CurrentAdmin, DbSession, Now, ProviderDep

router = APIRouter(prefix="/api/admin/influencers", tags=["admin: influencers"])


async def _read(
    session: AsyncSession, ctx: AppContext, found: Influencer, now: datetime
) -> InfluencerRead:
    return await influencer_service.read_one(session, found, ctx.box, ctx.token_policy, now=now)


@router.get("")
async def list_influencers(
    _admin: CurrentAdmin, session: DbSession, ctx: Ctx, now: Now
) -> list[InfluencerRead]:
    return await influencer_service.list(session, ctx.box, ctx.token_policy, now=now)


@router.post("", status_code=201)
async def create_influencer(
    _admin: CurrentAdmin,
    session: DbSession,
    ctx: Ctx,
    now: Now,
    actor: ActorDep,
    body: InfluencerCreate,
) -> InfluencerCreated:
    created, password = await influencer_service.create(
        session,
        actor,
        email=body.email,
        name=body.name,
        handle=body.handle,
        password=body.password,
        now=now,
    )
    read = influencer_service.read(created, ctx.box, ctx.token_policy, now=now)
    return InfluencerCreated(**read.model_dump(), generated_password=password)


@router.get("/{influencer_id}")
async def get_influencer(
    found: ManagedInfluencer, session: DbSession, ctx: Ctx, now: Now
) -> InfluencerRead:
    return await _read(session, ctx, found, now)


@router.put("/{influencer_id}/token")
async def set_token(
    found: ManagedInfluencer,
    session: DbSession,
    ctx: Ctx,
    now: Now,
    actor: ActorDep,
    body: TokenSet,
) -> InfluencerRead:
    """Validate (structure, claims, expiry, signature when the secret is known), encrypt, store."""
    await influencer_service.set_token(
        session, actor, found, body.token, box=ctx.box, policy=ctx.token_policy, now=now
    )
    return await _read(session, ctx, found, now)


@router.delete("/{influencer_id}/token")
async def clear_token(
    found: ManagedInfluencer, session: DbSession, ctx: Ctx, now: Now, actor: ActorDep
) -> InfluencerRead:
    await influencer_service.clear_token(session, actor, found, now=now)
    return await _read(session, ctx, found, now)


@router.put("/{influencer_id}/room-code")
async def set_room_code(
    found: ManagedInfluencer,
    session: DbSession,
    ctx: Ctx,
    now: Now,
    actor: ActorDep,
    provider: ProviderDep,
    body: RoomCodeSet,
) -> InfluencerRead:
    await influencer_service.set_room_code(
        session, actor, found, body.code, provider=provider, now=now
    )
    return await _read(session, ctx, found, now)


@router.post("/{influencer_id}/room-code/generate")
async def generate_room_code(
    found: ManagedInfluencer,
    session: DbSession,
    ctx: Ctx,
    now: Now,
    actor: ActorDep,
    provider: ProviderDep,
) -> InfluencerRead:
    """Ask 100ms to create the room's codes and keep the broadcaster's."""
    await influencer_service.generate_room_code(
        session,
        actor,
        found,
        provider=provider,
        broadcaster_role=ctx.settings.hms_broadcaster_role,
        now=now,
    )
    return await _read(session, ctx, found, now)


@router.put("/{influencer_id}/streaming")
async def set_streaming(
    found: ManagedInfluencer,
    session: DbSession,
    ctx: Ctx,
    now: Now,
    actor: ActorDep,
    body: StreamingSet,
) -> InfluencerRead:
    await influencer_service.set_streaming_enabled(session, actor, found, body.enabled, now=now)
    return await _read(session, ctx, found, now)
