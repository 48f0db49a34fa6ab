"""The waits ledger: what a request really waited on outside services."""

from __future__ import annotations

import asyncio

import pytest

from livestage.kit.waits import close_ledger, open_ledger, union_length, waited_seconds, waiting


@pytest.mark.parametrize(
    ("intervals", "expected"),
    [
        ([], 0.0),
        ([(0.0, 1.0)], 1.0),
        ([(0.0, 1.0), (2.0, 3.5)], 2.5),
        ([(0.0, 2.0), (1.0, 3.0)], 3.0),  # overlapping: gathered calls
        ([(0.0, 5.0), (1.0, 2.0)], 5.0),  # one inside the other
        ([(2.0, 3.0), (0.0, 1.0), (0.5, 2.5)], 3.0),
    ],
)
def test_the_union_of_the_intervals(intervals: list[tuple[float, float]], expected: float) -> None:
    assert union_length(intervals) == pytest.approx(expected)


@pytest.mark.asyncio
async def test_gathered_waits_count_once_and_nothing_is_recorded_without_a_ledger() -> None:
    async def wait(seconds: float) -> None:
        with waiting():
            await asyncio.sleep(seconds)

    await wait(0.01)
    assert waited_seconds() == 0.0
    ledger = open_ledger()
    try:
        # Counted twice the waits would make at least 0.4 s; the margin absorbs a busy loop.
        await asyncio.gather(wait(0.2), wait(0.2))
        assert 0.2 <= waited_seconds() < 0.4
    finally:
        close_ledger(ledger)
    assert waited_seconds() == 0.0
