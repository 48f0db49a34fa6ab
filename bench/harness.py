"""Processes the bench runs: livestage itself, PostgreSQL, the 100ms emulator, the Node peer, wrk.

The server side (livestage, PostgreSQL, the emulator, the Node peer) is pinned to one core and
every load generator to the other, so they never steal each other's CPU.
"""

from __future__ import annotations

import glob
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from livestage import migrate

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SERVER_CORE = 0
LOAD_CORE = 1
FD_LIMIT = 20_000


def pin_to(core: int) -> list[str]:
    """Prefix for a command that must run on `core` only (when the machine has two cores)."""
    if os.cpu_count() and os.cpu_count() >= 2 and shutil.which("taskset"):  # type: ignore[operator]
        return ["taskset", "-c", str(core)]
    return []


def pin_self_to_load_core() -> None:
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {LOAD_CORE})


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(FD_LIMIT, hard)), hard))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up") from None
            time.sleep(0.05)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Process:
    """A child process the bench started; stopped by its own pid only."""

    popen: subprocess.Popen[bytes]
    base_url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def spawn(
    command: Sequence[str], *, env: dict[str, str], port: int, log: Path, ready: str = "/healthz"
) -> Process:
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [*pin_to(SERVER_CORE), *command],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            preexec_fn=raise_fd_limit,
        )
    process = Process(popen, f"http://127.0.0.1:{port}", log)
    try:
        wait_http(process.base_url + ready)
    except RuntimeError:
        process.stop()
        raise RuntimeError(f"{command[0]} did not start:\n{log.read_text()[-2000:]}") from None
    return process


@dataclass
class Database:
    kind: str  # "sqlite" or "postgresql"
    url: str
    folder: Path
    _pg_data: Path | None = None

    def drop(self) -> None:
        if self._pg_data is not None:
            _run_pg(["pg_ctl", "-D", str(self._pg_data), "-m", "fast", "stop"], check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise RuntimeError(f"PostgreSQL's {name} is not installed")
    return found[-1]


def _run_pg(command: list[str], *, check: bool = True) -> None:
    # PostgreSQL refuses to run as root.
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    command = [_pg_bin(command[0]), *command[1:]]
    subprocess.run([*pin_to(SERVER_CORE), *prefix, *command], check=check, capture_output=True)


def create_database(kind: str) -> Database:
    """A fresh, migrated database: a SQLite file, or a PostgreSQL 15 server of its own
    (default durability: fsync on, as in production)."""
    folder = Path(tempfile.mkdtemp(prefix=f"livestage-bench-{kind}-"))
    if kind == "sqlite":
        database = Database(kind, f"sqlite+aiosqlite:///{folder / 'bench.db'}", folder)
    else:
        os.chmod(folder, 0o777)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
        data, port = folder / "data", free_port()
        _run_pg(["initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200"
        _run_pg(
            ["pg_ctl", "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"]
        )
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
        database = Database(kind, url, folder, data)
    migrate.upgrade(database.url)
    return database


def another_database(database: Database, name: str) -> str:
    """The URL of an empty database `name` beside `database`: a file in its folder, or a
    database on its PostgreSQL server (dropped with it)."""
    if database.kind == "sqlite":
        return f"sqlite+aiosqlite:///{database.folder / name}.db"
    server = database.url.rsplit("/", 1)[0]
    command = [_pg_bin("psql"), "-h", "127.0.0.1", "-p", server.rsplit(":", 1)[1]]
    subprocess.run([*command, "-U", "postgres", "-c", f"CREATE DATABASE {name}"], check=True)
    return f"{server}/{name}"


@dataclass
class ServerConfig:
    database: Database
    secret_key: str
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "LIVESTAGE_ENV": "production",
            "LIVESTAGE_DATABASE_URL": self.database.url,
            "LIVESTAGE_SECRET_KEY": self.secret_key,
            "LIVESTAGE_LOG_LEVEL": "WARNING",
            "LIVESTAGE_COOKIE_SECURE": "false",
            "LIVESTAGE_RECONCILE_INTERVAL_SECONDS": "0",
            **self.extra_env,
        }


@contextmanager
def livestage_server(config: ServerConfig, log: Path) -> Iterator[Process]:
    """`livestage serve`, exactly as a user starts it: one uvicorn worker."""
    port = free_port()
    command = [str(VENV_BIN / "livestage"), "serve", "--port", str(port)]
    process = spawn(command, env=config.env(), port=port, log=log)
    try:
        yield process
    finally:
        process.stop()


@contextmanager
def emulator(access_key: str, app_secret: str, log: Path) -> Iterator[Process]:
    port = free_port()
    env = {
        **os.environ,
        "LIVESTAGE_HMS_ACCESS_KEY": access_key,
        "LIVESTAGE_HMS_APP_SECRET": app_secret,
    }
    command = [str(VENV_BIN / "livestage"), "emulator", "--port", str(port)]
    process = spawn(command, env=env, port=port, log=log, ready="/_emulator/info")
    try:
        yield process
    finally:
        process.stop()


@contextmanager
def node_token_server(access_key: str, app_secret: str, log: Path) -> Iterator[Process]:
    peers = ROOT / "bench" / "peers"
    if not (peers / "node_modules" / "jsonwebtoken").exists():
        subprocess.run(
            ["npm", "install", "--no-package-lock", "--no-audit", "--no-fund"],
            cwd=peers,
            check=True,
            capture_output=True,
        )
    port = free_port()
    env = {**os.environ, "HMS_ACCESS_KEY": access_key, "HMS_APP_SECRET": app_secret}
    command = ["node", str(peers / "token_server.js"), str(port)]
    process = spawn(command, env=env, port=port, log=log)
    try:
        yield process
    finally:
        process.stop()


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


WRK_REPORT = """
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'WRK_JSON {"requests": %d, "seconds": %f, "errors": %d, "p50": %f, "p99": %f}\\n',
    summary.requests, summary.duration / 1e6, errors,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
"""


def wrk(url: str, *, seconds: float, connections: int, script: str) -> WrkResult:
    """Closed-loop load from Debian's wrk, pinned to the load core; `script` is Lua."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script + WRK_REPORT)
    try:
        output = subprocess.run(
            [
                *pin_to(LOAD_CORE),
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                file.name,
                url,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        os.unlink(file.name)
    line = next(x for x in output.splitlines() if x.startswith("WRK_JSON "))
    data = json.loads(line.removeprefix("WRK_JSON "))
    return WrkResult(
        rps=data["requests"] / data["seconds"],
        p50_ms=data["p50"],
        p99_ms=data["p99"],
        requests=data["requests"],
        errors=data["errors"],
    )


@contextmanager
def redis_server(log: Path) -> Iterator[str]:
    """A redis-server of its own on loopback (no persistence), on the servers' core; its URL."""
    port = free_port()
    command = [
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", str(log.parent),
    ]  # fmt: skip
    with log.open("wb") as out:
        popen = subprocess.Popen([*pin_to(SERVER_CORE), *command], stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 10
        while True:
            ping = subprocess.run(
                ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True
            )
            if ping.stdout.strip() == "PONG":
                break
            if popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        popen.terminate()
        popen.wait(timeout=10)
