"""Every call the 100ms client makes is timed, and every failure counted, by a label that
never carries an id."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from livestage.providers.hms.errors import HmsNotFound, HmsRequestError, HmsTransientError
from tests.contract.test_hms_client_contract import make_client
from tests.support.emulator import EmulatorHandle

pytestmark = pytest.mark.asyncio


def calls(call: str) -> float:
    return REGISTRY.get_sample_value("livestage_provider_call_seconds_count", {"call": call}) or 0.0


def errors(call: str, kind: str) -> float:
    labels = {"call": call, "kind": kind}
    return REGISTRY.get_sample_value("livestage_provider_call_errors_total", labels) or 0.0


async def test_a_call_is_timed_by_its_path_template(emulator: EmulatorHandle) -> None:
    before_create, before_get = calls("POST /rooms"), calls("GET /rooms/{id}")
    async with make_client(emulator) as client:
        room = await client.create_room("stage")
        await client.get_room(room.id)
    assert calls("POST /rooms") == before_create + 1
    assert calls("GET /rooms/{id}") == before_get + 1
    labels = {
        sample.labels.get("call", "")
        for family in REGISTRY.collect()
        if family.name.startswith("livestage_provider_call")
        for sample in family.samples
    }
    assert not any(room.id in label for label in labels)


async def test_failures_are_counted_transient_or_permanent(emulator: EmulatorHandle) -> None:
    transient, permanent = (
        errors("POST /rooms", "transient"),
        errors("GET /rooms/{id}", "permanent"),
    )
    timed = calls("POST /rooms")
    emulator.control.queue_fault("/v2/rooms", kind="status", status=503, count=10)
    async with make_client(emulator, max_retries=1) as client:
        with pytest.raises(HmsTransientError):
            await client.create_room("stage")
    emulator.control.reset()
    async with make_client(emulator) as client:
        with pytest.raises(HmsNotFound):
            await client.get_room("0" * 24)
    assert errors("POST /rooms", "transient") == transient + 1
    assert errors("GET /rooms/{id}", "permanent") == permanent + 1
    # A failed call is timed too, its retries included (one call, not one per attempt).
    assert calls("POST /rooms") == timed + 1


async def test_the_room_code_exchange_is_named_as_the_auth_api(emulator: EmulatorHandle) -> None:
    before = errors("POST auth/token", "permanent")
    async with make_client(emulator) as client:
        with pytest.raises(HmsRequestError):
            await client.exchange_room_code("nosuch-code")
    assert errors("POST auth/token", "permanent") == before + 1
