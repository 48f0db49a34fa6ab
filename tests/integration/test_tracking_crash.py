"""Crash safety of the webhook inbox: livestage is SIGKILLed in the middle of a burst.

livestage runs as its own OS process (`python -m uvicorn livestage.app:create_app --factory`) on
a SQLite file. A burst of unique 100ms events (one whole session) is sent concurrently, in a
shuffled order, with the right secret header; the process is killed with SIGKILL while requests
are in flight and the worker is applying what was stored. A new process is started on the same
database and every event that did not get its 200 is sent again, as 100ms would retry it.

No event acknowledged with a 200 may be lost, every event must be stored exactly once and applied
exactly once, and the stream must end up with exactly the figures computed from the full event
set (here, independently, by brute force).
"""

from __future__ import annotations

import asyncio
import random
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from livestage.config import Settings
from livestage.tracking.verification import WEBHOOK_SECRET_HEADER, webhook_secret
from tests.support.app_process import (
    AppProcess,
    PeerRow,
    StoredStream,
    app_environment,
    free_port,
    migrated_sqlite,
    read_events,
    read_stream,
    seed_influencer,
    seed_stream,
)
from tests.support.hms_events import SessionScript

SEED = 7
VIEWER_JOINS = 300
DISTINCT_USERS = 220
CONCURRENCY = 24
# SIGKILL once this many events of the burst have been acknowledged.
KILL_AFTER = 250
ROOM = secrets.token_hex(12)


# The session: events and the figures they must produce ----------------------------------------


@dataclass
class Expected:
    started_at: datetime
    ended_at: datetime
    peers: frozenset[PeerRow]
    facts: dict[str, Any]
    samples: list[tuple[datetime, int]]


def _ms(base: datetime, milliseconds: int) -> datetime:
    # Webhook times here have millisecond precision (as `SessionScript` renders them).
    return base + timedelta(milliseconds=milliseconds)


def build_session(t0: datetime) -> tuple[list[dict[str, Any]], Expected]:
    """One broadcaster for 16 minutes; 300 viewer joins by 220 users, 1.7 s apart, each staying
    15 s to ~7 min; every peer leaves before the session closes."""
    rng = random.Random(SEED)
    script = SessionScript(room_id=ROOM, room_name="livestage-crash")
    end = t0 + timedelta(minutes=16)
    events = [script.open(t0)]
    host = ("host-peer", "crash-host", "broadcaster", t0, end)
    viewers: list[PeerRow] = []
    for i in range(VIEWER_JOINS):
        joined = _ms(t0, 5_000 + i * 1_700 + rng.randrange(1_000))
        left = _ms(joined, 15_000 + rng.randrange(400_000))
        viewers.append((f"peer-{i:03d}", f"user-{i % DISTINCT_USERS:03d}", "viewer", joined, left))
    for peer_id, user_id, role, came, went in [host, *viewers]:
        assert came is not None and went is not None and went <= end
        events.append(script.join(peer_id, user_id, role, came))
        events.append(script.leave(peer_id, user_id, role, came, went))
    events.append(script.close(end))
    return events, Expected(t0, end, frozenset([host, *viewers]), *_figures(viewers, t0, end))


def _watching(viewers: list[PeerRow], instant: datetime) -> int:
    """Viewers connected at `instant`: users, however many of their peers overlap (SPEC §4)."""
    return len({user for _, user, _, j, left in viewers if j and left and j <= instant < left})


def _watched(viewers: list[PeerRow]) -> timedelta:
    """Each user's connected time once: their peers in join order, each adding only the time
    past the latest leave so far."""
    total = timedelta()
    for user in {user for _, user, _, _, _ in viewers}:
        reached: datetime | None = None
        for j, left in sorted((j, left) for _, u, _, j, left in viewers if u == user):
            assert j is not None and left is not None
            start = j if reached is None else max(j, reached)
            total += max(left - start, timedelta())
            reached = left if reached is None else max(reached, left)
    return total


def _figures(
    viewers: list[PeerRow], start: datetime, end: datetime
) -> tuple[dict[str, Any], list[tuple[datetime, int]]]:
    """By brute force: concurrency only rises at a join, so the peak of any span is reached at
    its start or at one of the joins inside it."""
    joins = sorted(j for _, _, _, j, _ in viewers if j is not None)
    unique = len({user for _, user, _, _, _ in viewers})
    total = _watched(viewers).total_seconds()
    samples = []
    minute = start.replace(second=0, microsecond=0)
    while minute <= end.replace(second=0, microsecond=0):
        inside = [j for j in joins if minute <= j < minute + timedelta(minutes=1)]
        samples.append((minute, max(_watching(viewers, t) for t in [minute, *inside])))
        minute += timedelta(minutes=1)
    facts = {
        "peak_viewers": max(_watching(viewers, j) for j in joins),
        "unique_viewers": unique,
        "total_watch_seconds": total,
        "avg_watch_seconds": total / unique,
        "duration_seconds": int((end - start).total_seconds()),
        "current_viewers": 0,
    }
    return facts, samples


# Sending ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the sender saw for one event: the JSON of a 200, or why there was none."""

    status: int | None
    duplicate: bool | None
    error: str | None = None


async def _send(
    base_url: str,
    secret: str,
    events: list[dict[str, Any]],
    *,
    kill_after: int | None = None,
    kill: Any = None,
) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for event in events:
        queue.put_nowait(event)
    acknowledged = 0
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    headers = {WEBHOOK_SECRET_HEADER: secret}
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=20
    ) as client:

        async def sender() -> None:
            nonlocal acknowledged
            while not queue.empty():
                event = queue.get_nowait()
                try:
                    response = await client.post("/webhooks/100ms", json=event)
                except httpx.HTTPError as error:
                    outcomes[event["id"]] = Outcome(None, None, type(error).__name__)
                    continue
                body = response.json() if response.status_code == 200 else {}
                outcomes[event["id"]] = Outcome(response.status_code, body.get("duplicate"))
                if response.status_code == 200:
                    acknowledged += 1
                    if kill_after is not None and acknowledged == kill_after:
                        kill()

        await asyncio.gather(*(sender() for _ in range(CONCURRENCY)))
    return outcomes


# The test --------------------------------------------------------------------------------------


def _wait_for(check: Any, *, timeout: float, what: str) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not reached within {timeout} s")
        time.sleep(0.15)


@pytest.fixture
def processes() -> Any:
    started: list[AppProcess] = []
    yield started
    for process in started:
        process.kill()


@pytest.mark.parametrize("first_worker", [True, False], ids=["worker_running", "inbox_only"])
def test_sigkill_mid_burst_loses_no_acknowledged_event_and_applies_each_once(
    tmp_path: Path, processes: list[AppProcess], first_worker: bool
) -> None:
    """`worker_running`: the killed process was applying events as they came (the kill may
    land inside a worker transaction). `inbox_only`: its worker was off, so everything it
    stored is applied by the next process only."""
    url = migrated_sqlite(tmp_path / "livestage.db")
    t0 = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    influencer = asyncio.run(seed_influencer(url, "crashy"))
    stream_id = asyncio.run(
        seed_stream(url, influencer.id, room_id=ROOM, created_at=t0 - timedelta(seconds=30))
    )
    events, expected = build_session(t0)
    assert len({e["id"] for e in events}) == len(events) == 2 * (VIEWER_JOINS + 1) + 2
    random.Random(SEED).shuffle(events)

    key = secrets.token_urlsafe(32)
    nowhere = f"http://127.0.0.1:{free_port()}"
    env = app_environment(
        env="test",
        database_url=url,
        secret_key=key,
        # 100ms credentials that are never used (no reconcile), so no local provider starts.
        provider="hms",
        hms_access_key="crash-test-key",
        hms_app_secret=secrets.token_hex(16),
        hms_api_url=f"{nowhere}/v2",
        hms_auth_url=f"{nowhere}/auth/v2",
        worker_enabled="true",
        worker_poll_seconds=0.2,
        reconcile_interval_seconds=0,
        # The seeded stream was started an hour ago: it must not fail for want of its
        # broadcaster's join before the burst delivers it.
        start_timeout_seconds=86400,
        log_level="WARNING",
    )
    secret = webhook_secret(Settings(_env_file=None, secret_key=key))
    port = free_port()

    first_env = {**env, "LIVESTAGE_WORKER_ENABLED": str(first_worker).lower()}
    first = AppProcess(first_env, port=port, workdir=tmp_path)
    processes.append(first)
    first.start()
    burst = asyncio.run(
        _send(first.base_url, secret, events, kill_after=KILL_AFTER, kill=first.kill)
    )
    assert first.returncode == -9, first.output()  # it was SIGKILL that ended it

    # Every request either got a 200 (a new event) or no answer at all: nothing else.
    assert set(burst) == {e["id"] for e in events}
    acknowledged = {i for i, o in burst.items() if o.status == 200}
    assert all(o.status in (200, None) for o in burst.values())
    assert all(o.duplicate is False for o in burst.values() if o.status == 200)
    assert KILL_AFTER <= len(acknowledged) < len(events)

    # What the killed process left on disk: every acknowledged event, each once.
    at_kill = asyncio.run(read_events(url))
    stored_at_kill = {e.external_id for e in at_kill}
    assert len(stored_at_kill) == len(at_kill)
    assert acknowledged <= stored_at_kill
    if not first_worker:
        assert all(e.processed_at is None for e in at_kill)

    # A new process on the same database; 100ms sends again what was never acknowledged.
    second = AppProcess(env, port=port, workdir=tmp_path)
    processes.append(second)
    second.start()
    retried = [e for e in events if e["id"] not in acknowledged]
    again = asyncio.run(_send(second.base_url, secret, retried))
    assert {i: (o.status, o.duplicate) for i, o in again.items()} == {
        e["id"]: (200, e["id"] in stored_at_kill) for e in retried
    }

    all_ids = {e["id"] for e in events}

    def settled() -> StoredStream | None:
        stored = asyncio.run(read_events(url))
        if {e.external_id for e in stored} != all_ids or any(
            e.processed_at is None for e in stored
        ):
            return None
        stream = asyncio.run(read_stream(url, stream_id))
        return stream if stream.status == "ended" else None

    stream = _wait_for(settled, timeout=30, what="every event stored and processed")
    assert stream.id == stream_id
    second.stop()

    stored = asyncio.run(read_events(url))
    assert len(stored) == len(events)  # each event exactly once
    # Applied exactly once each: processed, never retried after an error, on this stream.
    assert all(e.processed_at is not None for e in stored)
    assert [e for e in stored if e.attempts or e.error] == []
    assert {e.stream_id for e in stored} == {stream_id}

    final = asyncio.run(read_stream(url, stream_id))
    assert final.status == "ended"
    assert (final.started_at, final.ended_at) == (expected.started_at, expected.ended_at)
    assert final.peer_rows == len(expected.peers) == VIEWER_JOINS + 1
    assert final.peers == expected.peers
    assert final.facts == expected.facts
    assert final.samples == expected.samples
