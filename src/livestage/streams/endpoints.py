"""Streams JSON API: go live, end, current; public live list and viewer join."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import JSONResponse, Response

from livestage.influencers.auth import ManagedInfluencer
from livestage.kit.db import on_commit
from livestage.models import LiveStream
from livestage.streams.schemas import (
    CurrentStream,
    GoLiveRequest,
    GoLiveResponse,
    JoinInfo,
    LiveEntry,
    RoomCodeGoLiveRequest,
    StreamRead,
)
from livestage.streams.service import GoLiveResult
from livestage.streams.service import stream as stream_service
from livestage.tracking.updates import live_update
from livestage.web.context import AppContext
from livestage.web.deps import (
    ActorDep,
    Ctx,
    CurrentInfluencer,
    DbSession,
    Now,
    ProviderDep,
)

router = APIRouter(prefix="/api", tags=["streams"])


def stream_read(stream: LiveStream) -> StreamRead:
    return StreamRead.model_validate(
        {
            **{c: getattr(stream, c) for c in StreamRead.model_fields if c != "handle"},
            "handle": stream.influencer.handle,
        }
    )


def announce(session: AsyncSession, ctx: AppContext, stream: LiveStream) -> None:
    """Tell open pages about the change once it is committed."""
    update = live_update(stream)
    on_commit(session, partial(ctx.broker.publish, update["handle"], update))


def _go_live_response(result: GoLiveResult) -> Response:
    body = GoLiveResponse(
        stream=stream_read(result.stream), join=result.join, created=result.created
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=201 if result.created else 200)


@router.post("/streams", response_model=GoLiveResponse, status_code=201)
async def go_live(
    user: CurrentInfluencer, session: DbSession, ctx: Ctx, now: Now, body: GoLiveRequest
) -> Response:
    """Start Streaming: automatic → admin-set token; 409 `room_code_required` otherwise."""
    result = await stream_service.go_live(
        session,
        user,
        title=body.title,
        description=body.description,
        config=ctx.go_live_config,
        now=now,
    )
    announce(session, ctx, result.stream)
    return _go_live_response(result)


@router.post("/streams/room-code", response_model=GoLiveResponse, status_code=201)
async def go_live_with_room_code(
    user: CurrentInfluencer, session: DbSession, ctx: Ctx, now: Now, body: RoomCodeGoLiveRequest
) -> Response:
    """The manual fallback: a validated room code the browser exchanges for a token."""
    result = await stream_service.go_live_with_room_code(
        session,
        user,
        code=body.code,
        title=body.title,
        description=body.description,
        config=ctx.go_live_config,
        now=now,
    )
    announce(session, ctx, result.stream)
    return _go_live_response(result)


@router.get("/streams/current")
async def current_stream(user: CurrentInfluencer, session: DbSession) -> CurrentStream:
    found = await stream_service.current(session, user)
    return CurrentStream(stream=stream_read(found) if found else None)


@router.post("/streams/current/joined")
async def joined(user: CurrentInfluencer, session: DbSession, ctx: Ctx, now: Now) -> StreamRead:
    stream = await stream_service.mark_live(session, user, now=now)
    announce(session, ctx, stream)
    return stream_read(stream)


@router.post("/streams/current/end")
async def end_stream(
    user: CurrentInfluencer, session: DbSession, ctx: Ctx, provider: ProviderDep, now: Now
) -> StreamRead:
    stream = await stream_service.end_own(session, user, provider=provider, now=now)
    announce(session, ctx, stream)
    return stream_read(stream)


@router.get("/live")
async def live_now(session: DbSession) -> list[LiveEntry]:
    return [
        LiveEntry(
            handle=s.influencer.handle,
            name=s.influencer.user.display_name,
            title=s.title,
            started_at=s.started_at,
            viewers=s.peak_viewers,
        )
        for s in await stream_service.list_live(session)
    ]


@router.post("/watch/{handle}/join")
async def viewer_join(handle: str, ctx: Ctx, now: Now) -> JoinInfo:
    """A viewer token minted on the server for the live room (viewer role, random user id).

    Anonymous viewers are answered by `ViewerJoinFastPath` before this route; it serves
    signed-in viewers and documents the endpoint."""
    return await stream_service.viewer_join(
        ctx.read_sessionmaker,
        handle,
        config=ctx.go_live_config,
        cache=ctx.watch_cache,
        joins=ctx.joins,
        now=now,
    )


@router.post("/admin/influencers/{influencer_id}/stream/end", tags=["admin: influencers"])
async def admin_end_stream(
    found: ManagedInfluencer,
    session: DbSession,
    ctx: Ctx,
    provider: ProviderDep,
    actor: ActorDep,
    now: Now,
) -> StreamRead:
    ended = await stream_service.end_by_admin(session, actor, found, provider=provider, now=now)
    announce(session, ctx, ended)
    return stream_read(ended)
