"""One time budget for all the outside calls of a piece of work."""

from __future__ import annotations

import asyncio

import pytest

from livestage.kit import deadlines


def test_no_budget_outside_a_block() -> None:
    assert deadlines.remaining() is None
    with deadlines.within(5):
        assert 4.9 < (deadlines.remaining() or 0) <= 5
    assert deadlines.remaining() is None


def test_an_inner_budget_cannot_extend_the_outer_one() -> None:
    with deadlines.within(1):
        with deadlines.within(60):
            assert (deadlines.remaining() or 0) <= 1
        with deadlines.within(0.5):
            assert (deadlines.remaining() or 0) <= 0.5


def test_a_spent_budget_is_zero_not_negative() -> None:
    with deadlines.within(0):
        assert deadlines.remaining() == 0


@pytest.mark.asyncio
async def test_gathered_tasks_share_the_budget_and_other_tasks_do_not_see_it() -> None:
    async def left() -> float | None:
        return deadlines.remaining()

    outside = asyncio.create_task(left())
    with deadlines.within(3):
        inside = await asyncio.gather(left(), left())
    assert all(seconds is not None and seconds <= 3 for seconds in inside)
    assert await outside is None
