"""`uncancelled`: a caller's cancellation waits for the work in hand, then is raised."""

from __future__ import annotations

import asyncio

import pytest

from livestage.kit.tasks import uncancelled

pytestmark = pytest.mark.asyncio


async def test_a_cancelled_caller_waits_for_the_work_then_is_cancelled() -> None:
    finished: list[str] = []

    async def work() -> str:
        await asyncio.sleep(0.05)
        finished.append("work")
        return "done"

    caller = asyncio.create_task(uncancelled(work()))
    await asyncio.sleep(0.01)
    caller.cancel()
    await asyncio.sleep(0)
    caller.cancel()  # a second stop does not cut the work short either
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert finished == ["work"]


async def test_the_result_and_the_failure_reach_an_uncancelled_caller() -> None:
    async def answer() -> int:
        return 42

    async def fail() -> None:
        raise ValueError("boom")

    assert await uncancelled(answer()) == 42
    with pytest.raises(ValueError, match="boom"):
        await uncancelled(fail())


async def test_a_failure_during_a_cancelled_wait_is_chained_to_the_cancellation() -> None:
    async def fail_later() -> None:
        await asyncio.sleep(0.02)
        raise ValueError("late")

    caller = asyncio.create_task(uncancelled(fail_later()))
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_work_cancelled_by_itself_cancels_the_caller() -> None:
    async def gives_up() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(1)

    with pytest.raises(asyncio.CancelledError):
        await uncancelled(gives_up())
