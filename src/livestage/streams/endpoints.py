"""Streams JSON API: go live, end, current; the public live list, live state (and its event
stream) and the viewer join."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any, cast

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from livestage.accounts.auth import SESSION_COOKIE, CurrentInfluencer, check_request_csrf
from livestage.influencers.deps import ReadAdmin
from livestage.streams.broker import Current, LiveBroker, sse_frame
from livestage.streams.deps import (
    BrokerDep,
    EndingDep,
    GoingLiveDep,
    ReadInfluencer,
    viewing_of,
)
from livestage.streams.joins import Viewing
from livestage.streams.schemas import (
    LIVE_EVENT_SCHEMA,
    CurrentStream,
    GoLiveResponse,
    JoinInfo,
    LiveEntry,
    RoomCodeGoLiveRequest,
    StartStreamingRequest,
    StreamRead,
    stream_read,
)
from livestage.streams.service import GoLiveResult
from livestage.streams.service import stream as stream_service
from livestage.streams.updates import announce
from livestage.web.csrf import CSRF_COOKIE, CSRF_HEADER, check_csrf
from livestage.web.deps import DbSession, Now
from livestage.web.errors import ERROR_RESPONSES
from livestage.web.routing import PlainRoute, RawAnswer, RawRequest, RawRoute
from livestage.web.sse import EventStream

router = APIRouter(prefix="/api", tags=["streams"], responses=ERROR_RESPONSES)
# Each event stream ends after a while and the browser reconnects (EventSource does so by
# itself): connections never pin a worker that is shutting down or being redeployed.
STREAM_LIFETIME_SECONDS = 300.0
RECONNECT_MILLISECONDS = 2000
RETRY = f"retry: {RECONNECT_MILLISECONDS}\n".encode()
CSRF_HEADER_KEY = CSRF_HEADER.encode("latin-1")


def _go_live_response(result: GoLiveResult) -> Response:
    body = GoLiveResponse(
        stream=stream_read(result.stream), join=result.join, created=result.created
    )
    status = 201 if result.created else 200
    return Response(body.model_dump_json(), status_code=status, media_type="application/json")


@router.post(
    "/streams",
    response_model=GoLiveResponse,
    status_code=201,
    responses={200: {"model": GoLiveResponse, "description": "Already live: the running stream."}},
)
async def go_live(going_live: GoingLiveDep, body: StartStreamingRequest) -> Response:
    """Start Streaming: automatic → admin-set token. Otherwise 409 `room_code_required` when
    a room code can still work, or 503 `provider_unavailable` when only a later try can (also
    when the provider did not answer within LIVESTAGE_GO_LIVE_DEADLINE_SECONDS). With `hls`,
    HLS starts on 100ms once the room is ready; if it cannot, the stream goes live anyway and
    `hls_status` / `hls_problem` say why (409 `hls_needs_100ms` with the local provider)."""
    result = await going_live.automatic(body.title, body.description, hls=body.hls)
    return _go_live_response(result)


@router.post(
    "/streams/room-code",
    response_model=GoLiveResponse,
    status_code=201,
    responses={200: {"model": GoLiveResponse, "description": "Already live: the running stream."}},
)
async def go_live_with_room_code(going_live: GoingLiveDep, body: RoomCodeGoLiveRequest) -> Response:
    """The manual fallback: a validated room code the browser exchanges for a token."""
    result = await going_live.with_room_code(body.code, body.title, body.description)
    return _go_live_response(result)


@router.get("/streams/current")
async def current_stream(user: CurrentInfluencer, session: DbSession) -> CurrentStream:
    found = await stream_service.current(session, user)
    return CurrentStream(stream=stream_read(found) if found else None)


@router.post("/streams/current/joined")
async def joined(
    user: CurrentInfluencer, session: DbSession, broker: BrokerDep, now: Now
) -> StreamRead:
    stream = await stream_service.mark_live(session, user, now=now)
    announce(session, broker, stream)
    return stream_read(stream)


@router.post("/streams/current/end")
async def end_stream(user: ReadInfluencer, ending: EndingDep) -> StreamRead:
    return stream_read(await ending.own(user))


@router.post("/admin/influencers/{influencer_id}/stream/end", tags=["admin: influencers"])
async def admin_end_stream(
    influencer_id: uuid.UUID, actor: ReadAdmin, ending: EndingDep
) -> StreamRead:
    return stream_read(await ending.by_admin(actor, influencer_id))


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


@router.get("/live/{handle}")
async def live_state(handle: str, session: DbSession) -> dict[str, Any]:
    """The stream's status and viewer count right now."""
    return await stream_service.live_state(session, handle)


async def live_events(request: Request) -> Response:
    """Server-sent events: the current state, then every change (status, viewer count)."""
    # A connect storm calls this (thousands of pages at once), so it is a `PlainRoute`, and the
    # first event is the broker's current state of the stream, not a database read per page.
    handle = request.path_params["handle"]
    broker = cast(LiveBroker, request.app.state.livestage.broker)
    current = await broker.current(handle.lower())
    if current is None:
        current = await _unknown_handle(request, handle)
    return EventStream(
        RETRY + current.frame,
        partial(broker.subscribe_after, current.state["handle"], current),
        lifetime=STREAM_LIFETIME_SECONDS,
    )


async def _unknown_handle(request: Request, handle: str) -> Current:
    """The service's own answer for a handle the broker found nothing for: its 404 (or the
    state, when the influencer was created meanwhile)."""
    async with viewing_of(request).reads() as session:
        state = await stream_service.live_state(session, handle)
    return Current(state, sse_frame(state))


live_events_route = PlainRoute(
    "/api/live/{handle}/events",
    live_events,
    methods=["GET"],
    status_code=200,
    response_class=EventStream,
    response_description="Server-sent events: `stream` events, each the live state as JSON.",
    responses={
        **ERROR_RESPONSES,
        200: {"content": {"text/event-stream": {"schema": LIVE_EVENT_SCHEMA}}},
    },
    tags=["streams"],
    openapi_extra={
        "parameters": [
            {
                "name": "handle",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "title": "Handle"},
            }
        ]
    },
)


async def viewer_join(request: RawRequest) -> RawAnswer:
    """A viewer token minted on the server for the live room (viewer role; the user id is the
    viewer's identity: the signed-in user, else the anonymous viewer cookie, set if missing).

    The flash-crowd path: every viewer of a popular stream calls it at once, so it is a
    `RawRoute` (no request transaction, no dependency injection, no Request or Response
    objects): the CSRF check, the service call and the JSON body, for every viewer, signed in
    or not."""
    state = request.scope["app"].state.livestage
    now, viewing = state.clock(), cast(Viewing, state.viewing)
    cookies, submitted = request.cookies, request.header(CSRF_HEADER_KEY)
    user_id = None
    if cookies.get(SESSION_COOKIE) or submitted is None:
        # Signed in, or a form: the check every other route makes.
        signed_in = await check_request_csrf(request.starlette(), viewing.reads, now)
        user_id = signed_in.user_id if signed_in else None
    else:
        check_csrf(cookies.get(CSRF_COOKIE), submitted)  # an anonymous viewer's: pre-login
    viewer = viewing.viewer_cookie.identify(cookies, user_id)
    joined = await stream_service.viewer_join(
        viewing,
        request.path_params["handle"],
        viewer_id=viewer.id,
        config=state.go_live,
        now=now,
        new_viewer=viewer.new_cookie,
    )
    cookie = viewing.viewer_cookie.header_for(viewer)
    return joined.json(), [cookie] if cookie else []


viewer_join_route = RawRoute(
    "/api/watch/{handle}/join",
    viewer_join,
    methods=["POST"],
    response_model=JoinInfo,
    responses=ERROR_RESPONSES,
    tags=["streams"],
    summary="Viewer Join",
    openapi_extra={
        "parameters": [
            {"name": "handle", "in": "path", "required": True, "schema": {"type": "string"}}
        ]
    },
)
