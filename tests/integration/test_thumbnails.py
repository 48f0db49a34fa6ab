"""The picture on a live stream's directory card: the broadcaster's page sends a JPEG still,
every page may fetch the latest. Only the live influencer may send one, only a JPEG of at most
200 KB; in a cluster (Redis) a still stored by one process is read by every other."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from livestage.app import AppState
from livestage.kit.bus import redis_client
from livestage.streams.thumbnails import KEEP_SECONDS, MAX_BYTES, REDIS_PREFIX, RedisThumbnails
from tests.support.fixtures import (
    InfluencerAccount,
    create_influencer,
    csrf_token,
    login_influencer,
)

pytestmark = pytest.mark.asyncio
PICTURE = "/api/streams/current/thumbnail"
CARD = "/api/watch/alice/thumbnail.jpg"


def jpeg(size: int = 2000) -> bytes:
    """JPEG's start-of-image marker and a JFIF header, then bytes made at run time."""
    return b"\xff\xd8\xff\xe0" + secrets.token_bytes(size - 4)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"provider": "local"}


@pytest_asyncio.fixture
async def alice(ctx: AppState, client: httpx.AsyncClient) -> InfluencerAccount:
    account = await create_influencer(ctx, "alice", streaming_enabled=True)
    await login_influencer(client, account)
    return account


async def go_live(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/streams", json={"title": "Pictures", "description": ""})
    assert response.status_code == 201, response.text
    assert (await client.post("/api/streams/current/joined")).status_code == 200


def send(client: httpx.AsyncClient, body: bytes, media_type: str = "image/jpeg") -> Any:
    return client.post(PICTURE, content=body, headers={"content-type": media_type})


async def test_the_live_influencer_sends_a_still_and_every_page_sees_it(
    app: FastAPI, client: httpx.AsyncClient, alice: InfluencerAccount
) -> None:
    assert (await send(client, jpeg())).status_code == 404  # not live yet
    await go_live(client)
    assert (await client.get(CARD)).status_code == 404  # live, no still yet
    first, second = jpeg(), jpeg(MAX_BYTES)
    assert (await send(client, first)).status_code == 204
    assert (await send(client, second)).status_code == 204

    transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as viewer:
        seen = await viewer.get(CARD)
        assert seen.status_code == 200
        assert seen.headers["content-type"] == "image/jpeg"
        assert seen.headers["cache-control"] == "no-store"
        assert seen.content == second
        # Anyone else may look, but not send.
        viewer.headers["x-csrf-token"] = await csrf_token(viewer)
        assert (await send(viewer, jpeg())).status_code == 401

    assert (await client.post("/api/streams/current/end")).status_code == 200
    assert (await client.get(CARD)).status_code == 404  # the ended stream's picture is gone
    assert (await client.get("/api/watch/nobody/thumbnail.jpg")).status_code == 404


async def test_only_a_small_jpeg_is_taken(
    client: httpx.AsyncClient, alice: InfluencerAccount
) -> None:
    await go_live(client)
    too_big = await send(client, jpeg(MAX_BYTES + 1))
    assert too_big.status_code == 413
    assert "200000" in too_big.json()["detail"]
    assert (await send(client, b"\x89PNG\r\n\x1a\n" + b"0" * 100, "image/png")).status_code == 415
    assert (await send(client, b"<svg onload=alert(1)>", "image/jpeg")).status_code == 400
    assert (await send(client, b"", "image/jpeg")).status_code == 400
    no_csrf = await client.post(
        PICTURE, content=jpeg(), headers={"content-type": "image/jpeg", "x-csrf-token": "wrong"}
    )
    assert no_csrf.status_code == 403
    assert (await client.get(CARD)).status_code == 404  # nothing above was kept


async def test_in_a_cluster_a_still_stored_by_one_process_is_read_by_another(
    redis_url: str,
) -> None:
    """Each process builds its store on its own Redis connection (app.py's `redis`)."""
    one, other = redis_client(redis_url), redis_client(redis_url)
    try:
        stream_id, picture = uuid.uuid4(), jpeg()
        await RedisThumbnails(one).put(stream_id, picture)
        assert await RedisThumbnails(other).get(stream_id) == picture
        assert await RedisThumbnails(other).get(uuid.uuid4()) is None
        assert 0 < await other.ttl(f"{REDIS_PREFIX}:{stream_id}") <= KEEP_SECONDS
    finally:
        await one.aclose()
        await other.aclose()
