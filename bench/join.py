"""Scenario 1, the flash-crowd viewer join, against every contender interleaved.

Contenders: the ceiling (`GET /healthz` on the same livestage server), the join itself, the two
Node peers (Express + `jsonwebtoken`, 100ms's documented sample; Express + Node's `crypto` HMAC)
and the two Python floors (bench/floors.py), plus the `--baseline` checkout when given. All are
up at once on the server core; wrk (64 connections) drives one at a time, A B C … A B C …, a
round at a time, each round starting one contender further on, so load from outside the bench
falls on all of them alike. Every ratio is taken within a round; the figures are the median,
lowest and highest over the rounds.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench import harness
from bench.scenarios import (
    CONNECTIONS,
    JOIN_FLUSH_WAIT_S,
    Bed,
    _count,
    _csrf_pairs,
    join_script,
    node_script,
)

PEERS = harness.ROOT / "bench" / "peers"
# The ratios the issue sets targets for, and the others reported beside them.
RATIOS = ("floor_pyjwt", "node_crypto", "node_reference", "floor_bare", "ceiling", "baseline")


@contextmanager
def node_peer(script: str, access_key: str, app_secret: str, log: Path) -> Iterator[Any]:
    if not all((PEERS / "node_modules" / m).exists() for m in ("express", "jsonwebtoken")):
        subprocess.run(
            ["npm", "install", "--no-package-lock", "--no-audit", "--no-fund"],
            cwd=PEERS,
            check=True,
            capture_output=True,
        )
    port = harness.free_port()
    env = {**os.environ, "HMS_ACCESS_KEY": access_key, "HMS_APP_SECRET": app_secret}
    process = harness.spawn(["node", str(PEERS / script), str(port)], env=env, port=port, log=log)
    try:
        yield process
    finally:
        process.stop()


@contextmanager
def python_floor(kind: str, bed: Bed, rooms: Path) -> Iterator[Any]:
    port = harness.free_port()
    env = {
        **os.environ,
        "HMS_ACCESS_KEY": bed.access_key,
        "HMS_APP_SECRET": bed.app_secret,
        "LIVESTAGE_LOG_LEVEL": "WARNING",  # as harness.ServerConfig gives livestage
    }
    command = [str(harness.VENV_BIN / "python"), "-m", "bench.floors", kind, str(port), str(rooms)]
    log = bed.logs / f"floor-{kind}.log"
    process = harness.spawn(command, env=env, port=port, log=log)
    try:
        yield process
    finally:
        process.stop()


def viewer_join(bed: Bed) -> dict[str, Any]:
    channels = bed.live_channels()
    rooms = bed.logs / "floor-rooms.json"
    rooms.write_text(json.dumps({c.handle: c.room_id for c in channels}))
    keys = (bed.access_key, bed.app_secret)
    with ExitStack() as stack:
        server = stack.enter_context(bed.server("join"))
        baseline = stack.enter_context(bed.baseline_server("join"))
        jwt_peer = stack.enter_context(
            node_peer("token_server.js", *keys, bed.logs / "node-token-server.log")
        )
        crypto_peer = stack.enter_context(
            node_peer("token_server_crypto.js", *keys, bed.logs / "node-crypto-server.log")
        )
        bare = stack.enter_context(python_floor("bare", bed, rooms))
        pyjwt = stack.enter_context(python_floor("pyjwt", bed, rooms))
        join = join_script([c.handle for c in channels], _csrf_pairs(server.base_url, 64))
        node_lua = node_script([c.room_id for c in channels])
        targets = {
            "join": (server.base_url, join),
            "ceiling": (server.base_url + "/healthz", ""),
            "node_reference": (jwt_peer.base_url, node_lua),
            "node_crypto": (crypto_peer.base_url, node_lua),
            "floor_bare": (bare.base_url, join),
            "floor_pyjwt": (pyjwt.base_url, join),
        }
        if baseline is not None:
            targets["baseline"] = (baseline.base_url, join)
        runs, joins_before = _interleaved(bed, targets)
        joins_after = _settled_joins(bed)
    joins_recorded = joins_after - joins_before
    if bed.baseline_shares_database:
        # The baseline records its joins in the same table: they are counted as its own.
        joins_recorded -= sum(r.requests for r in runs.get("baseline", []))
    return _figures(runs, joins_recorded)


def _interleaved(
    bed: Bed, targets: dict[str, tuple[str, str]]
) -> tuple[dict[str, list[harness.WrkResult]], int]:
    """Every target's runs, and the join intents stored before the first counted one."""
    seconds = bed.profile.join_seconds
    # Not counted: each server's first seconds (caches filling, statements compiled, the JIT
    # warming in Node) would otherwise fall in the first round.
    for url, script in targets.values():
        harness.wrk(url, seconds=min(2.0, seconds), connections=CONNECTIONS, script=script)
    before = _settled_joins(bed)  # the warm-up's join intents written
    runs: dict[str, list[harness.WrkResult]] = {name: [] for name in targets}
    names = list(targets)
    for round_ in range(bed.profile.join_rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            url, script = targets[name]
            runs[name].append(
                harness.wrk(url, seconds=seconds, connections=CONNECTIONS, script=script)
            )
    return runs, before


def _settled_joins(bed: Bed, seconds: float = 30) -> int:
    """Join intents stored, once the server has written those it buffered (intents are
    flushed every second, later on a loaded machine): the count no longer moves."""
    deadline = time.monotonic() + seconds
    count = _count(bed.database.url, "SELECT coalesce(sum(joins), 0) FROM viewer_join_batches")
    while True:
        time.sleep(JOIN_FLUSH_WAIT_S)
        again = _count(bed.database.url, "SELECT coalesce(sum(joins), 0) FROM viewer_join_batches")
        if again == count or time.monotonic() > deadline:
            return again
        count = again


def _figures(runs: dict[str, list[harness.WrkResult]], joins_recorded: int) -> dict[str, Any]:
    join = runs["join"]
    figures: dict[str, Any] = {
        **_spread("join_rps", [r.rps for r in join]),
        "join_p50_ms": _median(r.p50_ms for r in join),
        "join_p99_ms": _median(r.p99_ms for r in join),
        "join_errors": sum(r.errors for r in join),
        "join_requests": sum(r.requests for r in join),
        "join_recorded": joins_recorded,
        "join_rounds": len(join),
    }
    for name in RATIOS:
        if name not in runs:
            continue
        theirs = runs[name]
        figures.update(_spread(f"join_{name}_rps", [r.rps for r in theirs]))
        figures[f"join_{name}_p99_ms"] = _median(r.p99_ms for r in theirs)
        figures[f"join_{name}_errors"] = sum(r.errors for r in theirs)
        ratios = [o.rps / t.rps for o, t in zip(join, theirs, strict=True)]
        figures.update(_spread(f"join_vs_{name}", ratios))
    ceiling_vs_bare = [
        c.rps / b.rps for c, b in zip(runs["ceiling"], runs["floor_bare"], strict=True)
    ]
    figures.update(_spread("join_ceiling_vs_floor_bare", ceiling_vs_bare))
    return figures


def _spread(key: str, values: list[float]) -> dict[str, float]:
    return {key: _median(values), f"{key}_min": min(values), f"{key}_max": max(values)}


def _median(values: Any) -> float:
    return float(statistics.median(list(values)))
