"""Read side: streams with their numbers, peers and viewers-over-time."""

from __future__ import annotations

import uuid

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from livestage.analytics.repository import AnalyticsRepository
from livestage.analytics.schemas import PeerRead, SampleRead, StreamAnalytics, StreamPage
from livestage.errors import Forbidden, NotFound
from livestage.influencers.repository import InfluencerRepository
from livestage.models import User
from livestage.models.keyset import decode_cursor, encode_cursor
from livestage.streams.repository import StreamRepository
from livestage.streams.schemas import StreamRead, stream_read
from livestage.tracking.repository import TrackingRepository

PEERS_PER_PAGE = 50


class AnalyticsService:
    async def list_streams(
        self,
        session: AsyncSession,
        *,
        status: str | None = None,
        handle: str | None = None,
        limit: int = 100,
        offset: int = 0,
        cursor: str | None = None,
    ) -> StreamPage:
        # One row more than asked tells whether there is a next page.
        rows = await AnalyticsRepository(session).streams(
            status=status,
            handle=handle,
            limit=limit + 1,
            offset=offset,
            cursor=decode_cursor(cursor),
        )
        return _stream_page(rows, limit)

    async def my_streams(
        self, session: AsyncSession, user: User, *, limit: int = 100, cursor: str | None = None
    ) -> StreamPage:
        influencer = await InfluencerRepository(session).get_by_user(user)
        if influencer is None:
            raise Forbidden("Only influencers have streams.")
        rows = await AnalyticsRepository(session).streams(
            influencer_id=influencer.id, limit=limit + 1, cursor=decode_cursor(cursor)
        )
        return _stream_page(rows, limit)

    async def detail(
        self,
        session: AsyncSession,
        stream_id: uuid.UUID,
        *,
        owner: User | None = None,
        peers_cursor: str | None = None,
        peers_limit: int = PEERS_PER_PAGE,
    ) -> StreamAnalytics:
        """The figures come from the stream's row and the chart from its per-minute series:
        neither reads every peer, so a crowd of any size costs one page of participants."""
        cursor = decode_cursor(peers_cursor)
        stream = await StreamRepository(session).get(stream_id)
        if stream is None or (owner is not None and stream.influencer.user_id != owner.id):
            # Another influencer's stream is reported as missing, not forbidden.
            raise NotFound("No stream with this id.")
        peers = await AnalyticsRepository(session).peers(
            stream.id, limit=peers_limit + 1, cursor=cursor
        )
        samples = await TrackingRepository(session).samples(stream.id)
        shown = peers[:peers_limit]
        more = len(peers) > peers_limit
        return StreamAnalytics(
            stream=stream_read(stream),
            peers=[PeerRead.model_validate(p) for p in shown],
            peers_next_cursor=encode_cursor(shown[-1].joined_at, shown[-1].id) if more else None,
            viewers_per_minute=[SampleRead.model_validate(s) for s in samples],
        )


def _stream_page(rows: list[RowMapping], limit: int) -> StreamPage:
    shown = [StreamRead.model_validate(row) for row in rows[:limit]]
    more = len(rows) > limit
    return StreamPage(
        items=shown,
        next_cursor=encode_cursor(shown[-1].created_at, shown[-1].id) if more else None,
    )


analytics = AnalyticsService()
