"""Stream tracking end to end under chaos: a real livestage server, 100ms's webhooks duplicated
and shuffled, livestage down for part of the session, the missed events recovered by replay.

livestage runs as its own process (uvicorn, SQLite file, worker polling every 0.2 s) and is
the webhook target of the room it creates when the influencer goes live. The emulator runs one
scripted session (a broadcaster, 500 viewer joins in waves over ~20 simulated minutes, some
users joining more than once) with chaos delivery (1-3 copies of each webhook, random delays,
fixed seed) and keeps its own ground truth. livestage is stopped in the middle of the session
and started again on the same port and database; the events it missed come back both ways:
100ms re-sending its failed webhooks (replay API) and `livestage webhooks replay` pulling the
history. The stored stream must then equal the ground truth exactly.
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from livestage.cli import app as cli_app
from livestage.tracking.figures import MINUTE
from tests.support.app_process import (
    AppProcess,
    StoredEvent,
    StoredStream,
    app_environment,
    expected_from_ground_truth,
    free_port,
    migrated_sqlite,
    read_events,
    read_stream,
    seed_influencer,
)
from tests.support.emulator import EmulatorControl, EmulatorHandle, join_op, leave_op, rfc3339

SEED = 20261121
VIEWER_JOINS = 500
DISTINCT_USERS = 420
WAVES = 5
START = {"title": "Chaos night", "description": "500 viewers, one outage"}


# livestage: one database, one port, stopped and started again ----------------------------------


class Livestage:
    """livestage in its own OS process (uvicorn), stopped (SIGTERM) and started again on the
    same port with the same configuration and database, as after a deploy or an outage."""

    def __init__(self, env: dict[str, str], *, url: str, port: int, workdir: Path) -> None:
        self.env, self.url, self.port, self.workdir = env, url, port, workdir
        self.process: AppProcess | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.process is None
        self.process = AppProcess(self.env, port=self.port, workdir=self.workdir).start()

    def stop(self) -> None:
        if self.process is not None:
            process, self.process = self.process, None
            process.stop()
            # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
            assert process.returncode in (0, -signal.SIGTERM), process.output()


@pytest.fixture
def livestage(emulator: EmulatorHandle, tmp_path: Path) -> Iterator[Livestage]:
    port = free_port()
    url = migrated_sqlite(tmp_path / "livestage.db")
    env = app_environment(
        env="test",
        database_url=url,
        secret_key=secrets.token_urlsafe(32),
        public_url=f"http://127.0.0.1:{port}",
        cookie_secure="false",
        hms_access_key=emulator.access_key,
        hms_app_secret=emulator.app_secret,
        hms_api_url=emulator.api_url,
        hms_auth_url=emulator.auth_url,
        worker_enabled="true",
        worker_poll_seconds=0.2,
        # Only webhooks and replays repair the record here: no periodic reconcile.
        reconcile_interval_seconds=0,
        log_level="WARNING",
    )
    app = Livestage(env, url=url, port=port, workdir=tmp_path)
    app.start()
    yield app
    app.stop()


@dataclass
class GoneLive:
    stream_id: uuid.UUID
    room_id: str
    created_at: datetime


def _go_live(app: Livestage) -> GoneLive:
    """An influencer presses Start Streaming: livestage creates the 100ms room whose webhook
    points back at itself."""
    account = asyncio.run(seed_influencer(app.url, "alice"))
    with httpx.Client(base_url=app.base_url, timeout=15) as http:
        csrf = http.get("/api/auth/csrf").json()["csrf_token"]
        login = http.post(
            "/api/auth/login",
            json={"email": account.email, "password": account.password, "role": "influencer"},
            headers={"x-csrf-token": csrf},
        )
        assert login.status_code == 200, login.text
        http.headers["x-csrf-token"] = login.json()["csrf_token"]
        started = http.post("/api/streams", json=START)
    assert started.status_code == 201, started.text
    stream = started.json()["stream"]
    stored = asyncio.run(read_stream(app.url, uuid.UUID(stream["id"])))
    assert stored.status == "starting"
    assert stored.started_at is None
    return GoneLive(stored.id, stream["room_id"], stored.created_at)


# The scripted session -------------------------------------------------------------------------


@dataclass
class Session:
    ops: list[dict[str, Any]]
    viewer_joins: int
    distinct_users: int
    first_at: datetime
    last_at: datetime


def _peer_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _instant(base: datetime, rng: random.Random, low: float, high: float) -> datetime:
    return base + timedelta(microseconds=rng.randrange(int(low * 1e6), int(high * 1e6)))


def plan_session(t0: datetime, seed: int) -> Session:
    """The broadcaster joins at `t0` and leaves last, 19.5 min later. 500 viewer joins come in
    5 waves (3 min apart, each spread over 2.5 min); every viewer stays 20 s to 6 min and is
    gone by t0 + 19 min, so the last minutes only lose viewers. Times have random microseconds,
    plus the edges on purpose: a viewer leaving exactly on a minute boundary, a leave and a
    join at the same instant, a zero-length visit, users joining twice (even overlapping)."""
    rng = random.Random(seed)
    users = [f"fan-{i:03d}" for i in range(DISTINCT_USERS)]
    users += [rng.choice(users) for _ in range(VIEWER_JOINS - DISTINCT_USERS)]
    rng.shuffle(users)
    viewers_gone = t0 + timedelta(minutes=19)
    visits: list[list[Any]] = []  # [peer_id, user_id, joined_at, left_at]
    for index, user in enumerate(users):
        wave = index * WAVES // VIEWER_JOINS
        joined = _instant(t0 + timedelta(seconds=10 + wave * 180), rng, 0, 150)
        longest = min(360.0, (viewers_gone - joined).total_seconds())
        visits.append([_peer_id(rng), user, joined, _instant(joined, rng, 20, longest)])

    # A viewer of the last wave leaves exactly on a minute boundary after every join.
    boundary = (t0 + timedelta(minutes=18)).replace(second=0, microsecond=0)
    assert max(v[2] for v in visits) < boundary - MINUTE
    visits[-1][3] = boundary
    # One viewer leaves at the very instant another one joins.
    first_wave, second_wave = VIEWER_JOINS // WAVES - 1, VIEWER_JOINS // WAVES
    visits[first_wave][3] = visits[second_wave][2]
    assert visits[first_wave][2] < visits[first_wave][3] < viewers_gone
    # A zero-length visit: joined and left at the same instant.
    visits[7][3] = visits[7][2]

    entries: list[tuple[datetime, int, dict[str, Any]]] = []

    def add(at: datetime, op: dict[str, Any]) -> None:
        entries.append((at, len(entries), op))

    host = _peer_id(rng)
    add(t0, join_op("alice-host", t0, role="broadcaster", peer_id=host))
    for peer_id, user, joined, left in visits:
        add(joined, join_op(user, joined, role="viewer", peer_id=peer_id))
        add(left, leave_op(peer_id, left))
    end = t0 + timedelta(minutes=19, seconds=30)
    add(end, leave_op(host, end))
    ops = [op for _, _, op in sorted(entries, key=lambda e: (e[0], e[1]))]
    return Session(ops, len(visits), len(set(users)), t0, end)


# Helpers --------------------------------------------------------------------------------------


def _wait(check: Any, *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not reached within {timeout} s")
        time.sleep(0.15)


def _events(url: str) -> list[StoredEvent]:
    return asyncio.run(read_events(url))


def _stream(url: str, stream_id: uuid.UUID) -> StoredStream:
    return asyncio.run(read_stream(url, stream_id))


def _settled(url: str, stream_id: uuid.UUID, expected_ids: set[str]) -> StoredStream | None:
    """The stream once every expected event is stored and processed, else None."""
    events = _events(url)
    if {e.external_id for e in events} != expected_ids:
        return None
    if any(e.processed_at is None for e in events):
        return None
    stream = _stream(url, stream_id)
    return stream if stream.status == "ended" else None


def _in_flight(control: EmulatorControl) -> int:
    return int(control.webhook_summary()["deliveries_in_flight"])


def _quiet(control: EmulatorControl) -> None:
    """Wait until no webhook copy, retry or replay is on its way (polling gently: the
    emulator answers these polls on the loop that sends the webhooks)."""
    _wait(lambda: _in_flight(control) == 0, timeout=30, what="webhook deliveries settle")


def _script(
    control: EmulatorControl,
    room_id: str,
    ops: list[dict[str, Any]],
    *,
    chunk: int = 50,
    in_flight: int = 100,
) -> None:
    """Run `ops` as a few scripts, each once at most `in_flight` webhook copies are still on
    their way: copies of neighbouring chunks still overlap and overtake each other, but the
    emulator's HTTP client never queues thousands of requests at once (its pool slows down
    with the length of its queue)."""
    for start in range(0, len(ops), chunk):
        _wait(
            lambda: _in_flight(control) <= in_flight,
            timeout=30,
            what="the emulator's webhook copies drain",
        )
        control.script(room_id, ops[start : start + chunk])


def _cli_replay(
    emulator: EmulatorHandle, url: str, since: datetime, until: datetime
) -> dict[str, int]:
    env = {
        "LIVESTAGE_ENV": "test",
        "LIVESTAGE_DATABASE_URL": url,
        "LIVESTAGE_SECRET_KEY": secrets.token_urlsafe(32),
        "LIVESTAGE_HMS_ACCESS_KEY": emulator.access_key,
        "LIVESTAGE_HMS_APP_SECRET": emulator.app_secret,
        "LIVESTAGE_HMS_API_URL": emulator.api_url,
        "LIVESTAGE_HMS_AUTH_URL": emulator.auth_url,
        "LIVESTAGE_LOG_LEVEL": "WARNING",
    }
    args = ["webhooks", "replay", "--since", rfc3339(since), "--until", rfc3339(until)]
    result = CliRunner().invoke(cli_app, args, env=env)
    assert result.exit_code == 0, result.output
    found = re.search(
        r"read (\d+) events: (\d+) new, (\d+) already stored; applied (\d+)", result.output
    )
    assert found is not None, result.output
    read, new, duplicates, applied = map(int, found.groups())
    return {"read": read, "new": new, "duplicates": duplicates, "applied": applied}


# The test -------------------------------------------------------------------------------------


def _cut(ops: list[dict[str, Any]], percent: int) -> int:
    """An index near `percent` % of the script where time moves on (no instant is split)."""
    index = len(ops) * percent // 100
    while ops[index]["at"] == ops[index - 1]["at"]:
        index += 1
    return index


def test_chaos_outage_and_both_replays_end_in_the_exact_ground_truth(
    livestage: Livestage, emulator: EmulatorHandle
) -> None:
    control, url = emulator.control, livestage.url
    live = _go_live(livestage)
    with emulator.api() as api:
        webhook = api.get(f"/rooms/{live.room_id}").json()["webhook"]
    assert webhook["url"] == f"{livestage.base_url}/webhooks/100ms"

    t0 = max(live.created_at, datetime.now(UTC)) + timedelta(seconds=2, microseconds=123_457)
    session = plan_session(t0, SEED)
    assert session.distinct_users < session.viewer_joins == VIEWER_JOINS
    control.set_chaos(duplicates_min=1, duplicates_max=3, max_delay_seconds=0.8, seed=SEED)
    ops = session.ops
    cuts = [0, _cut(ops, 35), _cut(ops, 42), _cut(ops, 50), len(ops)]
    part_a, part_b, part_c, part_d = (ops[cuts[i] : cuts[i + 1]] for i in range(4))

    # A: livestage up. B: livestage stopped while B's copies are on their way. C: livestage
    # down the whole time; 100ms retries (here 0.05/0.1/0.2 s) and gives up. D: back up, on
    # the same port with the same database; the broadcaster leaves last and the session closes.
    _script(control, live.room_id, part_a)
    _quiet(control)
    control.script(live.room_id, part_b)
    livestage.stop()
    _script(control, live.room_id, part_c)
    _quiet(control)
    livestage.start()
    _script(control, live.room_id, part_d)
    _quiet(control)

    emitted = [e for e in control.events() if e["data"].get("room_id") == live.room_id]
    all_ids = {e["id"] for e in emitted}
    assert len(all_ids) == len(emitted) == len(ops) + 2  # + session open and close
    plan = control.chaos()["plan"]
    assert sum(len(p["delays"]) for p in plan) > len(plan)  # duplicates were sent

    # Acknowledged => stored: every event 100ms saw a 200 for is in the inbox. Only an event
    # whose request was cut off by the stop may be stored without one (a later copy is then a
    # duplicate); everything else 100ms gave up on is what livestage is missing.
    def window(part: list[dict[str, Any]], status: str = "all") -> set[str]:
        rows = control.webhook_history_all(
            room_id=live.room_id, status=status, start_time=part[0]["at"], end_time=part[-1]["at"]
        )
        return {h["id"] for h in rows}

    history = control.webhook_history_all(room_id=live.room_id)
    assert {h["id"] for h in history} == all_ids
    delivered = {h["id"] for h in history if h["status"] == "success"}
    failed = {h["id"] for h in history if h["status"] == "failed"}
    assert delivered | failed == all_ids
    in_a, in_b, in_c, in_d = map(window, (part_a, part_b, part_c, part_d))
    assert in_a | in_b | in_c | in_d == all_ids
    assert failed <= in_b | in_c  # while livestage was up, every event got through
    assert window(part_c, "failed") == in_c  # while it was down, none did
    failed_in_b = window(part_b, "failed")
    assert failed_in_b  # the stop cut deliveries off
    stored = {e.external_id for e in _events(url)}
    assert delivered <= stored <= delivered | failed_in_b
    assert not stored & in_c

    # Recovery 1: 100ms re-sends the events of B's time it could not deliver (chaos again).
    started = control.replay_webhooks(
        room_id=live.room_id, status="failed", start_time=part_b[0]["at"], end_time=part_b[-1]["at"]
    )
    report = control.wait_for_replay(started["workflow_id"], timeout=30)
    expected_report = (len(failed_in_b), len(failed_in_b), 0)
    assert (report["total"], report["succeeded"], report["failed"]) == expected_report
    _quiet(control)
    assert {e.external_id for e in _events(url)} == all_ids - in_c

    # Recovery 2: `livestage webhooks replay` pulls 100ms's whole history of the stream's time.
    since, until = live.created_at - MINUTE, session.last_at + MINUTE
    first = _cli_replay(emulator, url, since, until)
    assert (first["read"], first["new"]) == (len(all_ids), len(in_c))
    assert first["duplicates"] == len(all_ids) - len(in_c)

    stream = _wait(
        lambda: _settled(url, live.stream_id, all_ids),
        timeout=30,
        what="every event stored and processed, the stream ended",
    )
    events = _events(url)
    assert len(events) == len(all_ids)  # no event stored twice
    assert all(e.attempts == 0 and e.error is None for e in events)
    assert {e.stream_id for e in events} == {live.stream_id}

    truth = expected_from_ground_truth(control.ground_truth(live.room_id))
    assert stream.status == "ended"
    assert stream.end_reason == "session_closed"
    assert stream.session_id == truth.session_id
    assert (stream.started_at, stream.ended_at) == (truth.started_at, truth.ended_at)
    assert stream.peer_rows == len(truth.peers) == VIEWER_JOINS + 1
    assert stream.peers == truth.peers
    assert stream.samples == truth.samples
    assert stream.facts == truth.facts
    assert truth.facts["unique_viewers"] == session.distinct_users
