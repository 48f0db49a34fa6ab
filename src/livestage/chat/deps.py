"""Dependencies of the chat routes: who is chatting, the broker, and the actions that tell open
pages once their transaction is committed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any, cast

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from livestage.accounts.auth import OptionalUserSession, signed_in_session
from livestage.audit.service import Actor
from livestage.chat.broker import ChatBroker
from livestage.chat.metrics import CHAT_MESSAGES
from livestage.chat.repository import posting
from livestage.chat.schemas import RestrictionRead, message_json
from livestage.chat.service import Chatter
from livestage.chat.service import chat as chat_service
from livestage.db import Database, transaction
from livestage.kit.db import on_commit
from livestage.models import Influencer, RestrictionKind
from livestage.providers.base import StreamingProvider
from livestage.streams.deps import GoLiveDep, viewing_of
from livestage.web.deps import DatabaseDep, DbSession, Now, ReadSessions, client_ip


def chat_broker_of(connection: HTTPConnection) -> ChatBroker:
    return cast(ChatBroker, connection.app.state.livestage.chat)


async def get_chat_broker(connection: HTTPConnection) -> ChatBroker:
    return chat_broker_of(connection)


ChatBrokerDep = Annotated[ChatBroker, Depends(get_chat_broker)]


async def get_chatter(
    request: Request, response: Response, user_session: OptionalUserSession
) -> Chatter:
    """The signed-in user, else the anonymous viewer cookie (set now if missing): the same
    identity the viewer join gives the media room."""
    cookie = viewing_of(request).viewer_cookie
    user = user_session.user if user_session else None
    identity = cookie.identify(request.cookies, user.id if user else None)
    cookie.remember(response, identity)
    return Chatter(identity.id, user)


ChatterDep = Annotated[Chatter, Depends(get_chatter)]


def broker_key(influencer_id: uuid.UUID) -> str:
    """Pages follow a creator's chat, whichever of their streams is open."""
    return str(influencer_id)


async def post_message(
    request: Request, chatter: Chatter, handle: str, body: str, name: str | None, now: datetime
) -> dict[str, Any]:
    """A new message, in a transaction of its own, told to every open page once committed
    (with its number, which puts it in the stream's order on every page); its JSON."""
    database = cast(Database, request.app.state.livestage.database)
    async with posting(database) as repository:
        posted = await chat_service.post(repository, chatter, handle, body=body, name=name, now=now)
    CHAT_MESSAGES.inc()
    data = message_json(posted.message)
    await chat_broker_of(request).publish_message(
        broker_key(posted.influencer_id), data, stream_id=posted.message.stream_id, seq=posted.seq
    )
    return data


@dataclass(frozen=True, slots=True)
class ChatActions:
    """Each moderation action: the service call, then, once committed, every open page is
    told."""

    session: AsyncSession
    broker: ChatBroker
    now: datetime

    async def delete(self, actor: Actor, message_id: uuid.UUID) -> None:
        influencer, message = await chat_service.delete_message(
            self.session, actor, message_id, now=self.now
        )
        self._tell(influencer, "deleted", {"id": str(message.id)})

    async def lift(self, actor: Actor, handle: str, identity: str) -> None:
        await chat_service.lift(self.session, actor, handle, identity, now=self.now)

    async def slow_mode(self, actor: Actor, handle: str, seconds: int) -> int:
        influencer = await chat_service.set_slow_mode(
            self.session, actor, handle, seconds, now=self.now
        )
        self._tell(influencer, "settings", {"slow_mode_seconds": seconds})
        return seconds

    def _tell(self, influencer: Influencer, event: str, data: dict[str, object]) -> None:
        on_commit(
            self.session, partial(self.broker.publish, broker_key(influencer.id), event, data)
        )


async def get_chat_actions(session: DbSession, broker: ChatBrokerDep, now: Now) -> ChatActions:
    return ChatActions(session, broker, now)


ChatActionsDep = Annotated[ChatActions, Depends(get_chat_actions)]


async def get_read_actor(request: Request, reads: ReadSessions, now: Now) -> Actor:
    """Who acts, read in a read-only session of its own: a ban opens its own short transaction
    and then calls the provider, and no request transaction may stay open across that call."""
    record = await signed_in_session(request, reads, now)
    return Actor(record.user if record else None, client_ip(request))


ReadActor = Annotated[Actor, Depends(get_read_actor)]


@dataclass(frozen=True, slots=True)
class Restricting:
    """A timeout or a ban: recorded and audited in one short transaction, pages told once it is
    committed; then, for a ban, the viewer leaves the media room, with no session open."""

    database: Database
    broker: ChatBroker
    provider: StreamingProvider | None
    deadline_seconds: float
    now: datetime

    async def restrict(
        self, actor: Actor, handle: str, identity: str, kind: RestrictionKind, minutes: int | None
    ) -> RestrictionRead:
        async with transaction(self.database.sessionmaker) as session:
            done = await chat_service.restrict(
                session, actor, handle, identity=identity, kind=kind, minutes=minutes, now=self.now
            )
            room_id = await chat_service.live_room(session, done.influencer)
            restriction = done.restriction
            read = RestrictionRead(
                identity=restriction.identity, kind=restriction.kind.value, until=restriction.until
            )
            data = read.model_dump(mode="json")
            key = broker_key(done.influencer.id)
            on_commit(session, partial(self.broker.publish, key, "restricted", data))
        if kind == RestrictionKind.ban and room_id is not None:
            await chat_service.remove_from_room(
                self.provider, room_id, identity, deadline_seconds=self.deadline_seconds
            )
        return read


async def get_restricting(
    database: DatabaseDep, broker: ChatBrokerDep, config: GoLiveDep, now: Now
) -> Restricting:
    return Restricting(database, broker, config.provider, config.deadline_seconds, now)


RestrictingDep = Annotated[Restricting, Depends(get_restricting)]
