"""The in-process worker: applies stored events, ends streams after the grace (fails those
whose broadcaster never joined), reconciles.

Owned by the app lifespan. Events are processed from the database, never from memory, so an
event stored before a crash is processed after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from livestage.db import transaction
from livestage.kit.db import on_commit
from livestage.kit.leader import Leadership, SoleProcess
from livestage.kit.tasks import uncancelled
from livestage.kit.time import Clock
from livestage.models import LiveStream
from livestage.providers.base import StreamingProvider
from livestage.streams.broker import LiveBroker
from livestage.streams.repository import StreamRepository
from livestage.streams.updates import live_update
from livestage.tracking import reconciler
from livestage.tracking.inbox import InboxWriter
from livestage.tracking.reconciler import ReconcileReport
from livestage.tracking.repository import Lane
from livestage.tracking.service import TrackingConfig
from livestage.tracking.service import tracking as tracking_service

log = structlog.get_logger()
# Events applied per transaction on SQLite. There a transaction holds the one write
# lock, and webhook acknowledgements and go-lives wait behind it, so a batch is sized to hold it
# about SQLITE_HOLD_SECONDS, from the cost per event of the last full batch: 1,000 at first,
# more where events are cheap. A batch has fixed costs (its streams read and locked, a share of
# recomputes, a commit): on a fast machine 1,000 events took ~0.15 s, 2,000 events ~0.24 s.
SQLITE_LARGEST_BATCH = 5000
SQLITE_FIRST_BATCH = 1000
SQLITE_SMALLEST_BATCH = 200
SQLITE_HOLD_SECONDS = 0.3
# PostgreSQL has no one writer to share, so its batches are larger: a batch's fixed costs (its
# streams read and locked, a share of recomputes to keep live counts fresh, a commit) were a
# third of a drain's time at 1,000, and still 8 % at 3,000. A batch of 6,000 holds its
# streams' rows locked (an End Stream on one of them waits) for about half a second alone, up
# to ~1.5 s beside three other lanes (each lane's streams are its own).
BATCH_POSTGRESQL = 6000
# And it applies a backlog in lanes at once, each the events of a share of the rooms
# (repository.Lane), on a connection of its own: no two lanes hold the same stream, and while
# one waits on the server another runs here. One lane at a time, the server and this process
# each sat idle while the other worked: 2 lanes applied a 20,000-event backlog ~1.3× as fast,
# 4 lanes ~1.5×; smaller batches (more transactions) did worse (bench/results/NOTES.md, s15).
LANES_POSTGRESQL = 4
# But a burst is applied in one transaction first, up to this many events: the lanes' fixed
# costs (four claims, lookups, locks and commits for a few events each, on one core) took a
# burst of 200 webhooks, one per stream, ~150 ms to apply, where one transaction took ~65.
# Only what is left after it (a backlog) goes to the lanes.
FIRST_BATCH_POSTGRESQL = 1000
# After a wake-up, wait this long so a burst of events is applied (and its streams recomputed
# and announced) once, not once per event.
COALESCE_SECONDS = 0.02
# Under a flood of events a stream's figures are recomputed (and announced) at most this often;
# a quiet stream's first event is recomputed at once.
RECOMPUTE_SECONDS = 0.25
# While webhooks arrive, acknowledging them has SQLite's one writer first: a batch is applied
# once the inbox has been quiet this long, or at the latest after INGEST_FIRST_SECONDS (how
# far live counts may lag a burst). Applying costs several times what storing does.
INGEST_QUIET_SECONDS = 0.02
INGEST_FIRST_SECONDS = 0.5
# Recomputing a stream reads its recent peers: with hundreds of streams in a burst, recomputing
# every one in the same transaction held SQLite's writer for seconds. So a transaction that
# applies events recomputes at most RECOMPUTE_PER_TRANSACTION of their streams (lanes share
# it): while events flood in, applying them comes first.
RECOMPUTE_PER_TRANSACTION = 16
# Once they are applied, the streams still owed are recomputed in transactions of their own.
# On PostgreSQL, once webhooks stop arriving, these are larger: it has no one writer, and each
# transaction's fixed costs (the streams locked, the commit) add up. After a burst of 200
# joins, one to each of 200 streams with ~400 recent peers each, the last page had its update
# after ~1.1-1.4 s in shares of 16, ~0.8-1.0 s in shares of 64; shares of 128 and 200 were
# no faster, and held more in memory at once (bench/results/NOTES.md, s16).
RECOMPUTE_ONLY_PER_TRANSACTION_POSTGRESQL = 64
# And a stream's recompute costs more the larger its crowd has grown. Under a flood, a stream
# is recomputed again only after its last recompute's cost ÷ RECOMPUTE_SHARE: a stream's
# recomputes take at most this share of the worker's time, whatever its history.
RECOMPUTE_SHARE = 0.2


class TrackingWorker:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        config: TrackingConfig,
        *,
        clock: Clock,
        broker: LiveBroker,
        provider: StreamingProvider | None,
        poll_seconds: float,
        reconcile_seconds: float,
        inbox: InboxWriter | None = None,
        leadership: Leadership | None = None,
        reads: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.sessionmaker, self.config, self.clock = sessionmaker, config, clock
        # The periodic checks look in read-only sessions first: on SQLite a write transaction
        # takes the one writer, and three of them a second, all finding nothing, were what
        # go-live's and webhooks' own transactions waited behind.
        self.reads = reads or sessionmaker
        self.inbox = inbox
        # Periodic jobs (grace ends, owed recomputes, the reconciler) run in one process of a
        # cluster; every process applies events (claimed with SKIP LOCKED).
        self.leadership: Leadership = leadership or SoleProcess()
        self.broker, self.provider = broker, provider
        self.poll_seconds, self.reconcile_seconds = poll_seconds, reconcile_seconds
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._dirty: set[Any] = set()
        self._recomputed_at: dict[Any, float] = {}
        self._recompute_cost: dict[Any, float] = {}
        self._sqlite_batch = min(SQLITE_FIRST_BATCH, SQLITE_LARGEST_BATCH)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._events_loop()))
        if self.provider is not None and self.reconcile_seconds > 0:
            self._tasks.append(asyncio.create_task(self._reconcile_loop()))

    async def stop(self) -> None:
        """Stop the loops, then recompute the figures still owed: a stream whose last events
        came inside the recompute throttle keeps current figures across a restart."""
        running = bool(self._tasks)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if running and self._dirty:
            await _logged(self._recompute_owed)

    async def _recompute_owed(self) -> None:
        async with self._lock, transaction(self.sessionmaker) as session:
            done = await self._recompute(session, set(self._dirty))
            await self._publish(session, done)
        self._recomputed(done)

    def notify(self) -> None:
        self._wake.set()

    async def drain(self) -> int:
        """Process every stored event and bring the figures of every stream they touched up
        to date; returns how many were applied."""
        return await self._drain(settle=True)

    async def _drain(self, *, settle: bool) -> int:
        async with self._lock:
            if (
                not settle
                and not self._due(settle=False, share=1)
                and not await self._events_waiting()
            ):
                return 0
            if self._sqlite():
                total = await self._drain_lane(None, settle=settle)
            else:
                total, last = await self._apply_batch(None, FIRST_BATCH_POSTGRESQL, settle=settle)
                if not last:
                    lanes = [Lane(i, LANES_POSTGRESQL) for i in range(LANES_POSTGRESQL)]
                    drained = await asyncio.gather(
                        *(self._drain_lane(lane, settle=settle) for lane in lanes)
                    )
                    total += sum(drained)
            if settle and self._dirty:  # those a lane held while another recomputed
                async with transaction(self.sessionmaker) as session:
                    done = await self._recompute(session, set(self._dirty))
                    await self._publish(session, done)
                self._recomputed(done)
            elif not settle:
                await self._recompute_due()
            return total

    def _sqlite(self) -> bool:
        return bool(self.sessionmaker.kw["bind"].dialect.name == "sqlite")

    async def _drain_lane(self, lane: Lane | None, *, settle: bool) -> int:
        total = 0
        while True:
            limit = self._sqlite_batch if self._sqlite() else BATCH_POSTGRESQL
            processed, last = await self._apply_batch(lane, limit, settle=settle)
            total += processed
            if last:
                return total

    async def _apply_batch(
        self, lane: Lane | None, limit: int, *, settle: bool
    ) -> tuple[int, bool]:
        """One transaction: up to `limit` events (of `lane`'s rooms) applied, and a share of
        the streams owed a recompute among those it holds. How many were applied, and
        whether that was the last of them."""
        if not settle:
            await self._let_ingestion_go_first()
        began = asyncio.get_running_loop().time()
        async with transaction(self.sessionmaker) as session:
            result = await tracking_service.process_pending(
                session, self.config, now=self.clock(), limit=limit, recompute=False, lane=lane
            )
            self._dirty |= result.touched
            last = result.processed + result.failed < limit
            # A lane recomputes its share among the streams it holds: another holds the rest.
            if lane is None:
                due = self._due(settle=settle and last, share=RECOMPUTE_PER_TRANSACTION)
            else:
                share = max(1, RECOMPUTE_PER_TRANSACTION // lane.lanes)
                due = self._due(settle=settle and last, share=share, among=result.touched)
            done = await self._recompute(session, due)
            await self._publish(session, done)
        self._recomputed(done)
        if self._sqlite() and not last:
            held = asyncio.get_running_loop().time() - began
            self._sqlite_batch = sqlite_batch_after(self._sqlite_batch, limit, held)
        return result.processed, last

    async def _recompute_due(self) -> None:
        """The due streams beyond one transaction's share, in more short transactions now (each
        after ingestion), not one share per wake-up of the loop: the 200 streams of one burst
        waited 13 wake-ups of RECOMPUTE_SECONDS for their update. Larger shares on PostgreSQL,
        but only once webhooks have stopped arriving: while they flood in, each share waits
        for them, so a share's size set how much of the time went to recomputing (64 took
        webhooks ÷ floor from 0.37 to 0.27-0.31)."""
        while self._dirty:
            quiet = await self._let_ingestion_go_first()
            share = RECOMPUTE_PER_TRANSACTION
            if quiet and not self._sqlite():
                share = RECOMPUTE_ONLY_PER_TRANSACTION_POSTGRESQL
            if not (due := self._due(settle=False, share=share)):
                return
            async with transaction(self.sessionmaker) as session:
                done = await self._recompute(session, due)
                await self._publish(session, done)
            self._recomputed(done)
            if not done:
                return  # other processes hold them: they stay owed

    async def _events_waiting(self) -> bool:
        async with self.reads() as session:
            return await tracking_service.has_unprocessed(session)

    async def _let_ingestion_go_first(self) -> bool:
        """Wait while webhooks arrive, up to INGEST_FIRST_SECONDS; whether they stopped."""
        if self.inbox is None:
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + INGEST_FIRST_SECONDS
        while self.inbox.busy(quiet=INGEST_QUIET_SECONDS):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(INGEST_QUIET_SECONDS)
        return True

    async def _recompute(self, session: AsyncSession, streams: set[Any]) -> set[Any]:
        """Recompute what it can; a stream another process holds stays owed."""
        if not streams:
            return set()
        loop = asyncio.get_running_loop()
        began = loop.time()
        done = await tracking_service.recompute_many(
            session, streams, self.config, now=self.clock()
        )
        self._note_costs(done, loop.time() - began)
        # Each stream's pause counts from when its recompute began: the commit's updates are
        # delivered before the caller goes on (to 5,000 pages of one stream, ~150 ms), and
        # counted from after them, a change the pages' viewers made in reply waited for the
        # loop's next turn. One it could not have (another process holds it, or it is gone)
        # pauses too: the loop waits for the next owed stream, and would otherwise come back
        # for this one every COALESCE_SECONDS.
        self._recomputed_at.update(dict.fromkeys(streams, began))
        return {stream.id for stream in done}

    def _note_costs(self, streams: list[LiveStream], seconds: float) -> None:
        """Each stream's share of one recompute's time, by its number of viewers: what a
        recompute reads grows with its peers."""
        weights = {stream.id: stream.unique_viewers + 1 for stream in streams}
        total = sum(weights.values())
        for stream_id, weight in weights.items():
            self._recompute_cost[stream_id] = seconds * weight / total

    def _pause_after_recompute(self, stream_id: Any) -> float:
        return max(RECOMPUTE_SECONDS, self._recompute_cost.get(stream_id, 0.0) / RECOMPUTE_SHARE)

    def _due(self, *, settle: bool, share: int, among: set[Any] | None = None) -> set[Any]:
        """The dirty streams (`among` these, if given) to recompute now: all when settling,
        else at most `share` of those whose pause after their last recompute is over
        (RECOMPUTE_SECONDS, longer for a costly one), the longest-waiting first (the others
        are due in the next transaction)."""
        at = asyncio.get_running_loop().time()
        dirty = self._dirty if among is None else self._dirty & among
        if settle:
            return set(dirty)
        last = self._recomputed_at
        waited = {s: at - last.get(s, -math.inf) for s in dirty}
        due = [s for s, seconds in waited.items() if seconds >= self._pause_after_recompute(s)]
        due.sort(key=waited.__getitem__, reverse=True)
        return set(due[:share])

    def _until_next_due(self) -> float:
        """Seconds until the first owed stream's pause is over: its recompute waits that long,
        not for the loop's next turn. At least COALESCE_SECONDS (a stream another process holds
        stays owed, and is not asked for again at once), at most RECOMPUTE_SECONDS."""
        at = asyncio.get_running_loop().time()
        last = self._recomputed_at
        left = min(
            (self._pause_after_recompute(s) - (at - last.get(s, -math.inf)) for s in self._dirty),
            default=RECOMPUTE_SECONDS,
        )
        return min(max(left, COALESCE_SECONDS), RECOMPUTE_SECONDS, self.poll_seconds)

    def _recomputed(self, streams: set[Any]) -> None:
        """After the commit: only then are these streams' figures really up to date."""
        at = asyncio.get_running_loop().time()
        self._dirty -= streams
        if len(self._recomputed_at) > 10_000:
            pausing = {
                k: v
                for k, v in self._recomputed_at.items()
                if at - v < self._pause_after_recompute(k)
            }
            costs = self._recompute_cost
            self._recomputed_at = pausing
            self._recompute_cost = {k: costs[k] for k in pausing if k in costs}

    async def end_after_grace(self) -> list[LiveStream]:
        async with self._lock, transaction(self.sessionmaker) as session:
            ended = await tracking_service.end_after_grace(session, self.config, now=self.clock())
            await self._publish(session, {s.id for s in ended})
            return ended

    async def _end_after_grace_if_due(self) -> None:
        async with self.reads() as session:
            due = await tracking_service.due_to_end(session, self.config, now=self.clock())
        if due:
            await self.end_after_grace()

    async def reconcile(self) -> ReconcileReport | None:
        """Two short transactions around the provider calls, which hold neither a transaction
        nor the worker's lock: events are applied meanwhile (reconciler.py)."""
        if self.provider is None:
            return None
        report, now = ReconcileReport(), self.clock()
        async with self._lock, transaction(self.sessionmaker) as session:
            todo = await reconciler.plan(session, self.provider, self.config, report, now=now)
            await self._publish(session, {s.id for s in report.ended})
        deadline = self.config.provider_deadline_seconds
        answers = await reconciler.ask(self.provider, todo, deadline_seconds=deadline)
        failed = len(report.ended)
        async with self._lock, transaction(self.sessionmaker) as session:
            await reconciler.record(session, todo, answers, self.config, report, now=now)
            await self._publish(session, {s.id for s in report.ended[failed:]})
        reconciler.log_report(report)
        return report

    async def _pick_up_owed_recomputes(self) -> None:
        """The recomputes an earlier run of the worker left owed (it stopped or was killed
        between applying events and recomputing their streams)."""
        async with self.reads() as session:
            self._dirty |= await tracking_service.stale_streams(session)

    async def _events_loop(self) -> None:
        loop = asyncio.get_running_loop()
        graced_at = loop.time()
        if self.leadership.held:
            await _logged(self._pick_up_owed_recomputes)
        while True:
            wait = self._until_next_due() if self._dirty else self.poll_seconds
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
                await asyncio.sleep(COALESCE_SECONDS)
            self._wake.clear()
            await _logged(partial(self._drain, settle=False))
            if loop.time() - graced_at >= self.poll_seconds and self.leadership.held:
                graced_at = loop.time()
                await _logged(self._end_after_grace_if_due)
                await _logged(self._pick_up_owed_recomputes)

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(self.reconcile_seconds)
            if self.leadership.held:
                await _logged(self.reconcile)

    async def _publish(self, session: AsyncSession, stream_ids: set[Any]) -> None:
        updates = []
        for stream_id in stream_ids:
            stream = await StreamRepository(session).get(stream_id)
            if stream is not None:
                updates.append(live_update(stream))
        for update in updates:
            on_commit(session, partial(self._send, update))

    def _send(self, update: dict[str, Any]) -> None:
        self.broker.publish(update["handle"], update)


def sqlite_batch_after(size: int, events: int, seconds: float) -> int:
    """The next SQLite batch's size after a full batch of `events` took `seconds` (its wait
    for the writer included, so batches shrink while others want it): halfway from `size` to
    what holds it SQLITE_HOLD_SECONDS at that cost per event (so one slow batch, the machine
    busy elsewhere, moves it only so far), within its bounds."""
    fits = SQLITE_HOLD_SECONDS * events / max(seconds, 1e-6)
    return int(min(max((size + fits) / 2, SQLITE_SMALLEST_BATCH), SQLITE_LARGEST_BATCH))


async def _logged(work: Callable[[], Awaitable[object]]) -> None:
    try:
        await uncancelled(work())
    except Exception:  # the loop must survive any one failure; the next tick retries
        log.exception("tracking.worker_error")
