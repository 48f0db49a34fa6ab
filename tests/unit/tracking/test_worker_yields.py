"""While webhooks flow, the worker lets their acknowledgements have SQLite's writer first,
but only up to INGEST_FIRST_SECONDS: live counts lag a burst, never indefinitely."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest

from livestage.streams.broker import LiveBroker
from livestage.tracking import worker as worker_module
from livestage.tracking.inbox import InboxWriter
from livestage.tracking.service import TrackingConfig
from livestage.tracking.worker import TrackingWorker

pytestmark = pytest.mark.asyncio


class Inbox:
    """Busy for the first `busy_checks` checks."""

    def __init__(self, busy_checks: float) -> None:
        self.busy_checks, self.checks = busy_checks, 0

    def busy(self, *, quiet: float) -> bool:
        self.checks += 1
        return self.checks <= self.busy_checks


def make_worker(inbox: Inbox) -> TrackingWorker:
    sqlite = SimpleNamespace(kw={"bind": SimpleNamespace(dialect=SimpleNamespace(name="sqlite"))})
    return TrackingWorker(
        cast(Any, sqlite),  # no database: what the worker asks of its sessionmaker is its dialect
        TrackingConfig(broadcaster_role="broadcaster", reconnect_grace=timedelta(seconds=60)),
        clock=cast(Any, None),
        broker=LiveBroker(),
        provider=None,
        poll_seconds=1,
        reconcile_seconds=0,
        inbox=cast(InboxWriter, inbox),
    )


async def test_applying_waits_until_the_inbox_is_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "INGEST_QUIET_SECONDS", 0.001)
    inbox = Inbox(busy_checks=3)
    await make_worker(inbox)._let_ingestion_go_first()
    assert inbox.checks == 4


async def test_a_flood_that_never_stops_holds_applying_back_only_so_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "INGEST_QUIET_SECONDS", 0.001)
    monkeypatch.setattr(worker_module, "INGEST_FIRST_SECONDS", 0.05)
    inbox = Inbox(busy_checks=float("inf"))
    await asyncio.wait_for(make_worker(inbox)._let_ingestion_go_first(), 5)
    assert inbox.checks >= 2


async def test_the_inbox_is_busy_while_events_arrive_then_quiet() -> None:
    inbox = InboxWriter(cast(Any, None), clock=cast(Any, None))
    assert not inbox.busy(quiet=0.05)
    inbox._last_store = asyncio.get_running_loop().time()
    assert inbox.busy(quiet=0.05)
    await asyncio.sleep(0.06)
    assert not inbox.busy(quiet=0.05)


async def test_a_burst_over_many_streams_is_recomputed_in_one_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More dirty streams than one transaction's share: the rest follow in further short
    transactions at once, not one share per wake-up of the loop (RECOMPUTE_SECONDS each)."""
    monkeypatch.setattr(worker_module, "transaction", lambda _maker: _NoTransaction())
    worker = make_worker(Inbox(busy_checks=0))
    shares: list[int] = []

    async def recompute(_session: Any, streams: set[Any]) -> set[Any]:
        shares.append(len(streams))
        return set(streams)

    async def publish(_session: Any, _streams: set[Any]) -> None:
        return None

    monkeypatch.setattr(worker, "_recompute", recompute)
    monkeypatch.setattr(worker, "_publish", publish)
    share = worker_module.RECOMPUTE_PER_TRANSACTION
    worker._dirty = set(range(3 * share + 1))
    await asyncio.wait_for(worker._recompute_due(), 5)
    assert worker._dirty == set()
    assert max(shares) == share and len(shares) == 4


async def test_streams_another_process_holds_stay_owed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "transaction", lambda _maker: _NoTransaction())
    worker = make_worker(Inbox(busy_checks=0))

    async def recompute(_session: Any, _streams: set[Any]) -> set[Any]:
        return set()

    async def publish(_session: Any, _streams: set[Any]) -> None:
        return None

    monkeypatch.setattr(worker, "_recompute", recompute)
    monkeypatch.setattr(worker, "_publish", publish)
    worker._dirty = {1, 2}
    await asyncio.wait_for(worker._recompute_due(), 5)
    assert worker._dirty == {1, 2}


async def test_a_costly_stream_waits_longer_for_its_next_recompute() -> None:
    """A recompute reads all a stream's peers: a stream whose last one took 0.2 s waits
    0.2 ÷ RECOMPUTE_SHARE before the next, where a cheap one waits RECOMPUTE_SECONDS. Settling
    (a drain's end) recomputes both."""
    worker = make_worker(Inbox(busy_checks=0))
    crowd = SimpleNamespace(id="crowd", unique_viewers=99_999)
    small = SimpleNamespace(id="small", unique_viewers=0)
    worker._note_costs(cast(Any, [crowd, small]), 0.2)
    assert worker._recompute_cost["crowd"] == pytest.approx(0.2 * 100_000 / 100_001)
    assert worker._recompute_cost["small"] == pytest.approx(0.2 / 100_001)
    pause = worker._recompute_cost["crowd"] / worker_module.RECOMPUTE_SHARE
    assert pause > 3 * worker_module.RECOMPUTE_SECONDS

    now = asyncio.get_running_loop().time()
    worker._dirty = {"crowd", "small"}
    worker._recomputed_at = {"crowd": now - 0.3, "small": now - 0.3}
    assert worker._due(settle=False, share=16) == {"small"}
    assert worker._due(settle=True, share=16) == {"crowd", "small"}
    worker._recomputed_at["crowd"] = now - pause - 0.01
    assert worker._due(settle=False, share=16) == {"crowd", "small"}


class _NoTransaction:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


async def test_a_streams_pause_counts_from_when_its_recompute_began(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Delivering the commit's updates (here 0.1 s) is not part of the pause: a stream changed
    again RECOMPUTE_SECONDS after its recompute began is due, however long the delivery."""
    monkeypatch.setattr(worker_module, "transaction", lambda _maker: _NoTransaction())
    worker = make_worker(Inbox(busy_checks=0))
    stream = SimpleNamespace(id="s", unique_viewers=0)

    async def recompute_many(*_args: Any, **_kwargs: Any) -> list[Any]:
        return [stream]

    monkeypatch.setattr(worker_module.tracking_service, "recompute_many", recompute_many)
    monkeypatch.setattr(worker, "clock", lambda: None)
    loop = asyncio.get_running_loop()
    began = loop.time()
    done = await worker._recompute(cast(Any, None), {"s"})
    await asyncio.sleep(0.1)  # the updates delivered after the commit
    worker._recomputed(done)

    assert worker._recomputed_at["s"] - began < 0.05
    worker._dirty = {"s"}
    await asyncio.sleep(worker_module.RECOMPUTE_SECONDS - 0.1 + 0.01)
    assert worker._due(settle=False, share=16) == {"s"}


async def test_the_loop_waits_until_the_first_owed_stream_is_due() -> None:
    """Not for a whole RECOMPUTE_SECONDS: a stream recomputed 0.2 s ago is due in 0.05 s. Never
    less than COALESCE_SECONDS (a stream another process holds is not asked for in a spin)."""
    worker = make_worker(Inbox(busy_checks=0))
    now = asyncio.get_running_loop().time()
    worker._dirty = {"recent"}
    worker._recomputed_at = {"recent": now - 0.2}
    assert worker._until_next_due() == pytest.approx(
        worker_module.RECOMPUTE_SECONDS - 0.2, abs=0.02
    )
    worker._dirty = {"recent", "never"}
    assert worker._until_next_due() == worker_module.COALESCE_SECONDS
    worker._dirty = {"just now"}
    worker._recomputed_at = {"just now": now}
    assert worker._until_next_due() == pytest.approx(worker_module.RECOMPUTE_SECONDS, abs=0.02)


async def test_a_lane_recomputes_its_share_among_the_streams_it_holds() -> None:
    worker = make_worker(Inbox(busy_checks=0))
    worker._dirty = set(range(40))
    held = set(range(0, 40, 2))
    due = worker._due(settle=False, share=4, among=held)
    assert len(due) == 4 and due <= held
    assert worker._due(settle=True, share=4, among=held) == held


async def test_a_stream_it_could_not_recompute_is_tried_again_after_a_pause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another process holds it, or it was deleted: the loop does not come back for it every
    COALESCE_SECONDS, only after RECOMPUTE_SECONDS."""
    worker = make_worker(Inbox(busy_checks=0))

    async def recompute_many(*_args: Any, **_kwargs: Any) -> list[Any]:
        return []

    monkeypatch.setattr(worker_module.tracking_service, "recompute_many", recompute_many)
    monkeypatch.setattr(worker, "clock", lambda: None)
    worker._dirty = {"held"}
    assert await worker._recompute(cast(Any, None), {"held"}) == set()
    assert worker._dirty == {"held"}
    assert worker._until_next_due() == pytest.approx(worker_module.RECOMPUTE_SECONDS, abs=0.02)
