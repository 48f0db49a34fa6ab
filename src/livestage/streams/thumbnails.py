"""The picture on a live stream's directory card: a small still the broadcaster's page sends
every few seconds (local provider; with 100ms the card shows a placeholder).

Stills are kept in Redis when livestage runs as a cluster (every process serves every card),
else in this process's memory (one process is then the whole site). Each expires after
`KEEP_SECONDS`, so a broadcaster that stopped sending stops showing an old picture.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Protocol, cast

from fastapi import APIRouter, Depends, Request
from redis.asyncio import Redis
from starlette.requests import HTTPConnection
from starlette.responses import Response

from livestage.accounts.auth import CurrentInfluencer
from livestage.errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from livestage.streams.service import NoActiveStream
from livestage.streams.service import stream as stream_service
from livestage.web.bodies import read_within
from livestage.web.deps import DbSession, RedisDep
from livestage.web.errors import ERROR_RESPONSES

MAX_BYTES = 200_000
KEEP_SECONDS = 60
JPEG_START = b"\xff\xd8\xff"
REDIS_PREFIX = "livestage:thumbnail"
# One process keeps at most this many stills (one per live stream).
MEMORY_LIMIT = 1000

router = APIRouter(prefix="/api", tags=["streams"], responses=ERROR_RESPONSES)


class ThumbnailStore(Protocol):
    async def put(self, stream_id: uuid.UUID, jpeg: bytes) -> None: ...

    async def get(self, stream_id: uuid.UUID) -> bytes | None: ...


class MemoryThumbnails:
    def __init__(self) -> None:
        self._stills: dict[uuid.UUID, tuple[float, bytes]] = {}

    async def put(self, stream_id: uuid.UUID, jpeg: bytes) -> None:
        self._stills.pop(stream_id, None)
        self._stills[stream_id] = (time.monotonic() + KEEP_SECONDS, jpeg)
        while len(self._stills) > MEMORY_LIMIT:
            del self._stills[next(iter(self._stills))]

    async def get(self, stream_id: uuid.UUID) -> bytes | None:
        found = self._stills.get(stream_id)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]


class RedisThumbnails:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def put(self, stream_id: uuid.UUID, jpeg: bytes) -> None:
        await self.redis.set(f"{REDIS_PREFIX}:{stream_id}", jpeg, ex=KEEP_SECONDS)

    async def get(self, stream_id: uuid.UUID) -> bytes | None:
        return cast(bytes | None, await self.redis.get(f"{REDIS_PREFIX}:{stream_id}"))


async def get_thumbnails(connection: HTTPConnection, redis: RedisDep) -> ThumbnailStore:
    if redis is not None:
        return RedisThumbnails(redis)
    state = connection.app.state
    if not hasattr(state, "thumbnails"):
        state.thumbnails = MemoryThumbnails()
    return cast(ThumbnailStore, state.thumbnails)


ThumbnailsDep = Annotated[ThumbnailStore, Depends(get_thumbnails)]
JPEG_BODY = {
    "requestBody": {
        "required": True,
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post("/streams/current/thumbnail", status_code=204, openapi_extra=JPEG_BODY)
async def put_thumbnail(
    request: Request, user: CurrentInfluencer, session: DbSession, stills: ThumbnailsDep
) -> Response:
    """The broadcaster's page sends a still of its stream (JPEG, at most 200 KB)."""
    jpeg = await read_jpeg(request)
    stream = await stream_service.current(session, user)
    if stream is None:
        raise NoActiveStream()
    await stills.put(stream.id, jpeg)
    return Response(status_code=204)


@router.get(
    "/watch/{handle}/thumbnail.jpg",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def get_thumbnail(handle: str, session: DbSession, stills: ThumbnailsDep) -> Response:
    """The latest still of the creator's live stream; 404 when there is none (not live, or no
    still in the last minute)."""
    state = await stream_service.live_state(session, handle)
    jpeg = None
    if state["status"] in ("starting", "live"):
        jpeg = await stills.get(uuid.UUID(state["stream_id"]))
    if jpeg is None:
        raise NotFound(f"No picture of @{state['handle']}'s stream right now.")
    return Response(jpeg, media_type="image/jpeg", headers={"cache-control": "no-store"})


def _picture_too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"A stream's picture is at most {MAX_BYTES} bytes.")


async def read_jpeg(request: Request) -> bytes:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "image/jpeg":
        raise UnsupportedMediaType("A stream's picture is sent as image/jpeg.")
    jpeg = await read_within(request, MAX_BYTES, _picture_too_large)
    if not jpeg.startswith(JPEG_START):
        raise BadRequest("That is not a JPEG picture.")
    return jpeg
