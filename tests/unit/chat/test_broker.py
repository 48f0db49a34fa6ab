"""ChatBroker: history first, nothing lost or doubled around it, every page in the stream's
order, and a page that cannot keep up closed (it reconnects to the history)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest

from livestage.chat import broker as chat_broker
from livestage.chat.broker import END, QUEUE_SIZE, ChatBroker, Opening, event_frame

pytestmark = pytest.mark.asyncio
STREAM = "5f0c6a4e-0000-4000-8000-000000000001"


def drain(queue: asyncio.Queue[bytes]) -> list[Any]:
    frames = []
    while not queue.empty():
        frames.append(queue.get_nowait())
    return frames


def numbers(writes: list[bytes]) -> list[int]:
    found = []
    for frame in b"".join(writes).split(b"\n\n"):
        if frame.startswith(b"event: message\n"):
            found.append(json.loads(frame.split(b"data: ", 1)[1])["n"])
    return found


@pytest.fixture(autouse=True)
def _every_event_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes are not gathered here, except where a test says so."""
    monkeypatch.setattr(chat_broker, "FLUSH_SECONDS", 0.0)


def post(broker: ChatBroker, seq: int) -> None:
    broker.publish("alice", "message", {"n": seq}, stream_id=STREAM, seq=seq)  # type: ignore[arg-type]


async def opened(messages: int = 0) -> Opening:
    return Opening(event_frame("history", {"messages": []}), STREAM, messages)


async def test_history_first_then_what_came_while_it_was_read_without_doubles() -> None:
    broker = ChatBroker()
    post(broker, 1)

    async def slow_history() -> Opening:
        post(broker, 2)  # committed before the history was read: the history holds it
        post(broker, 3)
        return await opened(messages=2)

    async with broker.subscribe("alice", slow_history) as queue:
        post(broker, 4)
        frames = drain(queue)
    assert frames[0].startswith(b"event: history\n")
    assert numbers(frames) == [3, 4]


async def test_messages_published_out_of_order_reach_pages_in_order() -> None:
    broker = ChatBroker()
    async with broker.subscribe("alice", opened) as queue:
        post(broker, 1)
        post(broker, 3)
        post(broker, 2)
        post(broker, 5)
        broker.publish("alice", "deleted", {"id": "x"})  # waits behind the held 5
        post(broker, 4)
        frames = drain(queue)
    assert numbers(frames) == [1, 2, 3, 4, 5]
    assert frames[-1].startswith(b"event: deleted\n")


async def test_a_lost_message_holds_the_next_only_briefly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chat_broker, "HOLD_SECONDS", 0.05)
    broker = ChatBroker()
    async with broker.subscribe("alice", opened) as queue:
        post(broker, 1)
        post(broker, 3)  # 2 never comes
        assert numbers(drain(queue)) == [1]
        await asyncio.sleep(0.1)
        assert numbers(drain(queue)) == [3]
        post(broker, 4)
        assert numbers(drain(queue)) == [4]
    await broker.stop()


async def test_a_page_that_falls_behind_is_closed_not_thinned() -> None:
    broker = ChatBroker()
    async with broker.subscribe("alice", opened) as queue:
        for seq in range(1, QUEUE_SIZE + 2):
            post(broker, seq)
        frames = drain(queue)
        assert frames == [END]
        assert broker.closed_behind == 1
        post(broker, QUEUE_SIZE + 2)  # no longer subscribed
        assert queue.empty()


async def test_events_close_together_reach_a_page_in_one_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chat_broker, "FLUSH_SECONDS", 0.05)
    broker = ChatBroker()
    async with broker.subscribe("alice", opened) as queue:
        drain(queue)
        post(broker, 1)  # the first goes at once
        post(broker, 2)
        post(broker, 3)
        post(broker, 4)
        first = drain(queue)
        await asyncio.sleep(0.1)
        rest = drain(queue)
    assert numbers(first) == [1]
    assert len(rest) == 1 and numbers(rest) == [2, 3, 4]
    await broker.stop()


async def test_a_flush_reaches_many_pages_a_few_a_turn_each_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No turn of the event loop writes to more than SPREAD_PAGES pages (the post holding the
    stream's counter waits behind every callback of a turn), and a flush that comes while one
    is under way lets the first finish: every page gets every message, in order."""
    monkeypatch.setattr(chat_broker, "SPREAD_PAGES", 3)
    broker = ChatBroker()
    async with contextlib.AsyncExitStack() as stack:
        queues = [
            await stack.enter_async_context(broker.subscribe("alice", opened)) for _ in range(8)
        ]
        for queue in queues:
            drain(queue)
        post(broker, 1)
        assert sum(not q.empty() for q in queues) == 3
        await asyncio.sleep(0)
        assert sum(not q.empty() for q in queues) == 6
        post(broker, 2)  # a second flush, while the first is under way
        await asyncio.sleep(0.01)
        assert [numbers(drain(q)) for q in queues] == [[1, 2]] * 8
    await broker.stop()


async def test_the_first_message_a_process_sees_waits_for_one_its_pages_have_not_seen() -> None:
    """Messages are published once committed: the first one a process receives may have
    overtaken the one numbered before it, which its open pages' histories do not hold."""
    broker = ChatBroker()
    async with broker.subscribe("alice", opened) as queue:
        post(broker, 2)
        assert numbers(drain(queue)) == []
        post(broker, 1)
        assert numbers(drain(queue)) == [1, 2]
    await broker.stop()
