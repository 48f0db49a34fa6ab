"""The performance bench: one command, four scenarios, results in bench/results/latest.{md,json}.

.venv/bin/python -m bench [--quick] [--db sqlite|postgresql|both] [--only NAME ...]
                         [--baseline CHECKOUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import harness, join, loadgen, report, scenarios, storm

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS: dict[str, Callable[[scenarios.Bed], dict[str, float]]] = {
    "join": join.viewer_join,
    "webhooks": scenarios.webhooks,
    "golive": scenarios.go_live,
    "fanout": scenarios.fan_out,
    "fanout2": scenarios.fan_out_cluster,
    "storm": storm.storm,
    "backlog": scenarios.backlog,
    "crowd": scenarios.crowd,
    "chat": scenarios.chat,
    "growth": scenarios.growth,
}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (under a minute)")
    parser.add_argument(
        "--db",
        choices=["sqlite", "postgresql", "both"],
        default=None,
        help="database variant(s); default: both, or sqlite with --quick",
    )
    parser.add_argument("--only", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.* are written")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another checkout of livestage (git worktree add DIR REV): the join scenario "
        "serves it beside this one and reports join ÷ baseline from the same run",
    )
    return parser.parse_args()


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {system}"


def loadavg() -> str:
    """The 1-, 5- and 15-minute load averages (/proc/loadavg)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _versions() -> dict[str, str]:
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    wrk = "wrk " + (shutil.which("wrk") and "4.x" or "missing")
    return {"node": node, "wrk": wrk}


def run_variant(
    kind: str,
    profile: scenarios.Profile,
    only: list[str],
    logs: Path,
    baseline: Path | None = None,
    partial: Path | None = None,
) -> dict[str, Any]:
    """Every scenario's figures on one database; written to `partial` after each scenario."""
    database = harness.create_database(kind)
    bed_logs = logs / kind
    bed_logs.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {}
    try:
        keys = {"access_key": secrets.token_hex(12), "app_secret": secrets.token_hex(32)}
        with harness.emulator(**keys, log=bed_logs / "emulator.log") as emu:
            bed = scenarios.Bed(
                database, profile, bed_logs, emu.base_url, **keys, baseline=baseline
            )
            for name in only:
                began, load = time.monotonic(), loadavg()
                print(f"[{kind}] {name} … (load average {load})", flush=True)
                try:
                    figures.update(SCENARIOS[name](bed))
                except Exception as error:
                    # One scenario failing (a server gone, a peer refusing) costs its own
                    # figures only: it is recorded, and the run goes on.
                    traceback.print_exc()
                    figures[f"{name}_error"] = f"{type(error).__name__}: {error}"[:200]
                # The machine is shared: what else ran beside each scenario, start → end.
                figures[f"{name}_loadavg"] = f"{load} → {loadavg()}"
                print(f"[{kind}] {name} done in {time.monotonic() - began:.0f} s", flush=True)
                if partial is not None:
                    partial.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    finally:
        database.drop()
    return figures


def _revision(checkout: Path) -> str:
    command = ["git", "-C", str(checkout), "log", "-1", "--format=%h %s"]
    return subprocess.run(command, capture_output=True, text=True).stdout.strip()[:80]


def main() -> None:
    args = _arguments()
    harness.pin_self_to_load_core()
    harness.raise_fd_limit()
    loadgen.install_fast_loop()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed for the join scenario: apt-get install wrk")
    kinds = {
        "both": ["sqlite", "postgresql"],
        None: ["sqlite"] if args.quick else ["sqlite", "postgresql"],
    }.get(args.db, [args.db])
    profile = scenarios.Profile.of(args.quick)
    began = time.monotonic()
    logs = Path(tempfile.mkdtemp(prefix="livestage-bench-logs-"))
    baseline = args.baseline.resolve() if args.baseline else None
    if baseline is not None and not (baseline / "src" / "livestage").is_dir():
        sys.exit(f"--baseline {baseline}: not a livestage checkout (no src/livestage)")
    args.out.mkdir(parents=True, exist_ok=True)
    by_db = {
        kind: run_variant(
            kind, profile, args.only, logs, baseline, args.out / f"partial-{kind}.json"
        )
        for kind in kinds
    }
    result = report.flatten(by_db, primary=kinds[0])
    result.update(
        machine=machine(),
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        mode="quick" if args.quick else "full",
        repeats=profile.repeats,
        seconds_per_run=profile.seconds,
        databases=",".join(kinds),
        baseline=_revision(baseline) if baseline else "",
        bench_seconds=round(time.monotonic() - began, 1),
        **_versions(),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    (args.out / "latest.md").write_text(report.markdown(result, by_db, kinds))
    print(report.markdown(result, by_db, kinds))
    print(f"logs: {logs}")


if __name__ == "__main__":
    main()
