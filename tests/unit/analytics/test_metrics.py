"""`/metrics` with several processes: prometheus_client's multiprocess mode, driven in real
processes (it picks its value backend when first imported, from the environment)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from livestage.analytics.metrics import render
from livestage.streams.repository import OpenStreams
from tests.support.prometheus import parse, value

ROOT = Path(__file__).resolve().parents[3]

# A worker that counts events and holds one open page. With `stop`, it shuts down cleanly
# (the app's lifespan calls process_stopped); without, it is killed before it can.
WORKER = """
import os, signal, sys
from livestage.tracking.metrics import count_received
from livestage.web.metrics import SSE_CONNECTIONS
for _ in range(int(sys.argv[1])):
    count_received("hms", True)
count_received("hms", False)
SSE_CONNECTIONS.inc()
print(os.getpid(), flush=True)
if sys.argv[2] == "stop":
    from livestage.analytics.metrics import process_stopped
    process_stopped()
else:
    os.kill(os.getpid(), signal.SIGKILL)
"""

# The process a scrape reaches: one open page of its own.
SCRAPE = """
import sys
from livestage.analytics.metrics import render
from livestage.streams.repository import OpenStreams
from livestage.web.metrics import SSE_CONNECTIONS
SSE_CONNECTIONS.inc()
sys.stdout.write(render(OpenStreams(live=2, starting=1, viewers=7)).decode())
"""


def _python(code: str, directory: Path, *args: str) -> subprocess.Popen[str]:
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str], *, returncode: int = 0) -> str:
    out, err = process.communicate(timeout=20)
    assert process.returncode == returncode, err
    return out


def test_a_scrape_of_any_process_sums_every_process(tmp_path: Path) -> None:
    killed = _python(WORKER, tmp_path, "3", "kill")
    stopped = _python(WORKER, tmp_path, "4", "stop")
    killed_pid = int(_finish(killed, returncode=-signal.SIGKILL))
    stopped_pid = int(_finish(stopped))
    assert (tmp_path / f"gauge_livesum_{killed_pid}.db").exists()
    assert not (tmp_path / f"gauge_livesum_{stopped_pid}.db").exists()

    samples = parse(_finish(_python(SCRAPE, tmp_path)))

    received = "livestage_webhook_events_received_total"
    assert value(samples, received, source="hms", outcome="new") == 7
    assert value(samples, received, source="hms", outcome="duplicate") == 2
    # Only the live process's page: the stopped one marked itself dead, the killed one was
    # found dead by the scrape.
    assert value(samples, "livestage_live_connections", kind="sse") == 1
    assert not (tmp_path / f"gauge_livesum_{killed_pid}.db").exists()
    assert value(samples, "livestage_streams_live") == 2
    assert value(samples, "livestage_streams_starting") == 1
    assert value(samples, "livestage_viewers_watching") == 7


def test_one_process_exports_its_own_figures_and_its_process_metrics() -> None:
    samples = parse(render(OpenStreams(live=1, starting=0, viewers=3)).decode())
    assert value(samples, "livestage_streams_live") == 1
    assert value(samples, "livestage_viewers_watching") == 3
    names = {name for name, _ in samples}
    assert "livestage_webhook_events_applied_total" in names
    assert any(name.startswith("process_") for name in names)


def test_without_the_database_the_rest_still_answers() -> None:
    samples = parse(render(None).decode())
    assert not any(name.startswith("livestage_streams") for name, _ in samples)
    assert ("livestage_live_connections", frozenset({("kind", "sse")})) in samples
