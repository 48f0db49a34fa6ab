"""Chaos delivery: every event 1..n times, each copy after a seeded random delay."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from hms_emulator import WebhookChaos
from hms_emulator.chaos import ChaosPlanner
from tests.emulator.conftest import Emu, WebhookSink
from tests.support.emulator import join_op

WORKSPACE_URL = "http://127.0.0.1:9/hooks"
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CHAOS = {"duplicates_min": 1, "duplicates_max": 3, "max_delay_seconds": 0.2, "seed": 123}


@pytest.fixture
def emu_overrides() -> dict[str, Any]:
    return {"webhook_url": WORKSPACE_URL}


async def _set_chaos(emu: Emu, **settings: Any) -> httpx.Response:
    return await emu.http.post("/_emulator/webhook-chaos", json={**CHAOS, **settings})


async def _viewers(emu: Emu, count: int = 5) -> None:
    room = await emu.room()
    ops = [join_op(f"v{i}", T0 + timedelta(seconds=i)) for i in range(count)]
    response = await emu.http.post(f"/_emulator/rooms/{room['id']}/script", json={"events": ops})
    assert response.status_code == 201, response.text


async def _plan(emu: Emu) -> list[dict[str, Any]]:
    plan: list[dict[str, Any]] = (await emu.http.get("/_emulator/webhook-chaos")).json()["plan"]
    return plan


def _received_ids(sink: WebhookSink) -> list[str]:
    return [json.loads(r.content)["id"] for r in sink.received]


class TestControl:
    @pytest.mark.asyncio
    async def test_set_show_clear(self, emu: Emu) -> None:
        created = await _set_chaos(emu)
        shown = (await emu.http.get("/_emulator/webhook-chaos")).json()
        cleared = await emu.http.delete("/_emulator/webhook-chaos")

        assert created.status_code == 200
        assert created.json() == {"chaos": CHAOS, "plan": []}
        assert shown["chaos"] == CHAOS
        assert cleared.json() == {"chaos": None}
        assert emu.runtime.webhooks.chaos is None

    @pytest.mark.asyncio
    async def test_without_a_seed_one_is_chosen_and_shown(self, emu: Emu) -> None:
        chaos = (await _set_chaos(emu, seed=None)).json()["chaos"]

        assert isinstance(chaos["seed"], int)

    @pytest.mark.parametrize(
        "settings",
        [
            {"duplicates_min": 0},
            {"duplicates_min": 3, "duplicates_max": 2},
            {"duplicates_max": 11},
            {"max_delay_seconds": -1},
            {"max_delay_seconds": "soon"},
            {"seed": "abc"},
            {"duplicates_min": True},
        ],
    )
    @pytest.mark.asyncio
    async def test_bad_settings(self, emu: Emu, settings: dict[str, Any]) -> None:
        response = await _set_chaos(emu, **settings)

        assert response.status_code == 400
        assert emu.runtime.webhooks.chaos is None

    @pytest.mark.asyncio
    async def test_reset_turns_it_off(self, emu: Emu) -> None:
        await _set_chaos(emu)

        await emu.http.post("/_emulator/reset")

        assert (await emu.http.get("/_emulator/webhook-chaos")).json()["chaos"] is None


class TestDelivery:
    @pytest.mark.asyncio
    async def test_every_copy_is_delivered_as_planned(
        self, emu: Emu, webhook_sink: WebhookSink
    ) -> None:
        await _set_chaos(emu)
        await _viewers(emu)
        await emu.drain()

        plan = await _plan(emu)

        assert [p["type"] for p in plan] == [e["type"] for e in emu.events()]
        expected = Counter({p["event_id"]: len(p["delays"]) for p in plan})
        assert Counter(_received_ids(webhook_sink)) == expected
        assert max(expected.values()) > 1
        assert all(0 <= d <= 0.2 for p in plan for d in p["delays"])
        copies = {a.copy for a in emu.runtime.state.webhook_attempts}
        assert copies == set(range(1, max(expected.values()) + 1))

    @pytest.mark.asyncio
    async def test_arrival_follows_the_delays_not_the_emission_order(
        self, emu: Emu, webhook_sink: WebhookSink
    ) -> None:
        await _set_chaos(emu, duplicates_min=1, duplicates_max=1, max_delay_seconds=0.3, seed=7)
        await _viewers(emu, 3)
        await emu.drain()

        plan = await _plan(emu)
        by_delay = [p["event_id"] for p in sorted(plan, key=lambda p: p["delays"][0])]
        delays = sorted(p["delays"][0] for p in plan)

        # The test's seed spreads the delays well apart, so the order cannot depend on timing.
        assert min(b - a for a, b in zip(delays, delays[1:], strict=False)) > 0.02
        assert by_delay != [e["id"] for e in emu.events()]
        assert _received_ids(webhook_sink) == by_delay

    @pytest.mark.asyncio
    async def test_same_seed_same_plan(self, emu: Emu) -> None:
        plans = []
        for seed in (123, 123, 124):
            await emu.http.post("/_emulator/reset")
            await _set_chaos(emu, seed=seed)
            await _viewers(emu)
            plans.append([(p["type"], p["delays"]) for p in await _plan(emu)])
            await emu.drain()

        assert plans[0] == plans[1]
        assert plans[0] != plans[2]

    @pytest.mark.asyncio
    async def test_each_copy_retries_on_its_own(self, emu: Emu, webhook_sink: WebhookSink) -> None:
        webhook_sink.answer("session.open.success", 204, 500)
        await _set_chaos(emu, duplicates_min=2, duplicates_max=2, max_delay_seconds=0)
        await _viewers(emu, 1)
        await emu.drain()

        opened = [a for a in emu.runtime.state.webhook_attempts if a.type == "session.open.success"]

        # 204 is not 200: the two copies each got one failure, then each retried to a 200.
        assert sorted((a.attempt, a.status) for a in opened) == [
            (1, 204),
            (1, 500),
            (2, 200),
            (2, 200),
        ]
        assert Counter(a.copy for a in opened) == {1: 2, 2: 2}
        rows = (
            await emu.api(
                "GET",
                "/analytics/webhooks",
                params={
                    "start_time": "2026-11-21T00:00:00Z",
                    "end_time": "2026-11-22T00:00:00Z",
                    "event_names": "session.open.success",
                },
            )
        ).json()["data"]
        assert (rows[0]["status"], rows[0]["attempts"]) == ("success", 4)

    @pytest.mark.asyncio
    async def test_replays_go_through_chaos_too(self, emu: Emu, webhook_sink: WebhookSink) -> None:
        await _viewers(emu, 1)
        await emu.drain()
        await _set_chaos(emu, duplicates_min=2, duplicates_max=2, max_delay_seconds=0)
        sent_before = len(webhook_sink.received)

        body = {
            "start_time": "2026-11-21T00:00:00Z",
            "end_time": "2026-11-22T00:00:00Z",
            "status": "all",
        }
        await emu.api("POST", "/analytics/webhooks/replay", json=body)
        await emu.drain()

        replayed = [json.loads(r.content) for r in webhook_sink.received[sent_before:]]
        assert len(replayed) == 4
        assert all(b["is_replay"] for b in replayed)
        assert {p["replay"] for p in await _plan(emu)} == {True}


class TestPlanner:
    def test_draws_are_reproducible(self) -> None:
        settings = WebhookChaos(1, 3, 0.5, seed=99)

        first, second = ChaosPlanner(settings), ChaosPlanner(settings)

        assert [first.delays() for _ in range(20)] == [second.delays() for _ in range(20)]

    def test_bounds(self) -> None:
        planner = ChaosPlanner(WebhookChaos(2, 4, 0.1, seed=1))

        draws = [planner.delays() for _ in range(200)]

        assert {len(d) for d in draws} == {2, 3, 4}
        assert all(0 <= x <= 0.1 for d in draws for x in d)


class TestConfigured:
    @pytest.fixture
    def emu_overrides(self) -> dict[str, Any]:
        return {"webhook_url": WORKSPACE_URL, "webhook_chaos": WebhookChaos(2, 2, 0.0, seed=5)}

    @pytest.mark.asyncio
    async def test_chaos_from_the_config_survives_a_reset(
        self, emu: Emu, webhook_sink: WebhookSink
    ) -> None:
        await emu.http.post("/_emulator/reset")
        await _viewers(emu, 1)
        await emu.drain()

        shown = (await emu.http.get("/_emulator/webhook-chaos")).json()["chaos"]
        assert shown == {
            "duplicates_min": 2,
            "duplicates_max": 2,
            "max_delay_seconds": 0.0,
            "seed": 5,
        }
        assert Counter(Counter(_received_ids(webhook_sink)).values()) == {2: 2}
