"""Webhook ingestion: events per second acknowledged durably by a real `livestage serve`
process (SQLite, one worker), then an exact count: every sent event stored once and applied.

    .venv/bin/python bench/webhook_ingest.py [events] [concurrency]
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from livestage import migrate
from livestage.config import Settings
from livestage.web.context import WEBHOOK_SECRET_HEADER, webhook_secret

EVENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
CONCURRENCY = int(sys.argv[2]) if len(sys.argv) > 2 else 32
ROOM = secrets.token_hex(12)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seed(path: Path) -> None:
    """One influencer with one live stream in ROOM, written straight into the fresh database."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    user, influencer, stream = (uuid.uuid4().hex for _ in range(3))
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO users (id, email, display_name, password_hash, role, created_at,"
            " updated_at) VALUES (?, 'b@bench.test', 'B', 'x', 'influencer', ?, ?)",
            (user, now, now),
        )
        db.execute(
            "INSERT INTO influencers (id, user_id, handle, streaming_enabled, created_at,"
            " updated_at) VALUES (?, ?, 'bench', 1, ?, ?)",
            (influencer, user, now, now),
        )
        db.execute(
            "INSERT INTO live_streams (id, influencer_id, provider, strategy, status, title,"
            " description, room_id, room_codes, current_viewers, peak_viewers, unique_viewers,"
            " total_watch_seconds, avg_watch_seconds, recordings, created_at, updated_at)"
            " VALUES (?, ?, 'hms', 'automatic', 'live', 'bench', '', ?, '{}', 0, 0, 0, 0, 0,"
            " '[]', ?, ?)",
            (stream, influencer, ROOM, now, now),
        )


def _event(i: int, start: datetime) -> dict[str, object]:
    at = (start + timedelta(milliseconds=i)).isoformat().replace("+00:00", "Z")
    peer = f"peer-{i // 2}"
    kind = "peer.join.success" if i % 2 == 0 else "peer.leave.success"
    data = {
        "room_id": ROOM,
        "session_id": "s" * 24,
        "peer_id": peer,
        "user_id": f"u{i // 2}",
        "role": "viewer",
        "joined_at": at,
    }
    if kind == "peer.leave.success":
        data["left_at"] = at
    return {"version": "2.0", "id": str(uuid.uuid4()), "type": kind, "timestamp": at, "data": data}


async def _load(base: str, secret: str) -> tuple[float, list[float]]:
    start = datetime.now(UTC)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(EVENTS):
        queue.put_nowait(i)
    latencies: list[float] = []
    headers = {WEBHOOK_SECRET_HEADER: secret}
    limits = httpx.Limits(max_connections=CONCURRENCY)

    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=60
    ) as client:

        async def sender() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                began = time.perf_counter()
                response = await client.post("/webhooks/100ms", json=_event(i, start))
                response.raise_for_status()
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(CONCURRENCY)))
        return time.perf_counter() - began, latencies


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
        migrate.upgrade(url)
        _seed(path)
        key = secrets.token_urlsafe(32)
        env = {
            **os.environ,
            "LIVESTAGE_DATABASE_URL": url,
            "LIVESTAGE_SECRET_KEY": key,
            "LIVESTAGE_LOG_LEVEL": "WARNING",
            "LIVESTAGE_WORKER_ENABLED": os.environ.get("BENCH_WORKER", "true"),
            "LIVESTAGE_RECONCILE_INTERVAL_SECONDS": "0",
        }
        port = _free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "livestage.app:create_app",
                "--factory",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    httpx.get(f"{base}/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            secret = webhook_secret(Settings(_env_file=None, secret_key=key))  # type: ignore[call-arg]
            elapsed, latencies = asyncio.run(_load(base, secret))
            deadline = time.time() + 120
            while time.time() < deadline:
                with sqlite3.connect(path) as db:
                    stored, pending = db.execute(
                        "SELECT count(*), sum(processed_at IS NULL) FROM provider_events"
                    ).fetchone()
                if not pending:
                    break
                time.sleep(0.2)
        finally:
            server.terminate()
            server.wait(10)
        with sqlite3.connect(path) as db:
            distinct = db.execute(
                "SELECT count(DISTINCT external_id) FROM provider_events"
            ).fetchone()[0]
            peers = db.execute(
                "SELECT count(*), sum(left_at IS NOT NULL) FROM stream_peers"
            ).fetchone()
        latencies.sort()
        p50 = latencies[len(latencies) // 2] * 1000
        p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
        print(f"sent {EVENTS} events with {CONCURRENCY} connections in {elapsed:.2f} s")
        print(f"acknowledged: {EVENTS / elapsed:.0f} events/s  p50 {p50:.1f} ms  p99 {p99:.1f} ms")
        print(f"stored {stored} (distinct {distinct}), unprocessed {pending or 0}")
        print(
            f"peers {peers[0]} (closed {peers[1]}); "
            f"lost {EVENTS - stored}, doubled {stored - distinct}"
        )
        if stored != EVENTS or distinct != EVENTS or pending or peers[0] != EVENTS // 2:
            raise SystemExit("exact-count check FAILED")
        print("exact-count check passed")


if __name__ == "__main__":
    main()
