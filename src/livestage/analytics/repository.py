from __future__ import annotations

import uuid

from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncSession

from livestage.models import Influencer, LiveStream, StreamPeer
from livestage.models.keyset import Cursor, after, order
from livestage.streams.schemas import StreamRead

# A stream list's columns: what `StreamRead` shows of a stream (its handle is the creator's).
LISTED = tuple(getattr(LiveStream, name) for name in StreamRead.model_fields if name != "handle")


class AnalyticsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def streams(
        self,
        *,
        influencer_id: uuid.UUID | None = None,
        status: str | None = None,
        handle: str | None = None,
        limit: int = 100,
        offset: int = 0,
        cursor: Cursor | None = None,
    ) -> list[RowMapping]:
        """Newest first, by (created_at, id): indexed, so a page after `cursor` costs the same
        however many streams came before it. `offset` is the API's older way, kept for it.
        Rows of the listed columns (`LISTED`) and the creator's handle, not ORM objects: each
        object also loaded its influencer and user (60 columns), and a page of 50 cost
        several times a page of 10."""
        statement = select(*LISTED, Influencer.handle).join(LiveStream.influencer)
        if influencer_id is not None:
            statement = statement.where(LiveStream.influencer_id == influencer_id)
        if status:
            statement = statement.where(LiveStream.status == status)
        if handle:
            statement = statement.where(Influencer.handle == handle.lower().lstrip("@"))
        keyed = after(cursor, LiveStream.created_at, LiveStream.id, descending=True)
        if keyed is not None:
            statement = statement.where(keyed)
        statement = statement.order_by(
            *order(LiveStream.created_at, LiveStream.id, descending=True)
        )
        if offset:
            statement = statement.offset(offset)
        return list((await self.session.execute(statement.limit(limit))).mappings())

    async def peers(
        self, stream_id: uuid.UUID, *, limit: int, cursor: Cursor | None = None
    ) -> list[StreamPeer]:
        """A stream's participants in joining order, one page after `cursor`."""
        statement = select(StreamPeer).where(StreamPeer.stream_id == stream_id)
        keyed = after(cursor, StreamPeer.joined_at, StreamPeer.id, descending=False, nullable=True)
        if keyed is not None:
            statement = statement.where(keyed)
        statement = statement.order_by(
            *order(StreamPeer.joined_at, StreamPeer.id, descending=False, nullable=True)
        )
        return list(await self.session.scalars(statement.limit(limit)))
