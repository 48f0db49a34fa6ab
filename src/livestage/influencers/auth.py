"""Dependencies for admin routes that act on one influencer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from livestage.influencers.service import influencer as influencer_service
from livestage.models import Influencer
from livestage.web.deps import CurrentAdmin, DbSession


async def get_managed_influencer(
    _admin: CurrentAdmin, session: DbSession, influencer_id: uuid.UUID
) -> Influencer:
    """The influencer named in the path; admins only."""
    return await influencer_service.get(session, influencer_id)


ManagedInfluencer = Annotated[Influencer, Depends(get_managed_influencer)]
