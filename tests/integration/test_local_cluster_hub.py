"""Two cluster hubs on one Redis, as two processes would hold them: rooms, the cap, relaying and
events span both, and a process that dies is swept by the other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from livestage.kit.bus import redis_client
from livestage.providers.local.cluster import ClusterHub
from livestage.providers.local.protocol import (
    CLOSE_FULL,
    Close,
    Member,
    Refused,
)

pytestmark = pytest.mark.asyncio
ROOM = "c" * 24
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

Events = list[dict[str, Any]]


@pytest_asyncio.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = redis_client(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def events() -> Events:
    return []


@pytest_asyncio.fixture
async def make_hub(redis: Redis, events: Events) -> AsyncIterator[Callable[..., Any]]:
    hubs: list[ClusterHub] = []

    async def sink(envelope: dict[str, Any]) -> None:
        events.append(envelope)

    async def make(**options: Any) -> ClusterHub:
        settings: dict[str, Any] = {
            "broadcaster_role": "broadcaster",
            "viewer_role": "viewer",
            "viewer_cap": 2,
            "reconnect_grace": timedelta(seconds=0.3),
            "absence_margin": timedelta(0),
            "clock": lambda: NOW,
            "sink": sink,
            "heartbeat_seconds": 0.1,
            "process_ttl_seconds": 0.3,
            **options,
        }
        hub = ClusterHub(redis, prefix="cluster-test", **settings)
        await hub.start()
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        await hub.aclose()


def peer(role: str, user_id: str) -> Member:
    return Member.new(user_id=user_id, role=role, name=user_id, joined_at=NOW)


async def next_message(member: Member, kind: str, timeout: float = 2.0) -> dict[str, Any]:
    async def wait() -> dict[str, Any]:
        while True:
            item = await member.outbox.get()
            if isinstance(item, dict) and item["type"] == kind:
                return item

    return await asyncio.wait_for(wait(), timeout)


async def flushed(events: Events, *hubs: ClusterHub) -> list[str]:
    for hub in hubs:
        await hub.flush()
    return [e["type"] for e in events]


async def test_a_viewer_on_another_process_meets_the_broadcaster(
    make_hub: Callable[..., Any], events: Events
) -> None:
    a, b = await make_hub(), await make_hub()
    host, viewer = peer("broadcaster", "alice"), peer("viewer", "v1")
    await a.join(ROOM, "room", host)
    welcome = await b.join(ROOM, "room", viewer)
    assert [p["peer_id"] for p in welcome["peers"]] == [host.peer_id]
    joined = await next_message(host, "peer-joined")
    assert joined["peer_id"] == viewer.peer_id

    await a.relay(host, {"type": "offer", "to": viewer.peer_id, "sdp": "v=0 offer"})
    offer = await next_message(viewer, "offer")
    assert offer == {"type": "offer", "from": host.peer_id, "sdp": "v=0 offer"}
    await b.relay(viewer, {"type": "answer", "to": host.peer_id, "sdp": "v=0 answer"})
    assert (await next_message(host, "answer"))["from"] == viewer.peer_id

    # The viewer leaving never closes the session while the broadcaster is there.
    await b.leave(viewer, "client request")
    assert (await next_message(host, "peer-left"))["peer_id"] == viewer.peer_id
    assert await a.session(ROOM) is not None
    kinds = await flushed(events, a, b)
    assert kinds == [
        "session.open.success",
        "peer.join.success",
        "peer.join.success",
        "peer.leave.success",
    ]


async def test_the_viewer_cap_holds_across_processes(make_hub: Callable[..., Any]) -> None:
    a, b = await make_hub(), await make_hub()
    await a.join(ROOM, "room", peer("broadcaster", "alice"))
    await a.join(ROOM, "room", peer("viewer", "v1"))
    await b.join(ROOM, "room", peer("viewer", "v2"))
    with pytest.raises(Refused) as full:
        await b.join(ROOM, "room", peer("viewer", "v3"))
    assert full.value.code == CLOSE_FULL
    assert await a.viewer_count(ROOM) == await b.viewer_count(ROOM) == 2


async def test_concurrent_joins_never_pass_the_cap(make_hub: Callable[..., Any]) -> None:
    hubs = [await make_hub(viewer_cap=3) for _ in range(3)]
    joins = [hubs[i % 3].join(ROOM, "room", peer("viewer", f"v{i}")) for i in range(12)]
    results = await asyncio.gather(*joins, return_exceptions=True)
    admitted = [r for r in results if not isinstance(r, BaseException)]
    assert len(admitted) == 3
    assert all(isinstance(r, Refused) for r in results if isinstance(r, BaseException))


async def test_a_dead_process_is_swept_and_its_broadcaster_comes_back_elsewhere(
    make_hub: Callable[..., Any], events: Events
) -> None:
    a, b = await make_hub(), await make_hub()
    old_host, viewer = peer("broadcaster", "alice"), peer("viewer", "v1")
    await a.join(ROOM, "room", old_host)
    await b.join(ROOM, "room", viewer)
    await a.flush()
    await _die(a)

    # The broadcaster's page reconnects through b: the same person replaces the dead
    # connection, in the same session; the viewer hears of the change.
    new_host = peer("broadcaster", "alice")
    welcome = await b.join(ROOM, "room", new_host)
    assert [p["peer_id"] for p in welcome["peers"]] == [viewer.peer_id]
    assert (await next_message(viewer, "peer-left"))["peer_id"] == old_host.peer_id
    assert (await next_message(viewer, "peer-joined"))["peer_id"] == new_host.peer_id
    await asyncio.sleep(0.8)  # past the dead process's heartbeat and the grace
    assert {m.peer_id for m in await b.members(ROOM)} == {new_host.peer_id, viewer.peer_id}
    kinds = await flushed(events, b)
    assert kinds.count("session.open.success") == 1
    assert "session.close.success" not in kinds


async def test_a_broadcaster_whose_process_died_and_who_never_returns_ends_the_room(
    make_hub: Callable[..., Any], events: Events
) -> None:
    a, b = await make_hub(), await make_hub()
    host, viewer = peer("broadcaster", "alice"), peer("viewer", "v1")
    await a.join(ROOM, "room", host)
    await b.join(ROOM, "room", viewer)
    await a.flush()
    await _die(a)
    ended = await next_message(viewer, "room-ended", timeout=3.0)
    assert ended["reason"] == "the broadcaster did not come back"
    assert await b.session(ROOM) is None
    kinds = await flushed(events, b)
    assert kinds[-3:] == ["peer.leave.success", "peer.leave.success", "session.close.success"]
    reasons = [e["data"]["reason"] for e in events if e["type"] == "peer.leave.success"]
    assert reasons == ["websocket closed", "room ended"]
    assert kinds.count("session.close.success") == 1


async def test_ending_the_room_from_any_process_closes_everyone(
    make_hub: Callable[..., Any], events: Events
) -> None:
    a, b = await make_hub(), await make_hub()
    host, viewer = peer("broadcaster", "alice"), peer("viewer", "v1")
    await a.join(ROOM, "room", host)
    await b.join(ROOM, "room", viewer)
    assert await b.end_room(ROOM, reason="ended by broadcaster") == 2
    for member in (host, viewer):
        assert (await next_message(member, "room-ended"))["reason"] == "ended by broadcaster"

        async def closed(member: Member = member) -> Close:
            while not isinstance(item := await member.outbox.get(), Close):
                pass
            return item

        assert (await asyncio.wait_for(closed(), 2)).reason == "room ended"
    assert await a.end_room(ROOM) == 0
    assert (await flushed(events, a, b)).count("session.close.success") == 1


async def _die(hub: ClusterHub) -> None:
    """What SIGKILL leaves behind: the process stops beating and answering, its peers stay
    in Redis."""
    for task in hub._tasks:
        task.cancel()
    await hub.bus.stop()
    hub.local.clear()
    hub._closing = True


async def test_a_banned_user_is_thrown_out_through_the_process_holding_them(
    make_hub: Callable[..., Any],
) -> None:
    a, b = await make_hub(), await make_hub()
    host, troll = peer("broadcaster", "alice"), peer("viewer", "troll")
    await a.join(ROOM, "room", host)
    await b.join(ROOM, "room", troll)

    assert await a.remove_user(ROOM, "troll", reason="You were banned.") == 1

    error = await next_message(troll, "error")
    assert (error["code"], error["message"]) == ("forbidden", "You were banned.")
    assert (await next_message(host, "peer-left"))["peer_id"] == troll.peer_id
    assert [m.user_id for m in await b.members(ROOM)] == ["alice"]
