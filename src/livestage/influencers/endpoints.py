"""Admin JSON API for influencers: /api/admin/influencers/... (integrators use it; the pages
share each action through `AdminActions`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from livestage.influencers.deps import (
    Actions,
    ManagedInfluencer,
    RoomCodeActionsDep,
    RoomCodeTarget,
)
from livestage.influencers.schemas import (
    InfluencerCreate,
    InfluencerCreated,
    InfluencerRead,
    RoomCodeSet,
    StreamingSet,
    TokenSet,
)
from livestage.web.errors import ERROR_RESPONSES

NEXT_CURSOR = "X-Next-Cursor"
NEXT_CURSOR_HEADER: dict[str, Any] = {
    "description": "Pass as `cursor` for the next page; absent on the last one.",
    "schema": {"type": "string"},
}

router = APIRouter(
    prefix="/api/admin/influencers", tags=["admin: influencers"], responses=ERROR_RESPONSES
)


@router.get("", responses={200: {"headers": {NEXT_CURSOR: NEXT_CURSOR_HEADER}}})
async def list_influencers(
    actions: Actions,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[
        str | None, Query(max_length=200, description="The `X-Next-Cursor` of the previous page.")
    ] = None,
) -> list[InfluencerRead]:
    """Newest first, one page: the body is the list, the next page's cursor is in
    `X-Next-Cursor` (absent on the last page), as for `/api/admin/streams`."""
    page = await actions.list(limit=limit, cursor=cursor)
    if page.next_cursor:
        response.headers[NEXT_CURSOR] = page.next_cursor
    return page.items


@router.post("", status_code=201)
async def create_influencer(actions: Actions, body: InfluencerCreate) -> InfluencerCreated:
    return await actions.create(body)


@router.get("/{influencer_id}")
async def get_influencer(found: ManagedInfluencer, actions: Actions) -> InfluencerRead:
    return await actions.read(found)


@router.put("/{influencer_id}/token")
async def set_token(found: ManagedInfluencer, actions: Actions, body: TokenSet) -> InfluencerRead:
    """Validate (structure, claims, expiry, signature when the secret is known), encrypt, store."""
    await actions.set_token(found, body)
    return await actions.read(found)


@router.delete("/{influencer_id}/token")
async def clear_token(found: ManagedInfluencer, actions: Actions) -> InfluencerRead:
    await actions.clear_token(found)
    return await actions.read(found)


@router.put("/{influencer_id}/room-code")
async def set_room_code(
    found: RoomCodeTarget, actions: RoomCodeActionsDep, body: RoomCodeSet
) -> InfluencerRead:
    await actions.set_room_code(found, body)
    return await actions.read(found)


@router.post("/{influencer_id}/room-code/generate")
async def generate_room_code(found: RoomCodeTarget, actions: RoomCodeActionsDep) -> InfluencerRead:
    """Ask 100ms to create the room's codes and keep the broadcaster's."""
    await actions.generate_room_code(found)
    return await actions.read(found)


@router.put("/{influencer_id}/streaming")
async def set_streaming(
    found: ManagedInfluencer, actions: Actions, body: StreamingSet
) -> InfluencerRead:
    await actions.set_streaming(found, body)
    return await actions.read(found)
