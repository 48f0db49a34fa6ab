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

from livestage.chat import rules
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


@dataclass(frozen=True, slots=True)
class Draft:
    """A post as the service prepared it (cleaned, named), before the database's say."""

    id: uuid.UUID
    handle: str
    identity: str
    user_id: uuid.UUID | None
    admin: bool
    author_name: str
    body: str
    sent_at: datetime

    def role_for(self, owner_id: uuid.UUID) -> ChatRole:
        return rules.role(self.user_id, self.admin, owner_id)


@dataclass(frozen=True, slots=True)
class Stored:
    """What the database said: the posting state, the author's role there, and the message's
    number in its stream (None: not stored, the stream having ended meanwhile)."""

    state: PostingState
    role: ChatRole
    seq: int | None


# Raises why the post is refused, given the posting state and the author's role there.
Check = Callable[[PostingState, ChatRole], None]


class Posting(Protocol):
    """A post's statements (`posting`)."""

    async def posting_state(
        self, handle: str, identity: str, *, recent: int
    ) -> PostingState | None: ...

    async def add_if_allowed(self, draft: Draft, check: Check) -> Stored | None:
        """Stores the message, counted on its stream, unless `check` refuses it (and raises);
        None when no influencer has the handle. One post at a time per identity and creator,
        so the rate limit holds across processes."""


@asynccontextmanager
async def posting(database: Database) -> AsyncIterator[Posting]:
    """A post's statements: in one transaction on SQLite (committed when the block succeeds,
    rolled back when it raises); on PostgreSQL each its own round trip and transaction."""
    if database.engine.dialect.name != "postgresql":
        async with transaction(database.sessionmaker) as session:
            yield PostingRepository(await session.connection())
        return
    async with database.engine.connect() as connection:
        # asyncpg's Connection (the package has no types).
        driver: Any = (await connection.get_raw_connection()).driver_connection
        try:
            yield DriverPostingRepository(driver)
        except LivestageError:
            raise  # refused once a round trip was over: the connection is ready for the next
        except BaseException:
            # Failed or cancelled mid-statement: its state is unknown, so it is not reused.
            await connection.invalidate()
            raise


class DriverPostingRepository:
    """The post on PostgreSQL, straight on the asyncpg connection, in one round trip: the
    statement `_PG_POST` runs twice in one pipeline (one Sync, so one transaction, committed
    by the server as soon as the second run ends). The first run takes the identity's lock;
    the second, whose snapshot therefore follows that lock, reads the posting state, decides
    by chat's rules and stores the message. The post is the busiest write of a popular stream:
    each round trip wakes PostgreSQL on the cores the servers share, and the stream's counter
    stays locked from its update to the commit, no longer waiting on this process
    (bench/results/NOTES.md)."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    async def posting_state(
        self, handle: str, identity: str, *, recent: int
    ) -> PostingState | None:
        handle = handle.lower()
        rows = await self.driver.fetch(_PG_POSTING_STATE, handle, identity, recent)
        # The driver gives the restriction as the name its column stores.
        return _posting_state_of(handle, rows, lambda kind: RestrictionKind[kind])

    async def add_if_allowed(self, draft: Draft, check: Check) -> Stored | None:
        handle = draft.handle.lower()
        post = (
            handle,
            draft.identity,
            draft.user_id,
            draft.admin,
            draft.sent_at,
            draft.sent_at - rules.RATE_WINDOW,
            rules.RATE_COUNT,
            draft.id,
            draft.author_name,
            draft.body,
        )
        lock = (_lock_key(f"chat:{handle}:{draft.identity}"), False, *post)
        _, row = await self.driver.fetchmany(_PG_POST, [lock, (lock[0], True, *post)])
        if row["influencer_id"] is None:
            return None
        state = PostingState(
            influencer_id=row["influencer_id"],
            handle=handle,
            owner_id=row["owner_id"],
            stream_id=row["stream_id"],
            slow_mode_seconds=row["slow_mode_seconds"],
            restriction=None if row["kind"] is None else RestrictionKind[row["kind"]],
            restricted_until=row["until"],
            recent=list(row["recent"]),
        )
        # As SQLAlchemy's Enum column stores it: the member's name.
        role = ChatRole[row["role"]]
        if row["seq"] is None:
            check(state, role)  # the rules' reason, from what the statement decided on
        return Stored(state, role, row["seq"])


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
# Both runs of one post, in one round trip (DriverPostingRepository): $2 is false in the first,
# which only takes the identity's lock ($1) and answers a row of nulls. The second decides as
# ChatService._check_post and rules.wait_before_posting do, on the same posting state it
# answers, so that a refusal's reason is found again in Python.
_PG_POST = f"""
WITH locked AS MATERIALIZED (
    SELECT pg_advisory_xact_lock($1) IS NULL AS held
),
state AS MATERIALIZED (
    SELECT i.id AS influencer_id, i.user_id AS owner_id, s.id AS stream_id,
        coalesce(s.chat_slow_mode_seconds, 0) AS slow_mode_seconds, r.kind, r.until,
        CASE WHEN $6::boolean THEN 'admin' WHEN i.user_id = $5::uuid THEN 'influencer'
            ELSE 'viewer' END AS role,
        ARRAY(
            SELECT m.sent_at FROM chat_messages m
            WHERE m.stream_id = s.id AND m.author_identity = $4::varchar
            ORDER BY m.sent_at DESC
            LIMIT $9::integer
        ) AS recent
    FROM influencers i
    LEFT JOIN live_streams s ON s.influencer_id = i.id AND s.status IN ({_ACTIVE})
    LEFT JOIN chat_restrictions r ON r.influencer_id = i.id AND r.identity = $4::varchar
    WHERE $2::boolean AND i.handle = $3::varchar
),
allowed AS (
    SELECT stream_id, role, cardinality(recent) = 0 AS new_chatter FROM state
    WHERE stream_id IS NOT NULL AND (
        role <> 'viewer' OR (
            kind IS DISTINCT FROM 'ban'
            AND (kind = 'timeout' AND until > $7::timestamptz) IS NOT TRUE
            AND (slow_mode_seconds > 0
                AND recent[1] + make_interval(secs => slow_mode_seconds) > $7::timestamptz
            ) IS NOT TRUE
            AND (SELECT count(*) FROM unnest(recent) AS sent WHERE sent > $8::timestamptz)
                < $9::integer
        )
    )
),
counted AS (
    UPDATE live_streams
    SET chat_messages = chat_messages + 1,
        chatters = chatters + allowed.new_chatter::int,
        updated_at = $7::timestamptz
    FROM allowed
    WHERE live_streams.id = allowed.stream_id AND live_streams.status IN ({_ACTIVE})
    RETURNING live_streams.id, live_streams.chat_messages, allowed.role
),
added AS (
    INSERT INTO chat_messages
        (id, stream_id, seq, author_identity, author_name, author_role, body, sent_at)
    SELECT $10::uuid, id, chat_messages, $4::varchar, $11::varchar, role, $12::text,
        $7::timestamptz
    FROM counted
    RETURNING seq
)
SELECT state.*, (SELECT seq FROM added) AS seq
FROM locked LEFT JOIN state ON true
"""


class PostingRepository:
    """The post's SQL, as Core statements on the transaction's connection (SQLite): a post is
    the busiest write of a popular stream, so it reads in one statement and writes in two.
    The statements are built once (building them cost more than running them)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def posting_state(
        self, handle: str, identity: str, *, recent: int
    ) -> PostingState | None:
        """None when no influencer has the handle."""
        handle = handle.lower()
        parameters = {"handle": handle, "identity": identity, "recent": recent}
        rows = (await self.connection.execute(_POSTING_STATE, parameters)).all()
        return _posting_state_of(handle, rows, lambda kind: kind)

    async def add_if_allowed(self, draft: Draft, check: Check) -> Stored | None:
        """SQLite writes one transaction at a time already: the read, the check and the write
        follow one another with no other post in between."""
        state = await self.posting_state(draft.handle, draft.identity, recent=rules.RATE_COUNT)
        if state is None:
            return None
        role = draft.role_for(state.owner_id)
        check(state, role)
        if state.stream_id is None:
            return Stored(state, role, None)
        message = NewMessage(
            id=draft.id,
            stream_id=state.stream_id,
            author_identity=draft.identity,
            author_name=draft.author_name,
            author_role=role,
            body=draft.body,
            sent_at=draft.sent_at,
        )
        return Stored(state, role, await self.add_counted(message, new_chatter=not state.recent))

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
