"""Chaos delivery over real HTTP: duplicated, shuffled webhooks that still carry everything needed
to rebuild the emulator's ground truth exactly (the job livestage's stream tracking has)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.emulator import (
    EmulatorHandle,
    WebhookReceiver,
    join_op,
    leave_op,
)

T0 = datetime(2026, 11, 21, 21, 59, 20, 250000, tzinfo=UTC)
SEED = 123


def _room(handle: EmulatorHandle) -> str:
    with handle.api() as api:
        response = api.post("/rooms", json={"name": f"chaos-{uuid.uuid4().hex[:8]}"})
    assert response.status_code == 200, response.text
    room_id: str = response.json()["id"]
    return room_id


def _ops() -> list[dict[str, Any]]:
    """Host plus 14 viewer peers of 12 users (two re-join) over ~3 minutes; T0 + 39.75 s is a
    minute start, so `early` joins and leaves exactly on minute boundaries, and `swap`
    joins at the instant user-0's first peer leaves."""
    host = str(uuid.uuid4())
    spans = [(5 + 13.5 * i, 45 + 13.5 * i + 7.25 * (i % 4), f"user-{i % 10}") for i in range(12)]
    spans += [(45, 100, "swap"), (39.75, 159.75, "early")]
    timeline: list[tuple[float, dict[str, Any]]] = []
    for start, end, user in spans:
        peer_id = str(uuid.uuid4())
        timeline.append((start, join_op(user, T0, peer_id=peer_id)))
        timeline.append((end, leave_op(peer_id, T0)))
    timeline.append((0, join_op("host", T0, role="broadcaster", peer_id=host)))
    timeline.append((400, leave_op(host, T0)))
    timeline.sort(key=lambda item: (item[0], item[1]["op"] == "join"))
    for offset, op in timeline:
        op["at"] = (T0 + timedelta(seconds=offset)).isoformat().replace("+00:00", "Z")
    return [op for _, op in timeline]


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _rebuild(webhooks: list[dict[str, Any]]) -> dict[str, Any]:
    """A receiver's view: dedupe on `id`, ignore arrival order, compute the documented stats."""
    events = {w["id"]: w for w in webhooks}.values()
    left = [e["data"] for e in events if e["type"] == "peer.leave.success"]
    closed = next(e["data"] for e in events if e["type"] == "session.close.success")
    viewers = [
        (_parse(d["joined_at"]), _parse(d["left_at"]), d["user_id"])
        for d in left
        if d["role"] != "broadcaster"
    ]

    def concurrent(at: datetime) -> int:
        return sum(1 for joined, gone, _ in viewers if joined <= at < gone)

    start, end = _parse(closed["session_started_at"]), _parse(closed["session_stopped_at"])
    minute = start.replace(second=0, microsecond=0)
    per_minute = []
    while minute <= end:
        inside = [j for j, _, _ in viewers if minute <= j < minute + timedelta(minutes=1)]
        per_minute.append(max(concurrent(at) for at in [minute, *inside]))
        minute += timedelta(minutes=1)
    return {
        "peak_viewers": max(concurrent(j) for j, _, _ in viewers),
        "unique_viewers": len({user for _, _, user in viewers}),
        "viewer_role_peers": len(viewers),
        "total_watch_seconds": sum((g - j for j, g, _ in viewers), timedelta()).total_seconds(),
        "duration_seconds": closed["session_duration"],
        "per_minute_peak": per_minute,
        "peers": sorted((d["peer_id"], d["joined_at"], d["left_at"]) for d in left),
    }


def _truth_view(truth: dict[str, Any]) -> dict[str, Any]:
    keys = ("peak_viewers", "unique_viewers", "viewer_role_peers", "total_watch_seconds")
    return {
        **{k: truth[k] for k in keys},
        "duration_seconds": truth["duration_seconds"],
        "per_minute_peak": [m["viewers"] for m in truth["per_minute_peak"]],
        "peers": sorted((p["peer_id"], p["joined_at"], p["left_at"]) for p in truth["peers"]),
    }


def _chaotic_session(handle: EmulatorHandle, receiver: WebhookReceiver) -> str:
    handle.control.set_workspace_webhook(receiver.url)
    handle.control.set_chaos(duplicates_min=1, duplicates_max=3, max_delay_seconds=0.3, seed=SEED)
    room_id = _room(handle)
    handle.control.script(room_id, _ops())
    handle.control.wait_for_deliveries()
    return room_id


class TestChaos:
    def test_duplicates_in_shuffled_order(
        self, emulator: EmulatorHandle, webhook_receiver: WebhookReceiver
    ) -> None:
        _chaotic_session(emulator, webhook_receiver)

        plan = emulator.control.chaos()["plan"]
        emitted = [e["id"] for e in emulator.control.events()]
        arrived = [w.json()["id"] for w in webhook_receiver.received]

        assert Counter(arrived) == Counter({p["event_id"]: len(p["delays"]) for p in plan})
        assert len(arrived) > len(emitted) == len(plan) == 32
        assert list(dict.fromkeys(arrived)) != emitted
        assert emulator.control.webhook_summary()["success"] == 32

    def test_receiver_rebuilds_the_ground_truth_exactly(
        self, emulator: EmulatorHandle, webhook_receiver: WebhookReceiver
    ) -> None:
        room_id = _chaotic_session(emulator, webhook_receiver)

        truth = emulator.control.ground_truth(room_id)
        rebuilt = _rebuild([w.json() for w in webhook_receiver.received])

        assert rebuilt == _truth_view(truth)
        assert truth["unique_viewers"] == 12 and truth["viewer_role_peers"] == 14

    def test_same_seed_same_plan(
        self, emulator: EmulatorHandle, webhook_receiver: WebhookReceiver
    ) -> None:
        plans = []
        for _ in range(2):
            emulator.control.reset()
            _chaotic_session(emulator, webhook_receiver)
            plans.append([(p["type"], p["delays"]) for p in emulator.control.chaos()["plan"]])

        assert plans[0] == plans[1]
        emulator.control.clear_chaos()
        assert emulator.control.chaos()["chaos"] is None
