"""The four scenarios of the performance contract. Each starts its own `livestage serve`, drives
it from this (load-core) process or from wrk, and returns plain figures."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import os
import re
import secrets
import statistics
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import httpx
from sqlalchemy import text

from bench import harness, loadgen, seed
from bench.seed import LiveChannel, seed_live_streams
from livestage import migrate
from livestage.accounts import totp
from livestage.accounts.service import account as account_service
from livestage.app import GC_YOUNG_THRESHOLD
from livestage.audit.service import Actor
from livestage.config import Settings
from livestage.db import READ_ONLY, Database, create_engine, create_sessionmaker, transaction
from livestage.influencers.service import influencer as influencer_service
from livestage.kit.crypto import SecretBox
from livestage.kit.time import utc_now
from livestage.streams.broker import LiveBroker
from livestage.tracking.inbox import MAX_BATCH
from livestage.tracking.service import TrackingConfig
from livestage.tracking.service import tracking as tracking_service
from livestage.tracking.verification import WEBHOOK_SECRET_HEADER, webhook_secret
from livestage.tracking.worker import TrackingWorker
from livestage.web.csrf import CSRF_COOKIE, CSRF_HEADER

CONNECTIONS = 64
WEBHOOK_CONNECTIONS = 32
PROVIDER_LATENCY_S = 0.1


@dataclass(frozen=True)
class Profile:
    """How long and how big: the full run, or `--quick` (same figures, shorter runs)."""

    seconds: float
    repeats: int
    live_streams: int
    golive_influencers: int
    fanout_clients: int
    fanout_changes: int
    backlog_events: int = 20_000
    chat_clients: int = 1000
    chat_seconds: float = 5.0
    # The join's contenders run interleaved: this many rounds of this many seconds each.
    join_rounds: int = 5
    join_seconds: float = 5.0
    # Go-live own-time samples (first and repeat go-lives together), at 0 and 100 ms injected.
    golive_samples: int = 1000
    golive_samples_100ms: int = 300
    storm_clients: int = 5000
    storm_window_s: float = 10.0

    @classmethod
    def of(cls, quick: bool) -> Profile:
        if quick:
            return cls(
                2, 1, 50, 10, 1000, 2, 4000, 200, 2.0,
                join_rounds=2, join_seconds=2.0,
                golive_samples=100, golive_samples_100ms=30,
                storm_clients=1000, storm_window_s=2.0,
            )  # fmt: skip
        return cls(8, 3, 200, 100, 5000, 5)


@dataclass
class Bed:
    """One database variant's test bed: database, keys, the emulator, where logs go."""

    database: harness.Database
    profile: Profile
    logs: Path
    emulator_url: str
    access_key: str
    app_secret: str
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    channels: list[LiveChannel] | None = None
    # Another checkout, served beside this one by the join scenario (`--baseline`).
    baseline: Path | None = None
    baseline_database: str | None = None

    def server(self, name: str, **env: str) -> Any:
        config = harness.ServerConfig(
            self.database,
            self.secret_key,
            {
                "LIVESTAGE_PROVIDER": "hms",
                "LIVESTAGE_HMS_ACCESS_KEY": self.access_key,
                "LIVESTAGE_HMS_APP_SECRET": self.app_secret,
                "LIVESTAGE_HMS_API_URL": f"{self.emulator_url}/v2",
                "LIVESTAGE_HMS_AUTH_URL": f"{self.emulator_url}/auth/v2",
                **env,
            },
        )
        return harness.livestage_server(config, self.logs / f"{self.database.kind}-{name}.log")

    def baseline_server(self, name: str) -> Any:
        """The `--baseline` checkout's code, or nothing: on this bed's database, or on one of
        its own when their migrations differ (its code refuses a schema it does not know)."""
        if self.baseline is None:
            return contextlib.nullcontext()
        env = {"PYTHONPATH": str(self.baseline / "src")}
        if not self.baseline_shares_database:
            env["LIVESTAGE_DATABASE_URL"] = self._baseline_database()
        return self.server(f"{name}-baseline", **env)

    @property
    def baseline_shares_database(self) -> bool:
        return self.baseline is not None and _migrations(self.baseline) == _migrations(harness.ROOT)

    def _baseline_database(self) -> str:
        """A database migrated and seeded by the baseline's own code, with the same number of
        live streams under the same handles."""
        if self.baseline_database is None:
            assert self.baseline is not None
            url = harness.another_database(self.database, "baseline")
            script = (
                "import sys; from livestage import migrate; from bench.seed import "
                "seed_live_streams; migrate.upgrade(sys.argv[1]); "
                "seed_live_streams(sys.argv[1], int(sys.argv[2]))"
            )
            python = str(harness.VENV_BIN / "python")
            streams = str(len(self.live_channels()))
            code = f"{self.baseline / 'src'}:{self.baseline}"
            environment = {**os.environ, "PYTHONPATH": code}
            subprocess.run([python, "-c", script, url, streams], env=environment, check=True)
            self.baseline_database = url
        return self.baseline_database

    def live_channels(self) -> list[LiveChannel]:
        if self.channels is None:
            self.channels = seed_live_streams(self.database.url, self.profile.live_streams)
        return self.channels

    @property
    def webhook_secret(self) -> str:
        settings = Settings(_env_file=None, secret_key=self.secret_key)  # type: ignore[call-arg]
        return webhook_secret(settings)


# 1. Flash-crowd viewer join: what the contenders are sent ---------------------------------------


def _lua_list(values: list[str]) -> str:
    return "{" + ",".join(json.dumps(v) for v in values) + "}"


def _csrf_pairs(base_url: str, count: int) -> list[str]:
    """What each viewer's browser holds after loading the watch page: its pre-login CSRF cookie,
    sent back as cookie and header with the join."""
    tokens = []
    with httpx.Client(base_url=base_url) as client:
        for _ in range(count):
            response = client.get("/api/auth/csrf")
            tokens.append(response.json()["csrf_token"])
            client.cookies.clear()
    return tokens


# Join intents are written in batches every second: wait this long before counting them.
JOIN_FLUSH_WAIT_S = 2.0


def join_script(handles: list[str], tokens: list[str]) -> str:
    return f"""
local handles = {_lua_list(handles)}
local tokens = {_lua_list(tokens)}
local i = 0
request = function()
  i = i + 1
  local token = tokens[(i % #tokens) + 1]
  local headers = {{["Cookie"] = "{CSRF_COOKIE}=" .. token, ["{CSRF_HEADER}"] = token}}
  return wrk.format("POST", "/api/watch/" .. handles[(i % #handles) + 1] .. "/join", headers, "")
end
"""


def node_script(rooms: list[str]) -> str:
    return f"""
local rooms = {_lua_list(rooms)}
local i = 0
request = function()
  i = i + 1
  local body = '{{"room_id":"' .. rooms[(i % #rooms) + 1] .. '","role":"viewer"}}'
  return wrk.format("POST", "/api/token", {{["Content-Type"] = "application/json"}}, body)
end
"""


# The scenario itself, every contender interleaved, is bench/join.py.


# 2. Webhook ingestion -------------------------------------------------------------------------


def _webhook_request(
    host: str, secret: str, rooms: list[str], run: str, ids: dict[int, str]
) -> Any:
    """Request number i → a new event; its id is kept in `ids[i]`."""
    started = datetime.now(UTC)
    head = {WEBHOOK_SECRET_HEADER: secret, "Content-Type": "application/json"}

    def make(i: int) -> bytes:
        at = started.isoformat().replace("+00:00", "Z")
        kind = "peer.join.success" if i % 2 == 0 else "peer.leave.success"
        room = rooms[(i // 2) % len(rooms)]
        data = {
            "room_id": room,
            "session_id": f"session-{room}",
            "peer_id": f"{run}-peer-{i // 2}",
            "user_id": f"u{i // 2}",
            "role": "viewer",
            "joined_at": at,
        }
        if i % 2:
            data["left_at"] = at
        ids[i] = str(uuid.uuid4())
        event = {"version": "2.0", "id": ids[i], "type": kind, "timestamp": at}
        body = json.dumps({**event, "data": data}).encode()
        return loadgen.build_request("POST", "/webhooks/100ms", host, head, body)

    return make


@dataclass
class _Acks:
    """Every event id sent, and the answer it got."""

    acked: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)

    def listener(self, ids: dict[int, str]) -> Any:
        def heard(number: int, status: int) -> None:
            (self.acked if 200 <= status < 300 else self.refused).add(ids[number])

        return heard


def webhooks(bed: Bed) -> dict[str, float]:
    """Webhooks, the ceiling (`GET /healthz`, same client) and the INSERT floor
    (bench/ingest_floor.py), interleaved a round at a time; each run starts with the worker
    idle (the previous run's events applied). Then every id checked against the database."""
    rooms = [c.room_id for c in bed.live_channels()]
    seconds = bed.profile.seconds
    rates: dict[str, list[float]] = {"webhooks": [], "ceiling": [], "floor": []}
    p99s, drains = [], []
    acks = _Acks()
    with bed.server("webhooks") as server:
        host = server.base_url.removeprefix("http://")
        healthz = loadgen.build_request("GET", "/healthz", host, {}, b"")
        names = list(rates)
        for repeat in range(bed.profile.repeats):
            for name in names[repeat % 3 :] + names[: repeat % 3]:
                if name == "floor":
                    rates[name].append(_ingest_floor(bed.database.url, seconds, f"f{repeat}"))
                    continue
                ids: dict[int, str] = {}
                if name == "ceiling":
                    make, heard = (lambda _: healthz), None
                else:
                    make = _webhook_request(host, bed.webhook_secret, rooms, f"r{repeat}", ids)
                    heard = acks.listener(ids)
                result = asyncio.run(
                    loadgen.closed_loop(
                        server.base_url,
                        make,
                        connections=WEBHOOK_CONNECTIONS,
                        seconds=seconds,
                        on_response=heard,
                    )
                )
                rates[name].append(result.rps)
                if name == "webhooks":
                    p99s.append(loadgen.percentile(result.latencies, 0.99) * 1000)
                    draining = time.monotonic()
                    _wait_processed(bed.database.url)
                    drains.append(time.monotonic() - draining)
    by_id = asyncio.run(_stored_by_id(bed.database.url, acks.acked | acks.refused))
    return {
        **_with_spread("webhook_eps", rates["webhooks"]),
        "webhook_p99_ms": _median(p99s),
        "webhook_ceiling_rps": _median(rates["ceiling"]),
        **_with_spread("webhook_floor_eps", rates["floor"]),
        "webhook_floor_batch": WEBHOOK_CONNECTIONS,
        **_with_spread(
            "webhook_vs_ceiling",
            [r / c for r, c in zip(rates["webhooks"], rates["ceiling"], strict=True)],
        ),
        **_with_spread(
            "webhook_vs_floor",
            [r / f for r, f in zip(rates["webhooks"], rates["floor"], strict=True)],
        ),
        "webhook_acked": len(acks.acked),
        "webhook_refused": len(acks.refused),
        **_id_checks(acks, by_id),
        "webhook_backlog_drain_s": round(max(drains), 1),
    }


def _ingest_floor(url: str, seconds: float, run: str) -> float:
    """The INSERT floor's rate (events/s), in a process of its own on the server core."""
    command = [
        *harness.pin_to(harness.SERVER_CORE),
        str(harness.VENV_BIN / "python"),
        "-m",
        "bench.ingest_floor",
        url,
        str(WEBHOOK_CONNECTIONS),
        str(seconds),
        run,
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=harness.ROOT)
    return float(json.loads(output.stdout.splitlines()[-1])["eps"])


def _id_checks(acks: _Acks, by_id: dict[str, tuple[int, int]]) -> dict[str, int]:
    """Every acknowledged id stored exactly once; no id sent stored twice; all applied."""
    stored = {i for i, (copies, _) in by_id.items() if copies}
    return {
        "webhook_stored": sum(copies for copies, _ in by_id.values()),
        "webhook_lost": len(acks.acked - stored),
        "webhook_doubled": sum(1 for copies, _ in by_id.values() if copies > 1),
        "webhook_stored_unacked": len(stored - acks.acked),
        "webhook_unprocessed": sum(pending for _, pending in by_id.values()),
    }


async def _stored_by_id(url: str, ids: set[str]) -> dict[str, tuple[int, int]]:
    """For each id sent: (rows stored, rows not yet applied)."""
    engine = _reader(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT external_id, count(*), count(*) - count(processed_at)"
                    " FROM provider_events WHERE source = 'hms' GROUP BY external_id"
                )
            )
            found = {row[0]: (int(row[1]), int(row[2])) for row in rows if row[0] in ids}
    finally:
        await engine.dispose()
    return {i: found.get(i, (0, 0)) for i in ids}


def _wait_processed(url: str, seconds: float = 180) -> dict[str, int]:
    deadline = time.monotonic() + seconds
    while True:
        counts = asyncio.run(_event_counts(url))
        if counts["pending"] == 0 or time.monotonic() > deadline:
            return counts
        time.sleep(0.25)


def _reader(url: str) -> Any:
    """An engine that only reads: on SQLite it begins no transaction and never waits for the
    server's writer, which is busy applying the backlog while the bench counts."""
    engine = create_engine(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
    return engine.execution_options(**{READ_ONLY: True})


async def _event_counts(url: str) -> dict[str, int]:
    engine = _reader(url)
    try:
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    text(
                        "SELECT count(*), count(DISTINCT external_id),"
                        " count(*) - count(processed_at) FROM provider_events"
                    )
                )
            ).one()
            peers = (await connection.execute(text("SELECT count(*) FROM stream_peers"))).scalar()
    finally:
        await engine.dispose()
    return {"stored": row[0], "distinct": row[1], "pending": row[2], "peers": peers or 0}


def _count(url: str, sql: str) -> int:
    async def count() -> int:
        engine = _reader(url)
        try:
            async with engine.connect() as connection:
                return int((await connection.execute(text(sql))).scalar() or 0)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(count())
    except Exception:  # the table may not exist (an older schema)
        return -1


def _migrations(checkout: Path) -> list[str]:
    return sorted(p.name for p in (checkout / "src/livestage/migrations/versions").glob("*.py"))


# 3. Go-live latency ----------------------------------------------------------------------------


async def _create_influencers(url: str, prefix: str, count: int) -> list[tuple[str, str]]:
    engine = create_engine(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
    accounts = []
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            for i in range(count):
                password = secrets.token_urlsafe(12)
                await influencer_service.create(
                    session,
                    Actor(None, None),
                    email=f"{prefix}{i}@bench.test",
                    name=f"{prefix}{i}",
                    handle=f"{prefix}{i}",
                    password=password,
                    now=utc_now(),
                )
                accounts.append((f"{prefix}{i}@bench.test", password))
    finally:
        await engine.dispose()
    return accounts


def _login(client: httpx.Client, email: str, password: str) -> None:
    token = client.get("/api/auth/csrf").json()["csrf_token"]
    response = client.post(
        "/api/auth/login",
        json={"email": email, "password": password, "role": "influencer"},
        headers={CSRF_HEADER: token},
    )
    response.raise_for_status()
    client.headers[CSRF_HEADER] = response.json()["csrf_token"]


def _provider_calls(emulator: httpx.Client) -> int:
    log = emulator.get("/_emulator/requests").json()["data"]
    return sum(1 for r in log if r["path"].startswith("/v2/"))


def _timed(client: httpx.Client, path: str) -> tuple[float, float, float]:
    """The request's total time seen by the client, and from its Server-Timing header the
    server's own time until the response and the part of it spent waiting on the provider
    (seconds)."""
    start = time.perf_counter()
    response = client.post(path, json={"title": "bench", "description": ""})
    total = time.perf_counter() - start
    response.raise_for_status()
    timings = {"provider": 0.0, "app": total * 1000}
    for metric in response.headers.get("server-timing", "").split(","):
        name, _, duration = metric.strip().partition(";dur=")
        if duration:
            timings[name] = float(duration)
    return total, timings["app"] / 1000, timings["provider"] / 1000


def _go_live_round(
    server: harness.Process,
    emulator: httpx.Client,
    accounts: list[tuple[str, str]],
    per_account: int = 2,
) -> dict[str, list[float]]:
    """Each influencer: first go-live (new room), end, then `per_account - 1` more go-lives
    (room known), each ended. Provider calls are counted on the first two only (reading the
    emulator's log grows with it)."""
    found: dict[str, list[float]] = {
        phase + suffix: []
        for phase in ("first", "repeat")
        for suffix in ("", "_calls", "_waited", "_own")
    }
    for email, password in accounts:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            _login(client, email, password)
            for n in range(per_account):
                phase = "repeat" if n else "first"
                before = _provider_calls(emulator) if n < 2 else 0
                total, in_app, waited = _timed(client, "/api/streams")
                found[phase].append(total)
                found[f"{phase}_waited"].append(waited)
                found[f"{phase}_own"].append(in_app - waited)
                if n < 2:
                    found[f"{phase}_calls"].append(_provider_calls(emulator) - before)
                client.post("/api/streams/current/end").raise_for_status()
    return found


def go_live(bed: Bed) -> dict[str, float]:
    count = bed.profile.golive_influencers
    fast = asyncio.run(_create_influencers(bed.database.url, "fast", count))
    slow = asyncio.run(_create_influencers(bed.database.url, "slow", count))
    warm = asyncio.run(_create_influencers(bed.database.url, "warm", 1))
    with bed.server("golive") as server, httpx.Client(base_url=bed.emulator_url) as emulator:
        emulator.delete("/_emulator/faults")
        # Not counted: the server's first go-live compiles and caches its SQL statements and
        # opens its connections to the database and the provider.
        _go_live_round(server, emulator, warm)
        at_zero = _go_live_round(server, emulator, fast, -(-bed.profile.golive_samples // count))
        fault = {
            "kind": "latency",
            "seconds": PROVIDER_LATENCY_S,
            "path_prefix": "/v2",
            "count": 1_000_000,
        }
        emulator.post("/_emulator/faults", json=fault).raise_for_status()
        try:
            at_100 = _go_live_round(
                server, emulator, slow, max(2, -(-bed.profile.golive_samples_100ms // count))
            )
        finally:
            emulator.delete("/_emulator/faults")
    # Waiting on the provider grows by 100 ms per call made one after another.
    sequential = {
        phase: round(
            (
                statistics.median(at_100[f"{phase}_waited"])
                - statistics.median(at_zero[f"{phase}_waited"])
            )
            / PROVIDER_LATENCY_S
        )
        for phase in ("first", "repeat")
    }
    own_zero = [s * 1000 for s in at_zero["first_own"] + at_zero["repeat_own"]]
    own_100 = [s * 1000 for s in at_100["first_own"] + at_100["repeat_own"]]
    return {
        "golive_overhead_p50_ms": loadgen.percentile(own_zero, 0.5),
        "golive_overhead_p99_ms": loadgen.percentile(own_zero, 0.99),
        "golive_overhead_max_ms": max(own_zero),
        "golive_samples": len(own_zero),
        "golive_overhead_100ms_p50_ms": loadgen.percentile(own_100, 0.5),
        "golive_overhead_100ms_p99_ms": loadgen.percentile(own_100, 0.99),
        "golive_overhead_100ms_max_ms": max(own_100),
        "golive_samples_100ms": len(own_100),
        "golive_first_p50_ms_at_0ms": statistics.median(at_zero["first"]) * 1000,
        "golive_repeat_p50_ms_at_0ms": statistics.median(at_zero["repeat"]) * 1000,
        "golive_first_p50_ms_at_100ms": statistics.median(at_100["first"]) * 1000,
        "golive_repeat_p50_ms_at_100ms": statistics.median(at_100["repeat"]) * 1000,
        "golive_first_sequential_calls": sequential["first"],
        "golive_repeat_sequential_calls": sequential["repeat"],
        "golive_first_total_calls": statistics.median(at_zero["first_calls"]),
        "golive_repeat_total_calls": statistics.median(at_zero["repeat_calls"]),
    }


# 4. Live-count fan-out -------------------------------------------------------------------------


async def _fan_out(
    servers: list[harness.Process], channel: LiveChannel, secret: str, clients: int, changes: int
) -> tuple[list[float], int, list[float]]:
    """`clients` pages spread evenly over `servers`; each change is a webhook to the first
    server. Returns every page's delay per change, the pages connected, and each server's
    peak RSS."""
    path = f"/api/live/{channel.handle}/events"
    gate = asyncio.Semaphore(200)

    async def connect(i: int) -> loadgen.SseClient:
        async with gate:
            return await loadgen.SseClient.connect(servers[i % len(servers)].base_url, path)

    viewers = await asyncio.gather(*(connect(i) for i in range(clients)))
    rss = [harness.rss_mb(s.pid) for s in servers]
    delays: list[float] = []
    async with httpx.AsyncClient(base_url=servers[0].base_url) as client:
        # Earlier scenarios may have left viewers on the stream: count from what it has.
        before = (await client.get(f"/api/live/{channel.handle}")).json()["viewers"]
        run = uuid.uuid4().hex[:8]  # each run's viewers are new peers
        for change in range(1, changes + 1):
            waiting = [v.expect_viewers(before + change) for v in viewers]
            await asyncio.sleep(0.2)  # every reader is parked on its socket
            sent = time.perf_counter()
            response = await client.post(
                "/webhooks/100ms",
                json=_peer_join(channel.room_id, f"fan-{run}-{change}"),
                headers={WEBHOOK_SECRET_HEADER: secret},
            )
            response.raise_for_status()
            arrived = await asyncio.wait_for(asyncio.gather(*waiting), timeout=60)
            delays += [(t - sent) * 1000 for t in arrived]
            rss = [max(r, harness.rss_mb(s.pid)) for r, s in zip(rss, servers, strict=True)]
    for viewer in viewers:
        viewer.close()
    return delays, len(viewers), rss


def _peer_join(room_id: str, peer: str) -> dict[str, Any]:
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    data = {
        "room_id": room_id,
        "session_id": "f" * 24,
        "peer_id": peer,
        "user_id": peer,
        "role": "viewer",
        "joined_at": at,
    }
    event = {"version": "2.0", "id": str(uuid.uuid4()), "type": "peer.join.success"}
    return {**event, "timestamp": at, "data": data}


def fan_out(bed: Bed) -> dict[str, float]:
    channel = bed.live_channels()[-1]
    clients = bed.profile.fanout_clients
    with bed.server("fanout") as server:
        rss_idle = harness.rss_mb(server.pid)
        delays, connected, (rss,) = asyncio.run(
            _fan_out([server], channel, bed.webhook_secret, clients, bed.profile.fanout_changes)
        )
    return {
        "fanout_clients": connected,
        "fanout_p50_ms": loadgen.percentile(delays, 0.5),
        "fanout_p99_ms": loadgen.percentile(delays, 0.99),
        "fanout_max_ms": max(delays),
        "fanout_rss_mb": rss,
        "fanout_rss_idle_mb": rss_idle,
    }


def fan_out_cluster(bed: Bed) -> dict[str, float]:
    """The same pages spread over two processes sharing updates through Redis (PostgreSQL
    only: several processes need it); the webhook reaches the first process only."""
    if bed.database.kind != "postgresql":
        return {}
    channel = bed.live_channels()[-1]
    clients = bed.profile.fanout_clients
    with (
        harness.redis_server(bed.logs / "redis.log") as redis_url,
        bed.server("fanout-a", LIVESTAGE_REDIS_URL=redis_url) as first,
        bed.server("fanout-b", LIVESTAGE_REDIS_URL=redis_url) as second,
    ):
        delays, connected, rss = asyncio.run(
            _fan_out(
                [first, second], channel, bed.webhook_secret, clients, bed.profile.fanout_changes
            )
        )
    return {
        "fanout2_clients": connected,
        "fanout2_p50_ms": loadgen.percentile(delays, 0.5),
        "fanout2_p99_ms": loadgen.percentile(delays, 0.99),
        "fanout2_max_ms": max(delays),
        "fanout2_rss_a_mb": rss[0],
        "fanout2_rss_b_mb": rss[1],
    }


# 6. Backlog apply rate ---------------------------------------------------------------------------


def _backlog_events(rooms: list[str], count: int, run: str) -> list[dict[str, Any]]:
    """A flash crowd: count ÷ 2 viewers join the live streams in turn, then all leave, each
    with its own join and leave time (100ms-shaped `peer.join`/`peer.leave` envelopes)."""
    started = datetime.now(UTC)
    viewers = count // 2

    def event(i: int, kind: str) -> dict[str, Any]:
        room = rooms[i % len(rooms)]
        joined = started + timedelta(milliseconds=10 * i)
        data = {
            "room_id": room,
            "session_id": f"session-{room}",
            "peer_id": f"{run}-peer-{i}",
            "user_id": f"{run}-u{i}",
            "role": "viewer",
            "joined_at": joined.isoformat().replace("+00:00", "Z"),
        }
        if kind == "peer.leave.success":
            left = joined + timedelta(seconds=30 + i % 90)
            data["left_at"] = left.isoformat().replace("+00:00", "Z")
        at = data.get("left_at", data["joined_at"])
        return {
            "version": "2.0",
            "id": str(uuid.uuid4()),
            "type": kind,
            "timestamp": at,
            "data": data,
        }

    joins = [event(i, "peer.join.success") for i in range(viewers)]
    return joins + [event(i, "peer.leave.success") for i in range(viewers)]


async def _backlog_round(url: str, rooms: list[str], count: int, run: str) -> dict[str, float]:
    """Store `count` events as the inbox does under load (its largest group commits), then time
    the worker applying them until every touched stream's figures are current.

    The heap as `livestage serve` has it: frozen once started, young collections every
    GC_YOUNG_THRESHOLD allocations (app.py), so the collector's full passes walk only what the
    work allocates. This process's own objects (modules, the bench's
    other scenarios, the events to send) were ~168,000, and each full pass over them (five in a
    drain) took ~0.17 s that a server would not spend."""
    events = [("hms", payload) for payload in _backlog_events(rooms, count, run)]
    # The database as `livestage serve` opens it: on SQLite its log checkpointed in the
    # background, not by the commit that crosses 1,000 pages.
    database = Database.open(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
    database.start()
    sessionmaker = database.sessionmaker
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *threshold[1:])
    try:
        began = time.perf_counter()
        for start in range(0, len(events), MAX_BATCH):
            async with transaction(sessionmaker) as session:
                chunk = events[start : start + MAX_BATCH]
                await tracking_service.ingest_many(session, chunk, now=utc_now())
        stored = time.perf_counter() - began
        config = TrackingConfig("broadcaster", timedelta(minutes=2))
        worker = TrackingWorker(
            sessionmaker,
            config,
            clock=utc_now,
            broker=LiveBroker(),
            provider=None,
            poll_seconds=3600,
            reconcile_seconds=0,
        )
        began = time.perf_counter()
        applied = await worker.drain()
        applying = time.perf_counter() - began
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
        await database.aclose()
    return {"store_eps": len(events) / stored, "apply_eps": applied / applying, "applied": applied}


async def _backlog_state(url: str) -> dict[str, int]:
    engine = _reader(url)
    try:
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    text(
                        "SELECT (SELECT count(*) - count(processed_at) FROM provider_events),"
                        " (SELECT count(*) FROM live_streams WHERE figures_stale),"
                        " (SELECT count(*) FROM stream_peers WHERE peer_id LIKE 'b%-peer-%'),"
                        " (SELECT count(*) FROM stream_peers"
                        "  WHERE peer_id LIKE 'b%-peer-%' AND left_at IS NULL)"
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    return {"pending": row[0], "stale": row[1], "peers": row[2], "open_peers": row[3]}


def backlog(bed: Bed) -> dict[str, float]:
    """Applying a stored backlog (20,000 events over 200 live streams) against storing the
    same events, in the same run: this process, the same database, one after the other."""
    rooms = [c.room_id for c in bed.live_channels()]
    rounds = [
        asyncio.run(_backlog_round(bed.database.url, rooms, bed.profile.backlog_events, f"b{r}"))
        for r in range(bed.profile.repeats)
    ]
    state = asyncio.run(_backlog_state(bed.database.url))
    viewers = bed.profile.repeats * (bed.profile.backlog_events // 2)
    ratios = [r["apply_eps"] / r["store_eps"] for r in rounds]
    return {
        "backlog_events": bed.profile.backlog_events,
        **_with_spread("backlog_apply_eps", [r["apply_eps"] for r in rounds]),
        **_with_spread("backlog_store_eps", [r["store_eps"] for r in rounds]),
        **_with_spread("backlog_apply_vs_store", ratios),
        "backlog_missed": sum(bed.profile.backlog_events - int(r["applied"]) for r in rounds),
        "backlog_unprocessed": state["pending"],
        "backlog_stale_streams": state["stale"],
        # One row per viewer, every one closed by its own leave.
        "backlog_peers_wrong": abs(state["peers"] - viewers) + state["open_peers"],
    }


def crowd(bed: Bed) -> dict[str, float]:
    """The backlog's flash crowd (its 20,000 events) on one live stream that already has
    CROWD_HISTORY peers: a stream's recompute reads every peer it ever had, so this is what a
    big creator's stream costs the worker (apply ÷ the same events' store rate)."""
    history = CROWD_HISTORY if bed.profile.repeats > 1 else CROWD_HISTORY // 10
    channel = seed.seed_crowd(bed.database.url, history)
    rounds = [
        asyncio.run(
            _backlog_round(bed.database.url, [channel.room_id], bed.profile.backlog_events, f"c{r}")
        )
        for r in range(bed.profile.repeats)
    ]
    return {
        "crowd_history": history,
        **_with_spread("crowd_apply_eps", [r["apply_eps"] for r in rounds]),
        **_with_spread("crowd_apply_vs_store", [r["apply_eps"] / r["store_eps"] for r in rounds]),
        "crowd_missed": sum(bed.profile.backlog_events - int(r["applied"]) for r in rounds),
    }


def _with_spread(key: str, values: list[float]) -> dict[str, float]:
    """The median as `key`, the lowest and highest as `key_min` and `key_max`."""
    return {key: _median(values), f"{key}_min": min(values), f"{key}_max": max(values)}


def _median(values: Any) -> float:
    return float(statistics.median(list(values)))


# 7. Chat fan-out ---------------------------------------------------------------------------------

CHAT_RATE = 200
CHAT_SENDERS = 16
# After the sustained run, a shorter one offered half as much again: how far past the target
# the servers keep up (its messages are not checked for order).
CHAT_CAPACITY_RATE = 300
CHAT_CAPACITY_SECONDS = 3.0


def _chat_post(handle: str, body: str, token: str) -> bytes:
    """A viewer's post, with no viewer cookie: each post is a viewer of its own (the rate limit
    is per viewer), holding the pre-login CSRF cookie the watch page gave it."""
    payload = json.dumps({"body": body, "name": "bench"}).encode()
    headers = {
        "Content-Type": "application/json",
        "Cookie": f"{CSRF_COOKIE}={token}",
        CSRF_HEADER: token,
    }
    return loadgen.build_request("POST", f"/api/watch/{handle}/chat", "bench", headers, payload)


async def _chat_pages(servers: list[harness.Process], handle: str, count: int, kind: Any) -> Any:
    path = f"/api/watch/{handle}/chat/events"
    gate = asyncio.Semaphore(200)

    async def connect(i: int) -> Any:
        async with gate:
            return await kind.connect(servers[i % len(servers)].base_url, path)

    return await asyncio.gather(*(connect(i) for i in range(count)))


async def _chat_ping(
    servers: list[harness.Process], handle: str, token: str, clients: int, pings: int
) -> tuple[list[float], int]:
    """Each ping is one message posted to the first process; every page's delay until it
    arrived, the pages spread over both processes."""
    pages = await _chat_pages(servers, handle, clients, loadgen.SseClient)
    host, port = servers[0].base_url.removeprefix("http://").split(":")
    delays: list[float] = []
    run = uuid.uuid4().hex[:8]
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        for ping in range(pings):
            body = f"ping {run} {ping}"
            waiting = []
            for page in pages:
                page.wanted = f'"body": "{body}"'.encode()
                page.arrived = asyncio.get_running_loop().create_future()
                waiting.append(page.arrived)
            await asyncio.sleep(0.2)
            sent = time.perf_counter()
            writer.write(_chat_post(handle, body, token))
            status, answer = await loadgen.read_response(reader)
            if status != 201:
                raise RuntimeError(f"chat post refused: {status} {answer[:200]!r}")
            arrived = await asyncio.wait_for(asyncio.gather(*waiting), timeout=60)
            delays += [(t - sent) * 1000 for t in arrived]
    finally:
        writer.close()
        for page in pages:
            page.close()
    return delays, len(pages)


class _ChatLog(asyncio.Protocol):
    """An open chat page noting the number of each of this run's messages, in arrival order
    (a regex over the raw frames: thousands of pages share this one load-generator core)."""

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        self.pattern = pattern
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.tail = b""
        self.numbers: list[bytes] = []
        self.transport: asyncio.BaseTransport | None = None
        self.closed = False

    @classmethod
    async def open(cls, base_url: str, path: str, pattern: re.Pattern[bytes]) -> _ChatLog:
        host, port = base_url.removeprefix("http://").split(":")
        loop = asyncio.get_running_loop()
        transport, page = await loop.create_connection(lambda: cls(pattern), host, int(port))
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
        transport.write(request.encode())
        await page.ready
        return page

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        seen = self.tail + data
        end = seen.rfind(b"\n\n")
        if end < 0:
            self.tail = seen
            return
        if not self.ready.done():
            self.ready.set_result(None)
        self.numbers += self.pattern.findall(seen, 0, end)
        self.tail = seen[end + 2 :]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("chat event stream closed"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def _chat_sustained(
    servers: list[harness.Process],
    handle: str,
    tokens: list[str],
    clients: int,
    seconds: float,
    rate: int = CHAT_RATE,
) -> dict[str, Any]:
    """`rate` messages a second, posted alternately to both processes on keep-alive
    connections (CHAT_SENDERS at CHAT_RATE, as many more in proportion; each post at its
    scheduled time, or as soon as its connection is free), while `clients` pages read them."""
    run = uuid.uuid4().hex[:8]
    pattern = re.compile(rb'"body": "rate ' + run.encode() + rb' (\d+)"')
    path = f"/api/watch/{handle}/chat/events"
    gate = asyncio.Semaphore(200)

    async def open_page(i: int) -> _ChatLog:
        async with gate:
            return await _ChatLog.open(servers[i % len(servers)].base_url, path, pattern)

    pages = await asyncio.gather(*(open_page(i) for i in range(clients)))
    total = int(rate * seconds)
    senders = CHAT_SENDERS * rate // CHAT_RATE
    accepted: list[int] = []
    refused: list[int] = []
    sent_at: list[float] = []
    waited: list[float] = []
    began = time.perf_counter()

    async def sender(slot: int) -> None:
        base_url = servers[slot % len(servers)].base_url
        host, port = base_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for n in range(slot, total, senders):
                delay = began + n / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(_chat_post(handle, f"rate {run} {n}", tokens[n % len(tokens)]))
                sent_at.append(time.perf_counter())
                status, _ = await loadgen.read_response(reader)
                waited.append((time.perf_counter() - sent_at[-1]) * 1000)
                (accepted if status == 201 else refused).append(n)
        finally:
            writer.close()

    await asyncio.gather(*(sender(slot) for slot in range(senders)))
    answered = time.perf_counter()
    # Each post holds one slot of the schedule (1 / CHAT_RATE s): posted on schedule, the
    # posts span exactly total / CHAT_RATE seconds. A sender posts only once its previous post
    # is answered, so a server that falls behind makes the posting slip and the span grow. The
    # client's own timer may wake the last post up to one slot late (it did by 0.35 ms).
    slot = 1 / rate
    late = max(sent_at) - (began + (total - 1) * slot)
    sent_seconds = total * slot + max(0.0, late - slot)
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline and any(
        len(p.numbers) < len(accepted) and not p.closed for p in pages
    ):
        await asyncio.sleep(0.05)
    for page in pages:
        page.close()
    return {
        "pages": pages,
        "accepted": accepted,
        "refused": len(refused),
        "seconds": sent_seconds,
        "last_answer_ms": (answered - max(sent_at)) * 1000,
        "last_post_late_ms": late * 1000,
        "answer_p99_ms": loadgen.percentile(waited, 0.99),
        "run": run,
    }


def _chat_stored_order(url: str, handle: str, run: str) -> list[int]:
    """The run's messages in the order the database numbered them."""

    async def read() -> list[int]:
        engine = _reader(url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    text(
                        "SELECT m.body FROM chat_messages m"
                        " JOIN live_streams s ON s.id = m.stream_id"
                        " JOIN influencers i ON i.id = s.influencer_id"
                        " WHERE i.handle = :handle AND m.body LIKE :prefix ORDER BY m.seq"
                    ),
                    {"handle": handle, "prefix": f"rate {run} %"},
                )
                return [int(body.rsplit(" ", 1)[1]) for (body,) in rows]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _order_figures(pages: list[_ChatLog], stored: list[int]) -> dict[str, float]:
    """Lost: a page missed an accepted message. Reordered: a page shows a message after one
    the database numbered later. Orders: how many different orders the pages showed."""
    rank = {n: i for i, n in enumerate(stored)}
    lost = reordered_pages = 0
    orders = set()
    for page in pages:
        shown = [int(n) for n in page.numbers]
        lost += len(stored) - len(set(shown) & rank.keys())
        ranks = [rank.get(n, -1) for n in shown]
        if any(b < a for a, b in itertools.pairwise(ranks)):
            reordered_pages += 1
        orders.add(tuple(shown))
    return {"lost": lost, "reordered_pages": reordered_pages, "orders": len(orders)}


def chat(bed: Bed) -> dict[str, float]:
    """Chat over two processes sharing events through Redis (PostgreSQL; SQLite has one writer,
    so one process): one message to `fanout_clients` open chat pages, timed per page; then
    CHAT_RATE messages a second into one stream read by `chat_clients` pages, every page checked
    for lost or reordered messages."""
    ping_channel, rate_channel = bed.live_channels()[-2], bed.live_channels()[-3]
    with contextlib.ExitStack() as stack:
        if bed.database.kind == "postgresql":
            redis_url = stack.enter_context(harness.redis_server(bed.logs / "redis-chat.log"))
            servers = [
                stack.enter_context(bed.server(f"chat-{name}", LIVESTAGE_REDIS_URL=redis_url))
                for name in ("a", "b")
            ]
        else:
            servers = [stack.enter_context(bed.server("chat-a"))]
        tokens = _csrf_pairs(servers[0].base_url, CHAT_SENDERS)
        delays, connected = asyncio.run(
            _chat_ping(
                servers,
                ping_channel.handle,
                tokens[0],
                bed.profile.fanout_clients,
                bed.profile.repeats + 2,
            )
        )
        sustained = asyncio.run(
            _chat_sustained(
                servers,
                rate_channel.handle,
                tokens,
                bed.profile.chat_clients,
                bed.profile.chat_seconds,
            )
        )
        capacity = asyncio.run(
            _chat_sustained(
                servers,
                rate_channel.handle,
                tokens,
                bed.profile.chat_clients,
                min(CHAT_CAPACITY_SECONDS, bed.profile.chat_seconds),
                rate=CHAT_CAPACITY_RATE,
            )
        )
    stored = _chat_stored_order(bed.database.url, rate_channel.handle, sustained["run"])
    order = _order_figures(sustained["pages"], stored)
    return {
        "chat_processes": len(servers),
        "chat_fanout_clients": connected,
        "chat_fanout_p50_ms": loadgen.percentile(delays, 0.5),
        "chat_fanout_p99_ms": loadgen.percentile(delays, 0.99),
        "chat_fanout_max_ms": max(delays),
        "chat_rate_clients": len(sustained["pages"]),
        "chat_rate_sent": len(sustained["accepted"]) + sustained["refused"],
        "chat_rate_accepted": len(sustained["accepted"]),
        "chat_rate_refused": sustained["refused"],
        "chat_rate_per_s": len(sustained["accepted"]) / sustained["seconds"],
        "chat_rate_last_answer_ms": sustained["last_answer_ms"],
        "chat_rate_last_post_late_ms": sustained["last_post_late_ms"],
        "chat_rate_answer_p99_ms": sustained["answer_p99_ms"],
        "chat_capacity_offered_per_s": CHAT_CAPACITY_RATE,
        "chat_capacity_per_s": len(capacity["accepted"]) / capacity["seconds"],
        "chat_capacity_last_post_late_ms": capacity["last_post_late_ms"],
        "chat_capacity_answer_p99_ms": capacity["answer_p99_ms"],
        "chat_rate_stored": len(stored),
        "chat_rate_lost": order["lost"],
        "chat_rate_reordered_pages": order["reordered_pages"],
        "chat_rate_orders": order["orders"],
    }


# 8. Cost growth with history -------------------------------------------------------------------

GROWTH_SIZES = (10, 1_000, 100_000)
CROWD_HISTORY = 100_000
GROWTH_QUICK_SIZES = (10, 1_000, 20_000)
GROWTH_SAMPLES = 40


@dataclass(frozen=True)
class AdminLogin:
    email: str
    password: str
    totp_secret: str
    last_step: list[int] = field(default_factory=lambda: [-1])


async def _growth_admin(url: str, secret_key: str) -> AdminLogin:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=url, secret_key=secret_key
    )
    engine = create_engine(settings)
    password = secrets.token_urlsafe(12)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            new = await account_service.create_admin(
                session,
                SecretBox(settings.secret_keys),
                email="growth-admin@bench.test",
                password=password,
                name="Bench",
            )
    finally:
        await engine.dispose()
    return AdminLogin(new.user.email, password, new.totp_secret)


def _admin_login(client: httpx.Client, admin: AdminLogin) -> None:
    # A TOTP code is refused once used (replay): one sign-in per 30-second step.
    step = int(time.time() // 30)
    if step == admin.last_step[0]:
        time.sleep(30 - time.time() % 30 + 0.5)
    admin.last_step[0] = int(time.time() // 30)
    token = client.get("/api/auth/csrf").json()["csrf_token"]
    response = client.post(
        "/api/auth/login",
        json={
            "email": admin.email,
            "password": admin.password,
            "totp_code": totp.code_at(admin.totp_secret, utc_now()),
            "role": "admin",
        },
        headers={CSRF_HEADER: token},
    )
    response.raise_for_status()
    client.headers[CSRF_HEADER] = response.json()["csrf_token"]


def _growth_paths(history: seed.History) -> dict[str, str]:
    return {
        "admin_streams": "/admin/streams",
        "admin_streams_api": "/api/admin/streams?limit=50",
        "admin_stream": f"/admin/streams/{history.stream_id}",
        "admin_stream_api": f"/api/admin/streams/{history.stream_id}",
        "admin_audit": "/admin/audit",
        "admin_audit_api": "/api/admin/audit?limit=50",
        "my_streams": "/influencer/streams",
        "my_streams_api": "/api/streams/mine?limit=50",
    }


@dataclass
class GrowthSide:
    """One history size: its database, server and signed-in clients (admin, the creator)."""

    rows: int
    history: seed.History
    admin: httpx.Client
    creator: httpx.Client

    def client_for(self, name: str) -> httpx.Client:
        return self.creator if name.startswith("my_") else self.admin


class GrowthSeed(NamedTuple):
    url: str
    history: seed.History
    admin: AdminLogin
    seconds: float


def _seed_growth(bed: Bed, rows: int) -> GrowthSeed:
    """A database of its own beside the bed's, migrated and seeded with `rows` of history."""
    url = harness.another_database(bed.database, f"growth_{rows}")
    migrate.upgrade(url)
    began = time.monotonic()
    history = seed.seed_history(url, rows)
    seconds = time.monotonic() - began
    return GrowthSeed(url, history, asyncio.run(_growth_admin(url, bed.secret_key)), seconds)


def _interleaved_p50s(sides: list[GrowthSide], name: str, samples: int) -> list[tuple[float, int]]:
    """Each size's p50 and body size for one page, its requests interleaved with the other
    sizes' (A B C, B C A, …): outside load that comes and goes hits every size alike. Each
    turn sends the page twice and times the second: the first finds the CPU's caches holding
    another server's data, a cost of its own that flattens the ratio (timed, it added 1-5 ms
    to pages of 3-6 ms, and the worst ratio read 1.52 / 1.43 instead of 1.65 / 1.56)."""
    paths = [_growth_paths(side.history)[name] for side in sides]
    for side, path in zip(sides, paths, strict=True):
        side.client_for(name).get(path).raise_for_status()  # warm: statements, page cache
    times: list[list[float]] = [[] for _ in sides]
    sizes = [0] * len(sides)
    for sample in range(samples):
        for turn in range(len(sides)):
            i = (sample + turn) % len(sides)
            client = sides[i].client_for(name)
            client.get(paths[i]).raise_for_status()
            start = time.perf_counter()
            response = client.get(paths[i])
            times[i].append((time.perf_counter() - start) * 1000)
            response.raise_for_status()
            sizes[i] = len(response.content)
    return [(statistics.median(t), size) for t, size in zip(times, sizes, strict=True)]


def growth(bed: Bed) -> dict[str, float]:
    """Every list page and API, and the page of a stream with as many peers as there are
    streams, at each history size (p50 of GROWTH_SAMPLES); the figure is p50 at the largest ÷
    p50 at the smallest (target ≤ 2). Each size has its database and server, all three
    running at once, and their requests are interleaved: a size measured minutes after
    another, on this shared machine, differed by 2× for reasons of its own."""
    sizes = GROWTH_QUICK_SIZES if bed.profile.repeats == 1 else GROWTH_SIZES
    seeded = {rows: _seed_growth(bed, rows) for rows in sizes}
    by_size: dict[int, dict[str, float]] = {rows: {} for rows in sizes}
    with contextlib.ExitStack() as stack:
        sides = []
        for rows, (url, history, admin, _) in seeded.items():
            server = stack.enter_context(bed.server(f"growth-{rows}", LIVESTAGE_DATABASE_URL=url))
            admin_client = stack.enter_context(httpx.Client(base_url=server.base_url, timeout=60))
            _admin_login(admin_client, admin)
            creator = stack.enter_context(httpx.Client(base_url=server.base_url, timeout=60))
            _login(creator, history.email, history.password)
            sides.append(GrowthSide(rows, history, admin_client, creator))
        for name in _growth_paths(sides[0].history):
            for side, (p50, size) in zip(
                sides, _interleaved_p50s(sides, name, GROWTH_SAMPLES), strict=True
            ):
                by_size[side.rows][name] = p50
                by_size[side.rows][f"{name}_bytes"] = size
    smallest, largest = by_size[sizes[0]], by_size[sizes[-1]]
    result: dict[str, float] = {}
    for rows, figures in by_size.items():
        result[f"growth_seed_s_at_{rows}"] = round(seeded[rows].seconds, 1)
        for name, value in figures.items():
            unit = "" if name.endswith("_bytes") else "_p50_ms"
            result[f"growth_{name}{unit}_at_{rows}"] = value
    # At the smallest size a list shows fewer rows than a page holds: the ratio to the middle
    # size (full pages both) isolates what history itself costs.
    middle = by_size[sizes[1]]
    for name in smallest:
        if not name.endswith("_bytes"):
            result[f"growth_{name}_ratio"] = round(largest[name] / smallest[name], 2)
            result[f"growth_{name}_full_page_ratio"] = round(largest[name] / middle[name], 2)
    result["growth_worst_ratio"] = max(v for k, v in result.items() if k.endswith("_ratio"))
    return result
