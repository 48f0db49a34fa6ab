"""Chat JSON API and its event stream (SPEC §8)."""

from __future__ import annotations

import uuid
from functools import partial

from fastapi import APIRouter
from starlette.responses import Response

from livestage.accounts.auth import ActorDep
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
from livestage.chat.service import chat as chat_service
from livestage.models import RestrictionKind
from livestage.web.deps import DbSession, Now, ReadSessions
from livestage.web.errors import ERROR_RESPONSES
from livestage.web.sse import EventStream

router = APIRouter(prefix="/api", tags=["chat"], responses=ERROR_RESPONSES)
# As for the live events: each stream ends after a while and the browser reconnects.
STREAM_LIFETIME_SECONDS = 300.0
RECONNECT_MILLISECONDS = 2000


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


@router.post("/watch/{handle}/chat", status_code=201)
async def post_message(
    handle: str, body: PostMessage, chatter: ChatterDep, actions: ChatActionsDep
) -> MessageRead:
    """Post as the viewer (with the name they chose), or as the signed-in user. 400
    `invalid_message`, 403 `chat_banned`/`chat_timed_out`, 429 `chat_rate_limited`/`slow_mode`
    (with Retry-After), 409 `not_live`."""
    return message_read(await actions.post(chatter, handle, body.body, body.name))


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
        partial(broker.subscribe, broker_key(influencer), opening),
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
