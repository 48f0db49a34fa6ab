"""A throwaway Redis server on loopback, started by the test session itself."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.postgres import free_port


@dataclass
class RedisServer:
    directory: Path
    port: int
    process: subprocess.Popen[bytes]

    def url(self, database: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"

    def flush(self, database: int) -> None:
        command = ["redis-cli", "-p", str(self.port), "-n", str(database), "flushdb"]
        subprocess.run(command, capture_output=True, check=True)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_redis() -> RedisServer:
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise RuntimeError("redis-server is not installed (apt install redis-server)")
    directory = Path(tempfile.mkdtemp(prefix="livestage-redis-"))
    port = free_port()
    command = [
        redis_server,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(directory),
        "--databases", "64",
    ]  # fmt: skip
    with (directory / "redis.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        ping = subprocess.run(
            ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, check=False
        )
        if ping.stdout.strip() == "PONG":
            return RedisServer(directory, port, process)
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(
                f"redis-server did not start: {(directory / 'redis.log').read_text()}"
            )
        time.sleep(0.05)
