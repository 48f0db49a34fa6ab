from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager

from livestage.models import (
    ChatRestriction,
    Influencer,
    LiveStream,
    RestrictionKind,
    ViewerJoinBatch,
)
from livestage.models.active import is_active
from livestage.models.live_stream import OPEN_STREAM_INDEX_WHERE, StreamStatus
from livestage.streams.intents import JoinBatch, JoinIntent, unpack


@dataclass(frozen=True, slots=True)
class OpenStreams:
    live: int
    starting: int
    viewers: int


class StreamRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, stream_id: uuid.UUID) -> LiveStream | None:
        return await self.session.get(LiveStream, stream_id)

    async def lock_unless_locked(self, stream_id: uuid.UUID) -> LiveStream | None:
        """The stream, locked until the transaction ends; None when another transaction holds
        it (PostgreSQL: SKIP LOCKED; SQLite has one writer anyway). Changes this session has
        not flushed yet are kept."""
        return await self.session.get(LiveStream, stream_id, with_for_update={"skip_locked": True})

    async def get_active(self, influencer_id: uuid.UUID) -> LiveStream | None:
        return await self.session.scalar(_ACTIVE_STREAM, {"influencer_id": influencer_id})

    async def is_banned(self, stream_id: uuid.UUID, identity: str) -> bool:
        """Whether the stream's influencer banned this viewer identity (chat moderation)."""
        statement = (
            select(ChatRestriction.id)
            .join(LiveStream, LiveStream.influencer_id == ChatRestriction.influencer_id)
            .where(
                LiveStream.id == stream_id,
                ChatRestriction.identity == identity,
                ChatRestriction.kind == RestrictionKind.ban,
            )
            .limit(1)
        )
        return await self.session.scalar(statement) is not None

    async def is_banned_in_room(self, room_id: str, identity: str) -> bool:
        """Whether the influencer whose stream is open in `room_id` banned this identity (a
        token minted before the ban must not get back in)."""
        statement = (
            select(ChatRestriction.id)
            .join(LiveStream, LiveStream.influencer_id == ChatRestriction.influencer_id)
            .where(
                LiveStream.room_id == room_id,
                is_active(),
                ChatRestriction.identity == identity,
                ChatRestriction.kind == RestrictionKind.ban,
            )
            .limit(1)
        )
        return await self.session.scalar(statement) is not None

    async def get_active_room_name(self, room_id: str, *, provider: str) -> str | None:
        """The room's name when a stream of `provider` is starting or live in it, else None."""
        statement = (
            select(LiveStream.room_name)
            .where(
                LiveStream.room_id == room_id,
                LiveStream.provider == provider,
                is_active(),
            )
            .limit(1)
        )
        row = (await self.session.execute(statement)).first()
        return None if row is None else (row.room_name or "")

    async def get_latest(self, influencer_id: uuid.UUID) -> LiveStream | None:
        statement = (
            select(LiveStream)
            .where(LiveStream.influencer_id == influencer_id)
            .order_by(LiveStream.created_at.desc())
            .limit(1)
        )
        return await self.session.scalar(statement)

    async def list_live(self) -> list[LiveStream]:
        statement = (
            select(LiveStream)
            .join(LiveStream.influencer)
            .where(LiveStream.status == StreamStatus.live)
            .order_by(LiveStream.started_at.desc())
        )
        return list(await self.session.scalars(statement))

    async def open_figures(self) -> OpenStreams:
        """How many streams are starting and live, and how many viewers the open ones have."""
        statement = (
            select(
                LiveStream.status,
                func.count(),
                func.coalesce(func.sum(LiveStream.current_viewers), 0),
            )
            .where(is_active())
            .group_by(LiveStream.status)
        )
        counts: dict[StreamStatus, int] = {}
        viewers = 0
        for status, streams, watching in await self.session.execute(statement):
            counts[status] = int(streams)
            viewers += int(watching)
        return OpenStreams(
            live=counts.get(StreamStatus.live, 0),
            starting=counts.get(StreamStatus.starting, 0),
            viewers=viewers,
        )

    async def add(self, stream: LiveStream) -> LiveStream:
        """Insert inside a savepoint: a concurrent start for the same influencer loses cleanly."""
        async with self.session.begin_nested():
            self.session.add(stream)
            await self.session.flush()
        return stream

    async def add_unless_open(self, values: dict[str, Any]) -> uuid.UUID | None:
        """Insert a stream unless its influencer already has an open one (the unique index on
        open streams): the new stream's id, or None. One statement, no savepoint: a click
        that loses to a concurrent one leaves the transaction usable."""
        dialect = self.session.get_bind().dialect.name
        statement = _INSERT_IF_NO_OPEN_STREAM[dialect]
        return cast(uuid.UUID | None, await self.session.scalar(statement, values))

    async def give_room(
        self, stream_id: uuid.UUID, *, room_id: str, room_name: str, codes: dict[str, str]
    ) -> LiveStream | None:
        """A claimed stream gets its room, if it is still `starting` and its influencer may
        still stream: the stream (its influencer not loaded), or None and nothing changed."""
        parameters = {"stream_id": stream_id, "room": room_id, "name": room_name, "codes": codes}
        return await self.session.scalar(_GIVE_ROOM, parameters)

    async def remember_room(self, influencer_id: uuid.UUID, room_id: str, room_name: str) -> None:
        parameters = {"influencer_id": influencer_id, "room": room_id, "name": room_name}
        await self.session.execute(_REMEMBER_ROOM, parameters)

    async def delete(self, stream: LiveStream) -> None:
        await self.session.delete(stream)
        await self.session.flush()

    async def lock(self, stream_id: uuid.UUID) -> LiveStream | None:
        """The stream and its influencer, locked until the transaction ends (PostgreSQL; SQLite
        has one writer)."""
        return await self.session.get(LiveStream, stream_id, with_for_update=True)

    async def room_closed(self, stream_id: uuid.UUID, pending_since: datetime) -> None:
        """The provider confirmed the room's session ended: no retry owed. Only the mark End
        Stream set is cleared (the reconciler may have settled it meanwhile)."""
        statement = (
            update(LiveStream)
            .where(LiveStream.id == stream_id, LiveStream.room_close_pending_since == pending_since)
            .values(room_close_pending_since=None)
        )
        await self.session.execute(statement)

    async def lock_influencer(self, user_id: uuid.UUID) -> Influencer | None:
        """The user's influencer record, locked: go-live is serialised per influencer (row lock
        on PostgreSQL; SQLite has one writer)."""
        statement = (
            select(Influencer).where(Influencer.user_id == user_id).with_for_update(of=Influencer)
        )
        return await self.session.scalar(statement)

    async def lock_influencer_with_open_stream(
        self, user_id: uuid.UUID
    ) -> tuple[Influencer, LiveStream | None] | None:
        """`lock_influencer` and its open stream, if any, in one statement. On PostgreSQL the
        stream is read as the statement began, before any wait for the lock: a stream opened
        meanwhile is refused by `add_unless_open`, not seen here."""
        found = await self.session.execute(_INFLUENCER_WITH_OPEN_STREAM, {"user_id": user_id})
        row = found.first()
        return None if row is None else (row[0], row[1])

    async def watchables(self, handles: Sequence[str]) -> dict[str, Any]:
        """Handles' influencers and open streams as rows of plain columns (no ORM objects: the
        viewer join's cache refills every live handle), by handle (lower case), in one
        statement: a crowd's streams expire together. The stream's columns are None when
        nothing is open; an unknown handle is absent."""
        streams, influencers = cast(Table, LiveStream.__table__), cast(Table, Influencer.__table__)
        s = streams.c
        open_stream = (s.influencer_id == influencers.c.id) & is_active()
        statement = (
            select(influencers.c.handle, s.id, s.status, s.strategy, s.room_id, s.provider)
            .select_from(influencers.outerjoin(streams, open_stream))
            .where(influencers.c.handle.in_(handles))
        )
        found: dict[str, Any] = {}
        for row in await self.session.execute(statement):
            found.setdefault(row.handle.lower(), row)
        return found


def _insert_if_no_open_stream(insert: Any) -> Any:
    table = cast(Table, LiveStream.__table__)
    return (
        insert(table)
        .on_conflict_do_nothing(
            index_elements=[table.c.influencer_id],
            index_where=text(OPEN_STREAM_INDEX_WHERE),
        )
        .returning(table.c.id)
    )


_INSERT_IF_NO_OPEN_STREAM = {
    "postgresql": _insert_if_no_open_stream(pg_insert),
    "sqlite": _insert_if_no_open_stream(sqlite_insert),
}

# Go-live's statements, built once: building a statement anew per request (its clauses, the
# eager-load options) cost more than SQLAlchemy's compiled-cache lookup and, for the influencer
# and open stream, about as much as running it on SQLite (bench/results/NOTES.md, s4 go-live).
_ACTIVE_STREAM = select(LiveStream).where(
    LiveStream.influencer_id == bindparam("influencer_id"), is_active()
)
_INFLUENCER_WITH_OPEN_STREAM = (
    select(Influencer, LiveStream)
    .outerjoin(LiveStream, (LiveStream.influencer_id == Influencer.id) & is_active())
    .options(contains_eager(LiveStream.influencer).lazyload(Influencer.user))
    .where(Influencer.user_id == bindparam("user_id"))
    .with_for_update(of=Influencer)
)
_MAY_STREAM = (
    select(Influencer.id)
    .where(Influencer.id == LiveStream.influencer_id, Influencer.streaming_enabled)
    .exists()
)
_GIVE_ROOM = (
    update(LiveStream)
    .where(
        LiveStream.id == bindparam("stream_id"),
        LiveStream.status == StreamStatus.starting,
        _MAY_STREAM,
    )
    .values(
        room_id=bindparam("room"),
        room_name=bindparam("name"),
        room_codes=bindparam("codes", type_=LiveStream.room_codes.type),
    )
    .returning(LiveStream)
    # The record transaction's session holds no stream or influencer to bring up to date (the
    # stream comes back through RETURNING; the caller updates its influencer itself), so the
    # ORM's search of the session for them is skipped: ~0.2-0.4 ms of CPU each on PostgreSQL.
    .execution_options(synchronize_session=False)
)
_REMEMBER_ROOM = (
    update(Influencer)
    .where(Influencer.id == bindparam("influencer_id"))
    .values(hms_room_id=bindparam("room"), hms_room_name=bindparam("name"))
    .execution_options(synchronize_session=False)
)


_BATCHES = cast(Table, ViewerJoinBatch.__table__)


class ViewerJoinRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_many(self, batches: Sequence[JoinBatch]) -> None:
        if batches:
            await self.session.execute(insert(_BATCHES), [batch._asdict() for batch in batches])

    async def count(self, stream_id: uuid.UUID) -> int:
        statement = select(func.coalesce(func.sum(ViewerJoinBatch.joins), 0)).where(
            ViewerJoinBatch.stream_id == stream_id
        )
        return int(await self.session.scalar(statement) or 0)

    async def intents_of(self, stream_id: uuid.UUID) -> list[JoinIntent]:
        """The stream's join intents in the order they were requested."""
        statement = (
            select(*(_BATCHES.c[name] for name in JoinBatch._fields))
            .where(ViewerJoinBatch.stream_id == stream_id)
            .order_by(ViewerJoinBatch.id)
        )
        rows = (await self.session.execute(statement)).all()
        intents = [intent for row in rows for intent in unpack(JoinBatch(*row))]
        return sorted(intents, key=_requested_at)


def _requested_at(intent: JoinIntent) -> datetime:
    return intent.requested_at
