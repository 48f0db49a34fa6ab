"""The inbox's group commit: requests already under way when a write begins are written with
it, in one transaction, and a stop still answers the events it has taken."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from livestage.tracking import inbox as inbox_module
from livestage.tracking.inbox import InboxWriter

pytestmark = pytest.mark.asyncio


class _NoTransaction:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each batch the inbox writes (nothing reaches a database)."""
    written: list[int] = []

    async def ingest_many(_session: Any, events: list[Any], *, now: Any) -> list[bool]:
        written.append(len(events))
        return [True] * len(events)

    monkeypatch.setattr(inbox_module, "transaction", lambda _maker: _NoTransaction())
    monkeypatch.setattr(inbox_module.tracking_service, "ingest_many", ingest_many)
    return written


def _writer() -> InboxWriter:
    writer = InboxWriter(cast(Any, None), clock=lambda: cast(Any, None))
    writer.start()
    return writer


async def test_requests_under_way_are_written_in_one_transaction(batches: list[int]) -> None:
    writer = _writer()

    async def request(steps: int) -> bool:
        for _ in range(steps):  # reading and checking the request before it is stored
            await asyncio.sleep(0)
        return await writer.store("hms", {"id": str(steps)})

    try:
        answers = await asyncio.wait_for(asyncio.gather(*(request(i % 4) for i in range(20))), 5)
    finally:
        await writer.stop()
    assert answers == [True] * 20
    assert batches == [20]


async def test_a_stop_answers_the_events_taken(batches: list[int]) -> None:
    writer = _writer()
    stored = asyncio.ensure_future(writer.store("hms", {"id": "1"}))
    while writer._queue.qsize() or not writer._writing:  # until the writer has taken it
        await asyncio.sleep(0)
    await writer.stop()
    assert await asyncio.wait_for(stored, 5) is True
    assert batches == [1]
