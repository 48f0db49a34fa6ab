"""All of chat's SQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from livestage.models import (
    ChatMessage,
    ChatRestriction,
    ChatRole,
    Influencer,
    LiveStream,
    RestrictionKind,
)
from livestage.models.active import is_active

# The columns a new message is written with (the rest keep their defaults).
_NEW_MESSAGE = (
    "id",
    "stream_id",
    "seq",
    "author_identity",
    "author_name",
    "author_role",
    "body",
    "sent_at",
)


@dataclass(frozen=True, slots=True)
class PostingState:
    """What a post is checked against: the handle's influencer, their open stream, the
    poster's restriction there and when the poster's latest messages in it were sent."""

    influencer_id: uuid.UUID
    handle: str
    owner_id: uuid.UUID
    stream_id: uuid.UUID | None
    slow_mode_seconds: int
    restriction: RestrictionKind | None
    restricted_until: datetime | None
    recent: list[datetime]


@dataclass(frozen=True, slots=True)
class NewMessage:
    id: uuid.UUID
    stream_id: uuid.UUID
    author_identity: str
    author_name: str
    author_role: ChatRole
    body: str
    sent_at: datetime


class PostingRepository:
    """The post's SQL, as Core statements on the transaction's connection: a post is the
    busiest write of a popular stream, and the stream's counter stays locked from its number
    to its commit, so a post reads in one statement and writes in one (PostgreSQL). The
    statements are built once (building them cost more than running them)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def serialize_identity(self, handle: str, identity: str) -> None:
        """Until the transaction ends, one post at a time per identity and creator, so its rate
        limit holds across processes (PostgreSQL: an advisory lock; SQLite writes one
        transaction at a time already)."""
        if self.connection.dialect.name == "postgresql":
            key = f"chat:{handle.lower()}:{identity}"
            await self.connection.execute(_LOCK_IDENTITY, {"key": key})

    async def posting_state(
        self, handle: str, identity: str, *, recent: int
    ) -> PostingState | None:
        """None when no influencer has the handle."""
        handle = handle.lower()
        parameters = {"handle": handle, "identity": identity, "recent": recent}
        rows = (await self.connection.execute(_POSTING_STATE, parameters)).all()
        if not rows:
            return None
        first = rows[0]
        return PostingState(
            influencer_id=first[0],
            handle=handle,
            owner_id=first[1],
            stream_id=first[2],
            slow_mode_seconds=first[3] or 0,
            restriction=first[4],
            restricted_until=first[5],
            recent=[row[6] for row in rows if row[6] is not None],
        )

    async def add_counted(self, message: NewMessage, *, new_chatter: bool) -> int | None:
        """Counts the message on its stream and stores it under its number there; None (and
        nothing stored) when the stream is no longer starting or live. The stream's row stays
        locked until commit: this is the transaction's last statement."""
        counting = {
            "counted_stream": message.stream_id,
            "added_chatters": int(new_chatter),
            "counted_at": message.sent_at,
        }
        # Named apart from the columns: in the CTE, a parameter named like a column of
        # live_streams (`id`) would also be set on the stream.
        values = {f"new_{name}": getattr(message, name) for name in _NEW_MESSAGE if name != "seq"}
        if self.connection.dialect.name == "postgresql":
            seq: int | None = await self.connection.scalar(_COUNT_AND_ADD, {**counting, **values})
            return seq
        seq = await self.connection.scalar(_COUNT, counting)
        if seq is not None:
            await self.connection.execute(_ADD, {**values, "new_seq": seq})
        return seq


_LOCK_IDENTITY = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


def _posting_state() -> Select[Any]:
    open_stream = (
        select(LiveStream.id)
        .join(Influencer, Influencer.id == LiveStream.influencer_id)
        .where(Influencer.handle == bindparam("handle"), is_active())
        .scalar_subquery()
    )
    sent = (
        select(ChatMessage.stream_id, ChatMessage.sent_at)
        .where(
            ChatMessage.stream_id == open_stream,
            ChatMessage.author_identity == bindparam("identity"),
        )
        .order_by(ChatMessage.sent_at.desc())
        .limit(bindparam("recent"))
        .subquery()
    )
    return (
        select(
            Influencer.id,
            Influencer.user_id,
            LiveStream.id,
            LiveStream.chat_slow_mode_seconds,
            ChatRestriction.kind,
            ChatRestriction.until,
            sent.c.sent_at,
        )
        .select_from(Influencer)
        .outerjoin(LiveStream, and_(LiveStream.influencer_id == Influencer.id, is_active()))
        .outerjoin(
            ChatRestriction,
            and_(
                ChatRestriction.influencer_id == Influencer.id,
                ChatRestriction.identity == bindparam("identity"),
            ),
        )
        .outerjoin(sent, sent.c.stream_id == LiveStream.id)
        .where(Influencer.handle == bindparam("handle"))
        .order_by(sent.c.sent_at.desc())
    )


_POSTING_STATE = _posting_state()
_COUNT = (
    update(LiveStream)
    .where(LiveStream.id == bindparam("counted_stream"), is_active())
    .values(
        chat_messages=LiveStream.chat_messages + 1,
        chatters=LiveStream.chatters + bindparam("added_chatters"),
        # Given, not left to its onupdate default: in a CTE that default went unbound.
        updated_at=bindparam("counted_at"),
    )
    .returning(LiveStream.chat_messages)
)
_ADD = insert(ChatMessage).values({name: bindparam(f"new_{name}") for name in _NEW_MESSAGE})


def _count_and_add() -> ReturningInsert[tuple[int]]:
    """PostgreSQL: _COUNT feeding the insert, one round trip."""
    counted = _COUNT.cte("counted")
    columns = ChatMessage.__table__.c
    numbered = select(
        *(
            counted.c.chat_messages
            if name == "seq"
            else bindparam(f"new_{name}", type_=columns[name].type)
            for name in _NEW_MESSAGE
        )
    )
    return insert(ChatMessage).from_select(list(_NEW_MESSAGE), numbered).returning(ChatMessage.seq)


_COUNT_AND_ADD = _count_and_add()


class ChatRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def active_stream(self, influencer_id: uuid.UUID) -> LiveStream | None:
        statement = select(LiveStream).where(LiveStream.influencer_id == influencer_id, is_active())
        return await self.session.scalar(statement)

    async def history(self, stream_id: uuid.UUID, *, limit: int) -> list[ChatMessage]:
        """The latest `limit` messages not deleted, oldest first."""
        statement = (
            select(ChatMessage)
            .where(ChatMessage.stream_id == stream_id, ChatMessage.deleted_at.is_(None))
            .order_by(ChatMessage.seq.desc())
            .limit(limit)
        )
        return list(reversed((await self.session.scalars(statement)).all()))

    async def get_message(self, message_id: uuid.UUID) -> ChatMessage | None:
        return await self.session.get(ChatMessage, message_id)

    async def set_slow_mode(self, stream_id: uuid.UUID, seconds: int) -> None:
        statement = (
            update(LiveStream)
            .where(LiveStream.id == stream_id)
            .values(chat_slow_mode_seconds=seconds)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(statement)

    async def get_restriction(
        self, influencer_id: uuid.UUID, identity: str
    ) -> ChatRestriction | None:
        statement = select(ChatRestriction).where(
            ChatRestriction.influencer_id == influencer_id, ChatRestriction.identity == identity
        )
        return await self.session.scalar(statement)

    async def replace_restriction(self, restriction: ChatRestriction) -> ChatRestriction:
        """The identity's one restriction by this influencer becomes `restriction`."""
        await self.lift_restriction(restriction.influencer_id, restriction.identity)
        self.session.add(restriction)
        await self.session.flush()
        return restriction

    async def lift_restriction(self, influencer_id: uuid.UUID, identity: str) -> bool:
        statement = delete(ChatRestriction).where(
            ChatRestriction.influencer_id == influencer_id, ChatRestriction.identity == identity
        )
        result = await self.session.execute(statement)
        return bool(getattr(result, "rowcount", 0))

    async def last_name(self, stream_id: uuid.UUID, identity: str) -> str | None:
        """The name the identity last chatted under in the stream (a viewer's chosen name)."""
        statement = (
            select(ChatMessage.author_name)
            .where(ChatMessage.stream_id == stream_id, ChatMessage.author_identity == identity)
            .order_by(ChatMessage.sent_at.desc())
            .limit(1)
        )
        return await self.session.scalar(statement)
