"""All of chat's SQL."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Select, and_, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from livestage.db import Database, transaction
from livestage.errors import LivestageError
from livestage.models import (
    ChatMessage,
    ChatRestriction,
    ChatRole,
    Influencer,
    LiveStream,
    RestrictionKind,
)
from livestage.models.active import is_active
from livestage.models.live_stream import ACTIVE_STATUSES

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


class Posting(Protocol):
    """A post's statements, in its transaction (`posting`)."""

    async def serialize_identity(self, handle: str, identity: str) -> None:
        """Until the transaction ends, one post at a time per identity and creator, so its
        rate limit holds across processes."""

    async def posting_state(
        self, handle: str, identity: str, *, recent: int
    ) -> PostingState | None: ...

    async def add_counted(self, message: NewMessage, *, new_chatter: bool) -> int | None: ...


@asynccontextmanager
async def posting(database: Database) -> AsyncIterator[Posting]:
    """A post's transaction: committed when the block succeeds, rolled back when it raises."""
    if database.engine.dialect.name != "postgresql":
        async with transaction(database.sessionmaker) as session:
            yield PostingRepository(await session.connection())
        return
    async with database.engine.connect() as connection:
        # asyncpg's Connection (the package has no types).
        driver: Any = (await connection.get_raw_connection()).driver_connection
        try:
            yield DriverPostingRepository(driver)
            if driver.is_in_transaction():
                await driver.execute("COMMIT")
        except LivestageError:
            # Refused between two statements: the connection is ready for the next one.
            if driver.is_in_transaction():
                await driver.execute("ROLLBACK")
            raise
        except BaseException:
            # Failed or cancelled mid-statement: its state is unknown, so it is not reused.
            await connection.invalidate()
            raise


class DriverPostingRepository:
    """The post on PostgreSQL, straight on the asyncpg connection: four round trips (BEGIN
    with the identity's lock, the read, the count-and-insert, COMMIT) where SQLAlchemy's
    execution took six, and none of its per-statement work. The post is the busiest write of
    a popular stream, and every round trip wakes PostgreSQL on the same cores as the servers
    (bench/results/NOTES.md)."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    async def serialize_identity(self, handle: str, identity: str) -> None:
        """Begins the transaction and takes the identity's advisory lock, in one round trip
        (the simple query protocol takes both statements, but no parameters: the lock's key
        is a number, hashed here)."""
        key = _lock_key(f"chat:{handle.lower()}:{identity}")
        await self.driver.execute(f"BEGIN; SELECT pg_advisory_xact_lock({key:d})")

    async def posting_state(
        self, handle: str, identity: str, *, recent: int
    ) -> PostingState | None:
        handle = handle.lower()
        rows = await self.driver.fetch(_PG_POSTING_STATE, handle, identity, recent)
        # The driver gives the restriction as the name its column stores.
        return _posting_state_of(handle, rows, lambda kind: RestrictionKind[kind])

    async def add_counted(self, message: NewMessage, *, new_chatter: bool) -> int | None:
        seq: int | None = await self.driver.fetchval(
            _PG_COUNT_AND_ADD,
            message.id,
            message.stream_id,
            int(new_chatter),
            message.sent_at,
            message.author_identity,
            message.author_name,
            # As SQLAlchemy's Enum column stores it: the member's name.
            message.author_role.name,
            message.body,
        )
        return seq


def _posting_state_of(
    handle: str, rows: Sequence[Any], restriction: Callable[[Any], RestrictionKind]
) -> PostingState | None:
    """The rows of the posting-state read (one per recent message of the identity, or one
    with no message) as a PostingState; None when no influencer has the handle."""
    if not rows:
        return None
    first = rows[0]
    return PostingState(
        influencer_id=first[0],
        handle=handle,
        owner_id=first[1],
        stream_id=first[2],
        slow_mode_seconds=first[3] or 0,
        restriction=None if first[4] is None else restriction(first[4]),
        restricted_until=first[5],
        recent=[row[6] for row in rows if row[6] is not None],
    )


def _lock_key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), signed=True)


_ACTIVE = ", ".join(f"'{status}'" for status in ACTIVE_STATUSES)
# The statements of PostingRepository below, written for asyncpg.
_PG_POSTING_STATE = f"""
SELECT i.id, i.user_id, s.id, s.chat_slow_mode_seconds, r.kind, r.until, m.sent_at
FROM influencers i
LEFT JOIN live_streams s ON s.influencer_id = i.id AND s.status IN ({_ACTIVE})
LEFT JOIN chat_restrictions r ON r.influencer_id = i.id AND r.identity = $2
LEFT JOIN LATERAL (
    SELECT sent_at FROM chat_messages
    WHERE stream_id = s.id AND author_identity = $2
    ORDER BY sent_at DESC
    LIMIT $3
) m ON true
WHERE i.handle = $1
ORDER BY m.sent_at DESC
"""
_PG_COUNT_AND_ADD = f"""
WITH counted AS (
    UPDATE live_streams
    SET chat_messages = chat_messages + 1, chatters = chatters + $3, updated_at = $4
    WHERE id = $2 AND status IN ({_ACTIVE})
    RETURNING chat_messages
)
INSERT INTO chat_messages
    (id, stream_id, seq, author_identity, author_name, author_role, body, sent_at)
SELECT $1::uuid, $2::uuid, chat_messages, $5::varchar, $6::varchar, $7::varchar, $8::text,
    $4::timestamptz
FROM counted
RETURNING seq
"""


class PostingRepository:
    """The post's SQL, as Core statements on the transaction's connection (SQLite): a post is
    the busiest write of a popular stream, so it reads in one statement and writes in two.
    The statements are built once (building them cost more than running them)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def serialize_identity(self, handle: str, identity: str) -> None:
        """SQLite writes one transaction at a time already."""

    async def posting_state(
        self, handle: str, identity: str, *, recent: int
    ) -> PostingState | None:
        """None when no influencer has the handle."""
        handle = handle.lower()
        parameters = {"handle": handle, "identity": identity, "recent": recent}
        rows = (await self.connection.execute(_POSTING_STATE, parameters)).all()
        return _posting_state_of(handle, rows, lambda kind: kind)

    async def add_counted(self, message: NewMessage, *, new_chatter: bool) -> int | None:
        """Counts the message on its stream and stores it under its number there; None (and
        nothing stored) when the stream is no longer starting or live. The stream's row stays
        locked until commit: this is the transaction's last statement."""
        counting = {
            "counted_stream": message.stream_id,
            "added_chatters": int(new_chatter),
            "counted_at": message.sent_at,
        }
        values = {f"new_{name}": getattr(message, name) for name in _NEW_MESSAGE if name != "seq"}
        seq: int | None = await self.connection.scalar(_COUNT, counting)
        if seq is not None:
            await self.connection.execute(_ADD, {**values, "new_seq": seq})
        return seq


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
