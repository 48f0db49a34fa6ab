"""100ms's own Node server SDK (@100mslive/server-sdk, pinned in vendor/package.json and
installed by `make deps`) drives the emulator: every endpoint livestage calls and every endpoint
the emulator implements (tests/contract/hms_server_sdk_contract.cjs). The emulator is held to
100ms's client, not only to livestage's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.emulator import StartEmulator, WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("hms_server_sdk_contract.cjs")
NODE_MODULES = ROOT / "vendor" / "node_modules"
IDLE_STOP_SECONDS = 1.0

# Every check the script makes: one that silently stopped running fails the test too.
CHECKS = [
    "management token",
    "a wrong secret is refused",
    "create a room",
    "create is an upsert by name",
    "retrieve a room by id",
    "retrieve a room by name",
    "update a room",
    "disable and enable a room",
    "list rooms across pages",
    "an unknown room is a 404",
    "create room codes",
    "create a code for a role",
    "list room codes",
    "disable and enable a code",
    "exchange a code (auth host)",
    "create a template",
    "retrieve a template",
    "update a template",
    "list templates",
    "join with an SDK-minted auth token",
    "retrieve the active room",
    "list active peers",
    "retrieve a peer with tracks",
    "update a peer",
    "send a message",
    "remove a peer",
    "an idle room has no active room",
    "the active session of a room",
    "retrieve a session",
    "list a room's sessions",
    "start HLS",
    "a second start conflicts",
    "retrieve a running stream",
    "list live streams",
    "timed metadata",
    "pause and resume recording",
    "stop one stream",
    "stop all of a room's streams",
    "end the room",
    "an emptied room's stream stops later",
    "webhook history",
    "webhook replay",
]


def run_contract(base_url: str, access_key: str, secret: str) -> list[dict[str, Any]]:
    node = shutil.which("node")
    assert node, "Node.js is needed: scripts/system-deps.sh installs it"
    assert (NODE_MODULES / "@100mslive" / "server-sdk").is_dir(), "run `make dev-deps`"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "NODE_PATH": str(NODE_MODULES),
        "HMS_ACCESS_KEY": access_key,
        "HMS_SECRET": secret,
        "EMULATOR_URL": base_url,
        "IDLE_STOP_SECONDS": str(IDLE_STOP_SECONDS),
    }
    done = subprocess.run(
        [node, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines and "done" in lines[-1], (done.stdout, done.stderr)
    return lines[:-1]


@pytest.fixture
def results(
    start_emulator: StartEmulator, webhook_receiver: WebhookReceiver
) -> list[dict[str, Any]]:
    # With a webhook URL, the history the SDK reads has deliveries in it.
    handle = start_emulator(
        hls_idle_stop_seconds=IDLE_STOP_SECONDS, webhook_url=webhook_receiver.url
    )
    return run_contract(handle.base_url, handle.access_key, handle.app_secret)


def test_the_100ms_server_sdk_drives_every_emulator_endpoint(results: list[dict[str, Any]]) -> None:
    report = "\n".join(
        f"{'ok  ' if r['ok'] else 'FAIL'} {r['check']}: {r['call']} {r['detail']}" for r in results
    )
    assert [r["check"] for r in results] == CHECKS, report
    assert [r for r in results if not r["ok"]] == [], report
