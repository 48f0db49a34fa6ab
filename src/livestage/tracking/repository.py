from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from livestage.models import LiveStream, ProviderEvent, StreamPeer, ViewerSample
from livestage.models.live_stream import ACTIVE_STATUSES

# Provider clocks and ours differ a little; an event may carry a time just before the stream row.
CLOCK_SKEW = timedelta(minutes=5)


class PeerSpan(NamedTuple):
    user_id: str
    is_broadcaster: bool
    joined_at: datetime | None
    left_at: datetime | None


def _insert_if_absent(insert: Any) -> Any:
    """One statement for any batch size: executed with a list of rows, SQLAlchemy sends them
    as multi-row VALUES ("insertmanyvalues") from one compiled, cached statement; a statement
    with the rows inlined was compiled anew for every batch."""
    table = cast(Table, ProviderEvent.__table__)
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=["source", "external_id"])
        .returning(table.c.source, table.c.external_id)
    )


_INSERT_IF_ABSENT = {
    "postgresql": _insert_if_absent(pg_insert),
    "sqlite": _insert_if_absent(sqlite_insert),
}


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_many_if_absent(self, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
        """Store events in one statement, skipping (source, external_id) pairs already there;
        returns the pairs that were new."""
        if not rows:
            return set()
        statement = _INSERT_IF_ABSENT[self.session.get_bind().dialect.name]
        parameters = [{"id": uuid.uuid4(), **row} for row in rows]
        return {
            (r.source, r.external_id) for r in await self.session.execute(statement, parameters)
        }

    async def claim_unprocessed(self, limit: int) -> list[ProviderEvent]:
        statement = (
            select(ProviderEvent)
            .where(ProviderEvent.processed_at.is_(None))
            .order_by(ProviderEvent.received_at, ProviderEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(await self.session.scalars(statement))

    async def count(self, *, processed: bool | None = None) -> int:
        statement = select(func.count()).select_from(ProviderEvent)
        if processed is not None:
            column = ProviderEvent.processed_at
            statement = statement.where(column.is_not(None) if processed else column.is_(None))
        return int(await self.session.scalar(statement) or 0)


class TrackingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def stream_for_event(
        self, room_id: str | None, session_id: str | None, at: datetime | None
    ) -> LiveStream | None:
        if session_id:
            found = await self.session.scalar(
                select(LiveStream).where(LiveStream.session_id == session_id)
            )
            if found is not None:
                return found
        if not room_id:
            return None
        statement = select(LiveStream).where(LiveStream.room_id == room_id)
        if at is not None:
            statement = statement.where(LiveStream.created_at <= at + CLOCK_SKEW)
        statement = statement.order_by(LiveStream.created_at.desc()).limit(1)
        return await self.session.scalar(statement)

    async def stale_stream_ids(self) -> set[uuid.UUID]:
        rows = await self.session.scalars(select(LiveStream.id).where(LiveStream.figures_stale))
        return set(rows)

    async def get_peer(self, stream_id: uuid.UUID, peer_id: str) -> StreamPeer | None:
        return await self.session.scalar(
            select(StreamPeer).where(
                StreamPeer.stream_id == stream_id, StreamPeer.peer_id == peer_id
            )
        )

    async def add_peer(self, peer: StreamPeer) -> StreamPeer:
        self.session.add(peer)
        await self.session.flush()
        return peer

    async def peers(self, stream_id: uuid.UUID) -> list[StreamPeer]:
        statement = (
            select(StreamPeer)
            .where(StreamPeer.stream_id == stream_id)
            .order_by(StreamPeer.joined_at, StreamPeer.peer_id)
        )
        return list(await self.session.scalars(statement))

    async def peer_spans(self, stream_id: uuid.UUID) -> list[PeerSpan]:
        """Who was in the stream when: only the columns the figures need (no ORM objects:
        a stream with thousands of peers is recomputed often). Pending changes are flushed
        first: the rows must say what the session's peers say."""
        await self.session.flush()
        statement = select(
            StreamPeer.user_id, StreamPeer.is_broadcaster, StreamPeer.joined_at, StreamPeer.left_at
        ).where(StreamPeer.stream_id == stream_id)
        return [PeerSpan(*row) for row in await self.session.execute(statement)]

    async def close_open_peers(self, stream_id: uuid.UUID, at: datetime, reason: str) -> None:
        await self.session.execute(
            update(StreamPeer)
            .where(StreamPeer.stream_id == stream_id, StreamPeer.left_at.is_(None))
            .values(left_at=at, left_inferred=True, leave_reason=reason)
        )

    async def move_inferred_leaves(
        self, stream_id: uuid.UUID, estimate: datetime, actual: datetime
    ) -> None:
        """Peers closed at an estimated end (no leave of their own yet) close at the real one."""
        await self.session.execute(
            update(StreamPeer)
            .where(
                StreamPeer.stream_id == stream_id,
                StreamPeer.left_inferred.is_(True),
                StreamPeer.left_at == estimate,
            )
            .values(left_at=actual)
        )

    async def replace_samples(
        self, stream_id: uuid.UUID, samples: list[tuple[datetime, int]]
    ) -> None:
        await self.session.execute(delete(ViewerSample).where(ViewerSample.stream_id == stream_id))
        self.session.add_all(
            ViewerSample(stream_id=stream_id, minute=minute, viewers=viewers)
            for minute, viewers in samples
        )
        await self.session.flush()

    async def samples(self, stream_id: uuid.UUID) -> list[ViewerSample]:
        statement = (
            select(ViewerSample)
            .where(ViewerSample.stream_id == stream_id)
            .order_by(ViewerSample.minute)
        )
        return list(await self.session.scalars(statement))

    async def active_streams(self) -> list[LiveStream]:
        return list(
            await self.session.scalars(
                select(LiveStream).where(LiveStream.status.in_(ACTIVE_STATUSES))
            )
        )

    async def rooms_to_close(self, provider: str) -> list[LiveStream]:
        """Streams over for livestage whose provider room a failed end-room left open."""
        statement = select(LiveStream).where(
            LiveStream.room_close_pending_since.is_not(None), LiveStream.provider == provider
        )
        return list(await self.session.scalars(statement))
