"""Chat JSON API and its event stream (SPEC §8)."""

from __future__ import annotations

import email.message
import json
import uuid
from functools import partial
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from livestage.accounts.auth import ActorDep, check_request_csrf
from livestage.chat import deps
from livestage.chat.broker import Opening, event_frame
from livestage.chat.deps import (
    ChatActionsDep,
    ChatBrokerDep,
    ChatterDep,
    ReadActor,
    RestrictingDep,
    broker_key,
)
from livestage.chat.schemas import (
    CHAT_EVENT_SCHEMA,
    ChatState,
    MessageRead,
    PostMessage,
    RestrictionRead,
    RestrictionRequest,
    SlowMode,
    SlowModeRead,
    message_read,
)
from livestage.chat.service import Chatter, PostTooLarge
from livestage.chat.service import chat as chat_service
from livestage.models import RestrictionKind
from livestage.streams.deps import viewing_of
from livestage.web.bodies import read_within
from livestage.web.deps import DbSession, Now, ReadSessions, clock_of
from livestage.web.errors import ERROR_RESPONSES
from livestage.web.routing import PlainRoute
from livestage.web.sse import EventStream

router = APIRouter(prefix="/api", tags=["chat"], responses=ERROR_RESPONSES)
# As for the live events: each stream ends after a while and the browser reconnects.
STREAM_LIFETIME_SECONDS = 300.0
RECONNECT_MILLISECONDS = 2000
# A post's JSON holds a message of at most BODY_MAX characters and a name of NAME_MAX, each at
# most 12 bytes as JSON (an escaped surrogate pair); what is longer is refused, and never read
# past this: the rest is room for characters the cleaning removes (rules.py).
MAX_POST_BYTES = 16 * 1024
Model = TypeVar("Model", bound=BaseModel)


@router.get("/watch/{handle}/chat")
async def chat_state(handle: str, session: DbSession, chatter: ChatterDep, now: Now) -> ChatState:
    """The latest messages (oldest first), slow mode, and what the asking viewer may do."""
    view = await chat_service.view(session, chatter, handle, now=now)
    restriction = view.restriction
    return ChatState(
        messages=[message_read(m) for m in view.messages],
        slow_mode_seconds=view.stream.chat_slow_mode_seconds if view.stream else 0,
        you={
            "identity": chatter.identity,
            "name": view.name,
            "can_moderate": view.can_moderate,
            "restricted_until": restriction.until if restriction else None,
            "banned": restriction is not None and restriction.kind == RestrictionKind.ban,
        },
    )


# The busiest write of a popular stream, so a `PlainRoute` (no dependency injection, no
# request-wide transaction): FastAPI's checks in FastAPI's order (a body that is not JSON, the
# CSRF token, the body's fields), then the post in a transaction of its own.
async def post_message(request: Request) -> Response:
    """Post as the viewer (with the name they chose), or as the signed-in user. 400
    `invalid_message`, 403 `chat_banned`/`chat_timed_out`, 429 `chat_rate_limited`/`slow_mode`
    (with Retry-After), 409 `not_live`."""
    now = clock_of(request)()
    raw = await json_body(request, limit=MAX_POST_BYTES)
    signed_in = await check_request_csrf(request, viewing_of(request).reads, now)
    body = validated_body(PostMessage, raw)
    cookie = viewing_of(request).viewer_cookie
    user = signed_in.user if signed_in else None
    viewer = cookie.identify(request.cookies, user.id if user else None)
    chatter = Chatter(viewer.id, user)
    handle = request.path_params["handle"]
    data = await deps.post_message(request, chatter, handle, body.body, body.name, now)
    response = Response(json.dumps(data), status_code=201, media_type="application/json")
    cookie.remember(response, viewer)
    return response


post_message_route = PlainRoute(
    "/api/watch/{handle}/chat",
    post_message,
    tags=["chat"],
    responses=ERROR_RESPONSES,
    methods=["POST"],
    status_code=201,
    response_model=MessageRead,
    summary="Post Message",
    openapi_extra={
        "parameters": [
            {"name": "handle", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PostMessage.model_json_schema()}},
        },
    },
)


async def json_body(request: Request, *, limit: int) -> Any:
    """The body as FastAPI reads one for a JSON body parameter: parsed when it is declared
    JSON, the raw bytes otherwise (then refused as the wrong type), None when empty; a
    body that does not parse is a 422, and one longer than `limit` bytes a 413, before any
    other check."""
    raw = await read_within(request, limit, lambda: PostTooLarge(limit))
    if not raw:
        return None
    declared = email.message.Message()
    declared["content-type"] = request.headers.get("content-type", "")
    subtype = declared.get_content_subtype()
    if declared.get_content_maintype() != "application" or not (
        subtype == "json" or subtype.endswith("+json")
    ):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        problem = {
            "type": "json_invalid",
            "loc": ("body", error.pos),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": error.msg},
        }
        raise RequestValidationError([problem], body=error.doc) from error
    except ValueError as error:  # not UTF-8, as FastAPI answers it
        raise HTTPException(400, "There was an error parsing the body") from error


def validated_body(model: type[Model], raw: Any) -> Model:
    """`raw` as `model`, or the 422 FastAPI gives a body parameter that fails validation."""
    if raw is None:
        missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        raise RequestValidationError([missing])
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems = [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        raise RequestValidationError(problems, body=raw) from error


@router.get(
    "/watch/{handle}/chat/events",
    status_code=200,
    response_class=EventStream,
    response_description="Server-sent events: `history` first on every (re)connect, then "
    "`message`, `deleted`, `settings` and `restricted`.",
    responses={200: {"content": {"text/event-stream": {"schema": CHAT_EVENT_SCHEMA}}}},
)
async def chat_events(
    handle: str, session: DbSession, reads: ReadSessions, broker: ChatBrokerDep
) -> Response:
    influencer = await chat_service.get_influencer(session, handle)
    opening = partial(_opening, reads, influencer.id)
    return EventStream(
        # The retry hint opens the history event's block (the queue's first frame).
        f"retry: {RECONNECT_MILLISECONDS}\n".encode(),
        partial(broker.subscribe, broker_key(influencer.id), opening),
        lifetime=STREAM_LIFETIME_SECONDS,
    )


async def _opening(reads: ReadSessions, influencer_id: uuid.UUID) -> Opening:
    async with reads() as session:
        stream, messages = await chat_service.history(session, influencer_id)
    data = {
        "messages": [message_read(m).model_dump(mode="json") for m in messages],
        "slow_mode_seconds": stream.chat_slow_mode_seconds if stream else 0,
    }
    if stream is None:
        return Opening(event_frame("history", data), None, 0)
    # Messages commit in the order of their numbers (each locks the stream's counter until its
    # commit), so every message numbered up to the newest one shown here is already in.
    seq = max([stream.chat_messages, *(m.seq for m in messages)])
    return Opening(event_frame("history", data), str(stream.id), seq)


@router.delete("/chat/messages/{message_id}", status_code=204)
async def delete_message(message_id: uuid.UUID, actor: ActorDep, actions: ChatActionsDep) -> None:
    """Gone from every open page; kept, marked deleted, for the record."""
    await actions.delete(actor, message_id)


@router.post("/watch/{handle}/chat/restrictions", status_code=201)
async def restrict(
    handle: str, body: RestrictionRequest, actor: ReadActor, restricting: RestrictingDep
) -> RestrictionRead:
    """Time a viewer out for `minutes`, or ban them from the chat and the stream (they are
    removed from the media room and their joins are refused)."""
    kind = RestrictionKind(body.kind)
    return await restricting.restrict(actor, handle, body.identity, kind, body.minutes)


@router.delete("/watch/{handle}/chat/restrictions/{identity}", status_code=204)
async def lift_restriction(
    handle: str, identity: str, actor: ActorDep, actions: ChatActionsDep
) -> None:
    await actions.lift(actor, handle, identity)


@router.put("/watch/{handle}/chat/slow-mode")
async def slow_mode(
    handle: str, body: SlowMode, actor: ActorDep, actions: ChatActionsDep
) -> SlowModeRead:
    return SlowModeRead(slow_mode_seconds=await actions.slow_mode(actor, handle, body.seconds))
