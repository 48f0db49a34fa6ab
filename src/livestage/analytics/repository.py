from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livestage.models import Influencer, LiveStream


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
    ) -> list[LiveStream]:
        statement = select(LiveStream).join(LiveStream.influencer)
        if influencer_id is not None:
            statement = statement.where(LiveStream.influencer_id == influencer_id)
        if status:
            statement = statement.where(LiveStream.status == status)
        if handle:
            statement = statement.where(Influencer.handle == handle.lower().lstrip("@"))
        statement = statement.order_by(LiveStream.created_at.desc()).limit(limit).offset(offset)
        return list(await self.session.scalars(statement))
