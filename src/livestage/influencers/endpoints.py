"""Admin JSON API for influencers: /api/admin/influencers/..."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from livestage.influencers.schemas import (
    InfluencerCreate,
    InfluencerCreated,
    InfluencerRead,
    RoomCodeSet,
    StreamingSet,
    TokenSet,
)
from livestage.influencers.service import influencer as influencer_service
from livestage.web.deps import ActorDep, Ctx, CurrentAdmin, DbSession, Now, ProviderDep

router = APIRouter(prefix="/api/admin/influencers", tags=["admin: influencers"])


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
    _admin: CurrentAdmin, session: DbSession, ctx: Ctx, now: Now, influencer_id: uuid.UUID
) -> InfluencerRead:
    found = await influencer_service.get(session, influencer_id)
    return await influencer_service.read_one(session, found, ctx.box, ctx.token_policy, now=now)


@router.put("/{influencer_id}/token")
async def set_token(
    _admin: CurrentAdmin,
    session: DbSession,
    ctx: Ctx,
    now: Now,
    actor: ActorDep,
    influencer_id: uuid.UUID,
    body: TokenSet,
) -> InfluencerRead:
    found = await influencer_service.get(session, influencer_id)
    await influencer_service.set_token(
        session, actor, found, body.token, box=ctx.box, policy=ctx.token_policy, now=now
    )
    return await influencer_service.read_one(session, found, ctx.box, ctx.token_policy, now=now)


@router.delete("/{influencer_id}/token")
async def clear_token(
    _admin: CurrentAdmin,
    session: DbSession,
    ctx: Ctx,
    now: Now,
    actor: ActorDep,
    influencer_id: uuid.UUID,
) -> InfluencerRead:
    found = await influencer_service.get(session, influencer_id)
    await influencer_service.clear_token(session, actor, found, now=now)
    return await influencer_service.read_one(session, found, ctx.box, ctx.token_policy, now=now)


@router.put("/{influencer_id}/room-code")
async def set_room_code(
    _admin: CurrentAdmin,
    session: DbSession,
    ctx: Ctx,
    now: Now,
    actor: ActorDep,
    provider: ProviderDep,
    influencer_id: uuid.UUID,
    body: RoomCodeSet,
) -> InfluencerRead:
    found = await influencer_service.get(session, influencer_id)
    await influencer_service.set_room_code(
        session, actor, found, body.code, provider=provider, now=now
    )
    return await influencer_service.read_one(session, found, ctx.box, ctx.token_policy, now=now)


@router.post("/{influencer_id}/room-code/generate")
async def generate_room_code(
    _admin: CurrentAdmin,
    session: DbSession,
    ctx: Ctx,
    now: Now,
    actor: ActorDep,
    provider: ProviderDep,
    influencer_id: uuid.UUID,
) -> InfluencerRead:
    found = await influencer_service.get(session, influencer_id)
    await influencer_service.generate_room_code(
        session,
        actor,
        found,
        provider=provider,
        broadcaster_role=ctx.settings.hms_broadcaster_role,
        now=now,
    )
    return await influencer_service.read_one(session, found, ctx.box, ctx.token_policy, now=now)


@router.put("/{influencer_id}/streaming")
async def set_streaming(
    _admin: CurrentAdmin,
    session: DbSession,
    ctx: Ctx,
    now: Now,
    actor: ActorDep,
    influencer_id: uuid.UUID,
    body: StreamingSet,
) -> InfluencerRead:
    found = await influencer_service.get(session, influencer_id)
    await influencer_service.set_streaming_enabled(session, actor, found, body.enabled, now=now)
    return await influencer_service.read_one(session, found, ctx.box, ctx.token_policy, now=now)
