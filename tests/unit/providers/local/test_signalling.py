"""The signalling hub without a network: admission, relaying, sessions, 100ms-shaped events."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from livestage.kit.bus import redis_client
from livestage.kit.time import parse_rfc3339
from livestage.providers.local.cluster import ClusterHub
from livestage.providers.local.protocol import (
    CLOSE_FORBIDDEN,
    CLOSE_FULL,
    CLOSE_NORMAL,
    CLOSE_REPLACED,
    Close,
    Member,
    Refused,
)
from livestage.providers.local.provider import Hub
from livestage.providers.local.signalling import SignallingHub

pytestmark = pytest.mark.asyncio
ROOM = "r" * 24
MICROS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def events() -> list[dict[str, Any]]:
    return []


@pytest_asyncio.fixture(params=["one process", "cluster"])
async def hub(
    request: pytest.FixtureRequest, clock: Clock, events: list[dict[str, Any]]
) -> AsyncIterator[Hub]:
    """Every rule holds for the one-process hub and for the cluster hub (rooms in Redis)."""

    async def sink(envelope: dict[str, Any]) -> None:
        events.append(envelope)

    options: dict[str, Any] = {
        "broadcaster_role": "broadcaster",
        "viewer_role": "viewer",
        "viewer_cap": 2,
        "ice_servers": [{"urls": "stun:stun.example.org"}],
        "reconnect_grace": timedelta(seconds=0.05),
        "absence_margin": timedelta(0),
        "clock": clock,
        "sink": sink,
    }
    if request.param == "one process":
        hub: Hub = SignallingHub(**options)
        yield hub
        await hub.aclose()
        return
    redis = redis_client(request.getfixturevalue("redis_url"))
    cluster = ClusterHub(redis, prefix="test", **options)
    await cluster.start()
    yield cluster
    await cluster.aclose()
    await redis.aclose()


def member(clock: Clock, role: str, user_id: str | None = None) -> Member:
    return Member.new(user_id=user_id or f"{role}-user", role=role, name=role, joined_at=clock())


def drain(peer: Member) -> list[dict[str, Any] | Close]:
    out: list[dict[str, Any] | Close] = []
    while not peer.outbox.empty():
        out.append(peer.outbox.get_nowait())
    return out


def messages(peer: Member) -> list[dict[str, Any]]:
    return [m for m in drain(peer) if isinstance(m, dict)]


async def types(hub: Hub, events: list[dict[str, Any]]) -> list[str]:
    await hub.flush()
    return [e["type"] for e in events]


async def test_first_join_opens_a_session_and_welcomes(
    hub: Hub, clock: Clock, events: list[dict[str, Any]]
) -> None:
    host = member(clock, "broadcaster")
    await hub.join(ROOM, "livestage-alice", host)
    welcome = messages(host)[0]
    assert welcome == {
        "type": "welcome",
        "peer_id": host.peer_id,
        "role": "broadcaster",
        "room_id": ROOM,
        "ice_servers": [{"urls": "stun:stun.example.org"}],
        "peers": [],
    }
    assert await types(hub, events) == ["session.open.success", "peer.join.success"]
    opened, joined = events
    session_id = opened["data"]["session_id"]
    assert re.fullmatch(r"[0-9a-f]{24}", session_id)
    assert opened["version"] == "2.0" and MICROS.match(opened["timestamp"])
    assert joined["data"] == {
        "room_id": ROOM,
        "room_name": "livestage-alice",
        "session_id": session_id,
        "session_started_at": opened["data"]["session_started_at"],
        "peer_id": host.peer_id,
        "user_id": "broadcaster-user",
        "user_name": "broadcaster",
        "role": "broadcaster",
        "joined_at": joined["timestamp"],
        "type": "regular",
    }
    assert parse_rfc3339(joined["data"]["joined_at"]) == clock()


async def test_the_broadcaster_sees_viewers_and_viewers_see_only_the_broadcaster(
    hub: Hub, clock: Clock
) -> None:
    host, first, second = (
        member(clock, "broadcaster"),
        member(clock, "viewer", "v1"),
        member(clock, "viewer", "v2"),
    )
    await hub.join(ROOM, "r", first)
    await hub.join(ROOM, "r", host)
    await hub.join(ROOM, "r", second)
    host_messages = messages(host)
    assert [p["peer_id"] for p in host_messages[0]["peers"]] == [first.peer_id]
    assert host_messages[1]["type"] == "peer-joined"
    assert host_messages[1]["peer_id"] == second.peer_id
    assert host_messages[1]["role"] == "viewer"
    first_messages = messages(first)
    assert first_messages[0]["peers"] == []
    assert [m["type"] for m in first_messages] == ["welcome", "peer-joined"]
    assert first_messages[1]["peer_id"] == host.peer_id
    second_welcome = messages(second)[0]
    assert [p["peer_id"] for p in second_welcome["peers"]] == [host.peer_id]
    assert await hub.viewer_count(ROOM) == 2


async def test_one_broadcaster_at_a_time_and_the_viewer_cap(hub: Hub, clock: Clock) -> None:
    await hub.join(ROOM, "r", member(clock, "broadcaster", "alice"))
    with pytest.raises(Refused) as refused:
        await hub.join(ROOM, "r", member(clock, "broadcaster", "mallory"))
    assert refused.value.code == CLOSE_FORBIDDEN
    await hub.join(ROOM, "r", member(clock, "viewer"))
    await hub.join(ROOM, "r", member(clock, "viewer"))
    with pytest.raises(Refused) as full:
        await hub.join(ROOM, "r", member(clock, "viewer"))
    assert (full.value.code, full.value.reason) == (CLOSE_FULL, "stream is full")
    assert "full (2 viewers)" in full.value.message
    with pytest.raises(Refused) as role:
        await hub.join(ROOM, "r", member(clock, "moderator"))
    assert role.value.code == CLOSE_FORBIDDEN


async def test_the_same_broadcaster_reconnecting_replaces_the_old_connection(
    hub: Hub, clock: Clock, events: list[dict[str, Any]]
) -> None:
    old, viewer = member(clock, "broadcaster", "alice"), member(clock, "viewer")
    await hub.join(ROOM, "r", old)
    await hub.join(ROOM, "r", viewer)
    session = await hub.session(ROOM)
    new = member(clock, "broadcaster", "alice")
    await hub.join(ROOM, "r", new)
    assert await hub.session(ROOM) == session
    old_out = drain(old)
    assert old_out[-1] == Close(CLOSE_REPLACED, "replaced by a new connection")
    assert [p["peer_id"] for p in messages(new)[0]["peers"]] == [viewer.peer_id]
    assert [m["type"] for m in messages(viewer)][-2:] == ["peer-left", "peer-joined"]
    assert {m.peer_id for m in await hub.members(ROOM)} == {new.peer_id, viewer.peer_id}
    assert "session.close.success" not in await types(hub, events)


async def test_offers_answers_and_candidates_are_relayed_with_from(hub: Hub, clock: Clock) -> None:
    host, viewer = member(clock, "broadcaster"), member(clock, "viewer")
    await hub.join(ROOM, "r", host)
    await hub.join(ROOM, "r", viewer)
    drain(host), drain(viewer)
    await hub.relay(host, {"type": "offer", "to": viewer.peer_id, "sdp": "v=0 offer", "x": 1})
    assert messages(viewer) == [{"type": "offer", "from": host.peer_id, "sdp": "v=0 offer"}]
    await hub.relay(viewer, {"type": "answer", "to": host.peer_id, "sdp": {"type": "answer"}})
    await hub.relay(viewer, {"type": "ice", "to": host.peer_id, "candidate": {"candidate": "c"}})
    await hub.relay(viewer, {"type": "ice", "to": host.peer_id, "candidate": None})
    await hub.relay(viewer, {"type": "request-offer", "to": host.peer_id})
    assert messages(host) == [
        {"type": "answer", "from": viewer.peer_id, "sdp": {"type": "answer"}},
        {"type": "ice", "from": viewer.peer_id, "candidate": {"candidate": "c"}},
        {"type": "ice", "from": viewer.peer_id, "candidate": None},
        {"type": "request-offer", "from": viewer.peer_id},
    ]


async def test_a_viewer_cannot_publish_or_reach_other_viewers(hub: Hub, clock: Clock) -> None:
    host, viewer, other = (
        member(clock, "broadcaster"),
        member(clock, "viewer", "v1"),
        member(clock, "viewer", "v2"),
    )
    for peer in (host, viewer, other):
        await hub.join(ROOM, "r", peer)
    for peer in (host, viewer, other):
        drain(peer)
    with pytest.raises(Refused) as refused:
        await hub.relay(viewer, {"type": "offer", "to": host.peer_id, "sdp": "v=0"})
    assert (refused.value.code, refused.value.reason) == (CLOSE_FORBIDDEN, "viewers cannot publish")
    await hub.relay(viewer, {"type": "ice", "to": other.peer_id, "candidate": None})
    await hub.relay(viewer, {"type": "ice", "to": "nobody", "candidate": None})
    await hub.relay(host, {"type": "answer", "to": viewer.peer_id, "sdp": "v=0"})
    await hub.relay(host, {"type": "offer", "to": viewer.peer_id})
    assert [m["code"] for m in messages(viewer)] == ["forbidden", "unknown_peer"]
    assert [m["code"] for m in messages(host)] == ["bad_message", "bad_message"]
    assert messages(other) == []


async def test_removing_a_peer_sends_the_error_then_closes(
    hub: Hub, clock: Clock, events: list[dict[str, Any]]
) -> None:
    host, viewer = member(clock, "broadcaster"), member(clock, "viewer")
    await hub.join(ROOM, "r", host)
    await hub.join(ROOM, "r", viewer)
    drain(viewer)
    await hub.remove(viewer, Refused(CLOSE_FORBIDDEN, "viewers cannot publish", "Only the host."))
    out = drain(viewer)
    assert out[0] == {
        "type": "error",
        "code": "forbidden",
        "message": "Only the host.",
        "reason": "viewers cannot publish",
    }
    assert out[1] == Close(CLOSE_FORBIDDEN, "viewers cannot publish")
    await hub.flush()
    assert events[-1]["data"]["reason"] == "server removed peer"


async def test_leaves_and_the_last_one_closes_the_session(
    hub: Hub, clock: Clock, events: list[dict[str, Any]]
) -> None:
    viewer = member(clock, "viewer")
    await hub.join(ROOM, "r", viewer)
    clock.advance(42.5)
    await hub.leave(viewer, "client request")
    await hub.leave(viewer, "websocket closed")  # already gone: no second event
    assert await types(hub, events) == [
        "session.open.success",
        "peer.join.success",
        "peer.leave.success",
        "session.close.success",
    ]
    left, closed = events[2]["data"], events[3]["data"]
    assert left["reason"] == "client request" and left["duration"] == 42
    assert parse_rfc3339(left["left_at"]) == clock()
    assert closed["session_duration"] == 42
    assert parse_rfc3339(closed["session_stopped_at"]) == clock()
    assert await hub.session(ROOM) is None and await hub.members(ROOM) == []


async def test_a_broadcaster_who_comes_back_within_the_grace_keeps_the_session(
    hub: Hub, clock: Clock, events: list[dict[str, Any]]
) -> None:
    host = member(clock, "broadcaster", "alice")
    await hub.join(ROOM, "r", host)
    session = await hub.session(ROOM)
    await hub.leave(host, "websocket closed")
    assert await hub.session(ROOM) == session  # the grace holds the empty room open
    back = member(clock, "broadcaster", "alice")
    await hub.join(ROOM, "r", back)
    await asyncio.sleep(0.1)
    assert await hub.session(ROOM) == session
    assert (await types(hub, events)).count("session.open.success") == 1


async def test_a_broadcaster_gone_past_the_grace_ends_the_room(
    hub: Hub, clock: Clock, events: list[dict[str, Any]]
) -> None:
    host, viewer = member(clock, "broadcaster"), member(clock, "viewer")
    await hub.join(ROOM, "r", host)
    await hub.join(ROOM, "r", viewer)
    await hub.leave(host, "websocket closed")
    assert await hub.session(ROOM) is not None
    await asyncio.sleep(0.15)
    out = drain(viewer)
    assert {"type": "room-ended", "reason": "the broadcaster did not come back"} in out
    assert out[-1] == Close(CLOSE_NORMAL, "room ended")
    assert await hub.session(ROOM) is None
    assert (await types(hub, events))[-3:] == [
        "peer.leave.success",
        "peer.leave.success",
        "session.close.success",
    ]
    assert [e["data"]["reason"] for e in events[-3:-1]] == ["websocket closed", "room ended"]


async def test_end_room_closes_everyone(
    hub: Hub, clock: Clock, events: list[dict[str, Any]]
) -> None:
    host, viewer = member(clock, "broadcaster"), member(clock, "viewer")
    await hub.join(ROOM, "r", host)
    await hub.join(ROOM, "r", viewer)
    assert await hub.end_room(ROOM, reason="ended by broadcaster") == 2
    for peer in (host, viewer):
        out = drain(peer)
        assert {"type": "room-ended", "reason": "ended by broadcaster"} in out
        assert out[-1] == Close(CLOSE_NORMAL, "room ended")
    kinds = await types(hub, events)
    assert kinds[-1] == "session.close.success"
    assert [e["data"]["reason"] for e in events if e["type"] == "peer.leave.success"] == [
        "room ended",
        "room ended",
    ]
    assert await hub.end_room(ROOM) == 0


async def test_a_failing_sink_does_not_stop_the_events(clock: Clock) -> None:
    delivered: list[str] = []

    async def flaky(envelope: dict[str, Any]) -> None:
        if envelope["type"] == "session.open.success" and "failed" not in delivered:
            delivered.append("failed")
            raise RuntimeError("database is locked")
        delivered.append(envelope["type"])

    hub = SignallingHub(
        broadcaster_role="broadcaster", viewer_role="viewer", viewer_cap=2, clock=clock, sink=flaky
    )
    await hub.join(ROOM, "r", member(clock, "viewer"))
    await hub.flush()
    assert delivered == ["failed", "session.open.success", "peer.join.success"]
    await hub.aclose()


async def test_aclose_closes_connections_and_records_their_leaves(
    hub: Hub, clock: Clock, events: list[dict[str, Any]]
) -> None:
    viewer = member(clock, "viewer")
    await hub.join(ROOM, "r", viewer)
    await hub.aclose()
    assert drain(viewer)[-1] == Close(1001, "server shutting down")
    # (One process keeps the session for a restart; in a cluster the others carry on.)
    assert [e["type"] for e in events][:3] == [
        "session.open.success",
        "peer.join.success",
        "peer.leave.success",
    ]
    with pytest.raises(Refused):
        await hub.join(ROOM, "r", member(clock, "viewer"))


async def test_remove_user_throws_out_every_connection_of_that_user(
    hub: Hub, clock: Clock, events: list[dict[str, Any]]
) -> None:
    host = member(clock, "broadcaster")
    tabs = [member(clock, "viewer", "troll"), member(clock, "viewer", "troll")]
    fan = member(clock, "viewer", "fan")
    for peer in (host, *tabs):
        await hub.join(ROOM, "r", peer)
    with pytest.raises(Refused):  # the cap is 2: the troll's two tabs fill it
        await hub.join(ROOM, "r", fan)

    assert await hub.remove_user(ROOM, "troll", reason="You were banned from this stream.") == 2

    for tab in tabs:
        out = drain(tab)
        assert {
            "type": "error",
            "code": "forbidden",
            "message": "You were banned from this stream.",
            "reason": "removed from the stream",
        } in out
        assert out[-1] == Close(CLOSE_FORBIDDEN, "removed from the stream")
    await hub.join(ROOM, "r", fan)
    assert {m.user_id for m in await hub.members(ROOM)} == {"broadcaster-user", "fan"}
    await hub.flush()
    reasons = [e["data"]["reason"] for e in events if e["type"] == "peer.leave.success"]
    assert reasons == ["server removed peer", "server removed peer"]
