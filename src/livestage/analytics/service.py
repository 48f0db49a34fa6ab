"""Read side: streams with their numbers, peers and viewers-over-time."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from livestage.analytics.repository import AnalyticsRepository
from livestage.analytics.schemas import PeerRead, SampleRead, StreamAnalytics
from livestage.errors import Forbidden, NotFound
from livestage.influencers.repository import InfluencerRepository
from livestage.models import User
from livestage.streams.repository import StreamRepository
from livestage.streams.schemas import StreamRead, stream_read
from livestage.tracking.repository import TrackingRepository


class AnalyticsService:
    async def list_streams(
        self,
        session: AsyncSession,
        *,
        status: str | None = None,
        handle: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StreamRead]:
        rows = await AnalyticsRepository(session).streams(
            status=status, handle=handle, limit=limit, offset=offset
        )
        return [stream_read(s) for s in rows]

    async def my_streams(self, session: AsyncSession, user: User) -> list[StreamRead]:
        influencer = await InfluencerRepository(session).get_by_user(user)
        if influencer is None:
            raise Forbidden("Only influencers have streams.")
        rows = await AnalyticsRepository(session).streams(influencer_id=influencer.id)
        return [stream_read(s) for s in rows]

    async def detail(
        self, session: AsyncSession, stream_id: uuid.UUID, *, owner: User | None = None
    ) -> StreamAnalytics:
        stream = await StreamRepository(session).get(stream_id)
        if stream is None or (owner is not None and stream.influencer.user_id != owner.id):
            # Another influencer's stream is reported as missing, not forbidden.
            raise NotFound("No stream with this id.")
        repository = TrackingRepository(session)
        peers = await repository.peers(stream.id)
        samples = await repository.samples(stream.id)
        return StreamAnalytics(
            stream=stream_read(stream),
            peers=[PeerRead.model_validate(p) for p in peers],
            viewers_per_minute=[SampleRead.model_validate(s) for s in samples],
        )


analytics = AnalyticsService()
