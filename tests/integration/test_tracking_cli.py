"""`livestage webhooks replay` and `livestage reconcile`, run as the operator runs them (typer's
CliRunner, configuration from `LIVESTAGE_*` variables) against a migrated SQLite file and the
100ms emulator.

CliRunner calls `asyncio.run`, so these tests are synchronous.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from livestage.cli import app as cli_app
from livestage.models import StreamPeer, StreamStatus
from tests.support.app_process import (
    expected_from_ground_truth,
    migrated_sqlite,
    read_events,
    read_stream,
    seed_influencer,
    seed_stream,
)
from tests.support.emulator import (
    EmulatorHandle,
    join_op,
    leave_op,
    rfc3339,
    unused_port,
)

REPLAY_LINE = re.compile(r"read (\d+) events: (\d+) new, (\d+) already stored; applied (\d+)")


@dataclass
class Cli:
    url: str
    env: dict[str, str]

    def invoke(self, *args: str) -> str:
        result = CliRunner().invoke(cli_app, list(args), env=self.env)
        assert result.exit_code == 0, result.output
        return result.output

    def replay(self, *args: str) -> tuple[int, int, int, int]:
        output = self.invoke("webhooks", "replay", *args)
        found = REPLAY_LINE.search(output)
        assert found is not None, output
        read, new, duplicates, applied = map(int, found.groups())
        return read, new, duplicates, applied


@pytest.fixture
def cli(emulator: EmulatorHandle, tmp_path: Path) -> Cli:
    url = migrated_sqlite(tmp_path / "livestage.db")
    env = {
        "LIVESTAGE_ENV": "test",
        "LIVESTAGE_DATABASE_URL": url,
        "LIVESTAGE_SECRET_KEY": secrets.token_urlsafe(32),
        "LIVESTAGE_HMS_ACCESS_KEY": emulator.access_key,
        "LIVESTAGE_HMS_APP_SECRET": emulator.app_secret,
        "LIVESTAGE_HMS_API_URL": emulator.api_url,
        "LIVESTAGE_HMS_AUTH_URL": emulator.auth_url,
        "LIVESTAGE_HMS_MAX_RETRIES": "0",
        "LIVESTAGE_LOG_LEVEL": "WARNING",
    }
    return Cli(url, env)


def _room(emulator: EmulatorHandle, name: str, webhook: Mapping[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"name": name}
    if webhook is not None:
        body["webhook"] = dict(webhook)
    with emulator.api() as api:
        response = api.post("/rooms", json=body)
    assert response.status_code == 200, response.text
    room_id: str = response.json()["id"]
    return room_id


def _seed(url: str, handle: str, room_id: str, created_at: datetime, **kwargs: Any) -> uuid.UUID:
    influencer = asyncio.run(seed_influencer(url, handle))
    return asyncio.run(
        seed_stream(url, influencer.id, room_id=room_id, created_at=created_at, **kwargs)
    )


class TestWebhooksReplay:
    def test_pulls_the_events_livestage_never_received_then_finds_them_stored(
        self, cli: Cli, emulator: EmulatorHandle
    ) -> None:
        control = emulator.control
        # The room's webhook points where nothing listens: livestage never receives a thing,
        # 100ms retries each event and gives up. Only its history has them.
        nowhere = f"http://127.0.0.1:{unused_port()}/webhooks/100ms"
        room_id = _room(emulator, "livestage-replayed", {"url": nowhere, "headers": {}})
        now = datetime.now(UTC)
        stream_id = _seed(cli.url, "replayed", room_id, now - timedelta(minutes=30))

        t0 = (now - timedelta(minutes=25)).replace(microsecond=250_001)
        host = str(uuid.uuid4())
        ops = [join_op("host", t0, role="broadcaster", peer_id=host)]
        visits = []
        for i in range(40):
            peer = str(uuid.uuid4())
            joined = t0 + timedelta(seconds=3 + i * 17, microseconds=i * 7919)
            left = joined + timedelta(seconds=30 + (i * 37) % 400, microseconds=i * 104_729)
            visits.append((joined, join_op(f"fan-{i % 31}", joined, peer_id=peer)))
            visits.append((left, leave_op(peer, left)))
        ops += [op for _, op in sorted(visits, key=lambda v: v[0])]
        ops.append(leave_op(host, t0 + timedelta(minutes=20)))
        emitted = control.script(room_id, ops)["events_emitted"]
        assert emitted == len(ops) + 2  # + session open and close
        summary = control.wait_for_deliveries(timeout=30)
        assert (summary["success"], summary["failed"]) == (0, emitted)
        assert asyncio.run(read_events(cli.url)) == []

        since = rfc3339(now - timedelta(hours=1))
        assert cli.replay("--since", since) == (emitted, emitted, 0, emitted)

        stream = asyncio.run(read_stream(cli.url, stream_id))
        truth = expected_from_ground_truth(control.ground_truth(room_id))
        assert stream.status == "ended"
        assert stream.end_reason == "session_closed"
        assert stream.session_id == truth.session_id
        assert (stream.started_at, stream.ended_at) == (truth.started_at, truth.ended_at)
        assert stream.peers == truth.peers
        assert stream.peer_rows == 41
        assert stream.samples == truth.samples
        assert stream.facts == truth.facts
        assert truth.facts["unique_viewers"] == 31
        events = asyncio.run(read_events(cli.url))
        assert len(events) == emitted
        assert all(e.processed_at is not None and e.attempts == 0 for e in events)
        assert {e.stream_id for e in events} == {stream_id}

        # Again: everything is already stored, nothing is applied twice, nothing changes.
        assert cli.replay("--since", since) == (emitted, 0, emitted, 0)
        assert asyncio.run(read_stream(cli.url, stream_id)) == stream
        assert len(asyncio.run(read_events(cli.url))) == emitted

    def test_only_the_window_asked_for_is_read(self, cli: Cli, emulator: EmulatorHandle) -> None:
        nowhere = f"http://127.0.0.1:{unused_port()}/webhooks/100ms"
        room_id = _room(emulator, "livestage-window", {"url": nowhere, "headers": {}})
        now = datetime.now(UTC)
        _seed(cli.url, "window", room_id, now - timedelta(minutes=30))
        t0 = now - timedelta(minutes=20)
        host = str(uuid.uuid4())
        ops = [
            join_op("host", t0, role="broadcaster", peer_id=host),
            join_op("early", t0 + timedelta(minutes=1)),
            join_op("late", t0 + timedelta(minutes=10)),
        ]
        emulator.control.script(room_id, ops)
        emulator.control.wait_for_deliveries(timeout=30)

        until = rfc3339(t0 + timedelta(minutes=5))
        # session open, the host's join, early's join; late's join is after the window.
        assert cli.replay("--since", rfc3339(t0), "--until", until) == (3, 3, 0, 3)
        assert cli.replay("--since", rfc3339(t0)) == (4, 1, 3, 1)

    def test_a_bad_time_is_refused_before_anything_runs(self, cli: Cli) -> None:
        result = CliRunner().invoke(
            cli_app, ["webhooks", "replay", "--since", "yesterday"], env=cli.env
        )
        assert result.exit_code == 2
        assert "not an RFC 3339 time" in result.output


class TestReconcile:
    def test_ends_a_stream_whose_room_has_no_live_session(
        self, cli: Cli, emulator: EmulatorHandle
    ) -> None:
        now = datetime.now(UTC)
        # Gone: livestage thinks it is live, 100ms has no session (the close webhook was lost).
        gone_room = _room(emulator, "livestage-gone")
        gone_viewer = StreamPeer(
            peer_id="gone-viewer", user_id="v1", role="viewer", joined_at=now - timedelta(minutes=8)
        )
        gone = _seed(
            cli.url,
            "gone",
            gone_room,
            now - timedelta(minutes=10),
            status=StreamStatus.live,
            peers=[gone_viewer],
        )
        # Live: the broadcaster is in the room; a viewer livestage still counts has left.
        live_room = _room(emulator, "livestage-still-live")
        host = emulator.control.join_peer(live_room, user_id="host", role="broadcaster")
        live_peers = [
            StreamPeer(
                peer_id=host["id"],
                user_id="host",
                role="broadcaster",
                is_broadcaster=True,
                joined_at=now - timedelta(minutes=5),
            ),
            StreamPeer(
                peer_id="stale-viewer",
                user_id="v2",
                role="viewer",
                joined_at=now - timedelta(minutes=4),
            ),
        ]
        live = _seed(
            cli.url,
            "stilllive",
            live_room,
            now - timedelta(minutes=5),
            status=StreamStatus.live,
            peers=live_peers,
        )
        # Just started: nobody joined yet, still within the grace; left alone.
        fresh_room = _room(emulator, "livestage-fresh")
        fresh = _seed(cli.url, "fresh", fresh_room, now)

        before = datetime.now(UTC)
        output = cli.invoke("reconcile")
        after = datetime.now(UTC)
        assert "checked 3 streams: ended 1, closed 1 peers" in output

        ended = asyncio.run(read_stream(cli.url, gone))
        assert ended.status == "ended"
        assert ended.end_reason == "reconciled_no_session"
        assert ended.ended_at is not None and before <= ended.ended_at <= after
        assert ended.facts["duration_seconds"] == int(
            (ended.ended_at - (now - timedelta(minutes=10))).total_seconds()
        )
        assert ended.peers == {
            ("gone-viewer", "v1", "viewer", now - timedelta(minutes=8), ended.ended_at)
        }

        kept = asyncio.run(read_stream(cli.url, live))
        assert kept.status == "live"
        assert kept.ended_at is None
        left = {p[0]: p[4] for p in kept.peers}
        assert left[host["id"]] is None
        stale_left = left["stale-viewer"]
        assert stale_left is not None and before <= stale_left <= after
        assert kept.facts["current_viewers"] == 0

        waiting = asyncio.run(read_stream(cli.url, fresh))
        assert waiting.status == "starting"

        # Nothing left to repair: a second run changes nothing.
        assert "checked 2 streams: ended 0, closed 0 peers" in cli.invoke("reconcile")
        assert asyncio.run(read_stream(cli.url, live)).peers == kept.peers


class TestReconcileThenReplay:
    def test_the_replayed_close_corrects_the_reconcilers_estimate(
        self, cli: Cli, emulator: EmulatorHandle
    ) -> None:
        """Webhooks lost; the reconciler notices the session is gone and ends the stream at
        the time it looked; then the history is replayed. The figures must be the session's
        own, not the reconciler's estimate."""
        control = emulator.control
        nowhere = f"http://127.0.0.1:{unused_port()}/webhooks/100ms"
        room_id = _room(emulator, "livestage-lost-close", {"url": nowhere, "headers": {}})
        now = datetime.now(UTC)
        t0 = now - timedelta(minutes=25)
        # Live: the broadcaster's page reported joining (a starting stream fails instead).
        stream_id = _seed(cli.url, "lostclose", room_id, t0, status=StreamStatus.live)
        host = str(uuid.uuid4())
        ops = [join_op("host", t0, role="broadcaster", peer_id=host)]
        for i in range(5):
            peer = str(uuid.uuid4())
            ops.append(join_op(f"fan-{i}", t0 + timedelta(seconds=10 + i), peer_id=peer))
            ops.append(leave_op(peer, t0 + timedelta(minutes=3, seconds=i)))
        ops.sort(key=lambda op: op["at"])
        ops.append(leave_op(host, t0 + timedelta(minutes=4)))
        control.script(room_id, ops)
        control.wait_for_deliveries(timeout=30)

        assert "ended 1" in cli.invoke("reconcile")
        assert asyncio.run(read_stream(cli.url, stream_id)).end_reason == "reconciled_no_session"
        read, new, _, _ = cli.replay("--since", rfc3339(now - timedelta(hours=1)))
        assert read == new == len(ops) + 2

        stream = asyncio.run(read_stream(cli.url, stream_id))
        truth = expected_from_ground_truth(control.ground_truth(room_id))
        assert stream.peers == truth.peers
        assert (stream.started_at, stream.ended_at) == (truth.started_at, truth.ended_at)
        assert stream.facts == truth.facts
        assert stream.samples == truth.samples
