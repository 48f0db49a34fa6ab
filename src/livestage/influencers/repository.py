from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livestage.models import Influencer, LiveStream, User
from livestage.models.active import is_active
from livestage.models.keyset import Cursor, after, order


class InfluencerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(self, *, limit: int, cursor: Cursor | None = None) -> list[Influencer]:
        """Newest first, by (created_at, id): an index range after `cursor`, so a page costs
        the same however many influencers came before it."""
        statement = select(Influencer)
        keyed = after(cursor, Influencer.created_at, Influencer.id, descending=True)
        if keyed is not None:
            statement = statement.where(keyed)
        statement = statement.order_by(
            *order(Influencer.created_at, Influencer.id, descending=True)
        )
        return list(await self.session.scalars(statement.limit(limit)))

    async def get(self, influencer_id: uuid.UUID, *, reload: bool = False) -> Influencer | None:
        return await self.session.get(Influencer, influencer_id, populate_existing=reload)

    async def get_by_handle(self, handle: str) -> Influencer | None:
        return await self.session.scalar(select(Influencer).where(Influencer.handle == handle))

    async def get_by_user(self, user: User) -> Influencer | None:
        return await self.session.scalar(select(Influencer).where(Influencer.user_id == user.id))

    async def list_with_token(self) -> list[Influencer]:
        statement = select(Influencer).where(Influencer.auth_token_encrypted.is_not(None))
        return list(await self.session.scalars(statement))

    async def add(self, influencer: Influencer) -> Influencer:
        self.session.add(influencer)
        await self.session.flush()
        return influencer

    async def active_stream_statuses(
        self, influencer_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, str]:
        statement = select(LiveStream.influencer_id, LiveStream.status).where(
            is_active(), LiveStream.influencer_id.in_(influencer_ids)
        )
        return {row.influencer_id: str(row.status) for row in await self.session.execute(statement)}
