"""The real app served by uvicorn on 127.0.0.1, for tests that drive a browser against it.

Each server gets a fresh SQLite database built by Alembic in a temporary directory and a throwaway
secret key. uvicorn runs on an event loop of its own, in a daemon thread: objects bound to that
loop (the engine, aiosqlite connections) are used from tests through `run()` / `arun()`.

Fixtures:
- `live_server`: a server configured by `live_server_settings` (a dict of `Settings` overrides)
  and `live_server_provider`; override either fixture in a test module to configure it.
- `live_server_factory`: `live_server_factory({settings overrides}, provider=..., clock=...)`
  returns a started `LiveServer`, for a test that needs its own configuration or several servers.
  (The overrides are a mapping, not keywords, because `provider` is also a `Settings` field.)
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Coroutine, Iterator, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn
from fastapi import FastAPI

from livestage import migrate
from livestage.app import AppState, create_app
from livestage.config import Settings
from livestage.kit.time import Clock, utc_now
from livestage.providers.base import StreamingProvider
from tests.support.fixtures import make_settings

T = TypeVar("T")

START_TIMEOUT = 15.0


class LiveServerError(RuntimeError):
    pass


class LiveServer:
    """`create_app(settings)` behind uvicorn on a socket bound to 127.0.0.1, kernel-chosen port."""

    def __init__(
        self,
        settings: Settings,
        *,
        sock: socket.socket,
        clock: Clock = utc_now,
        provider: StreamingProvider | None = None,
    ) -> None:
        self.settings = settings
        self.app: FastAPI = create_app(settings, clock=clock, provider=provider)
        self._socket = sock
        self.port: int = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="live-server", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return f"{self.base_url}{path}"

    @property
    def ctx(self) -> AppState:
        """What the lifespan built: settings, database, box, provider, clock, ..."""
        return AppState.of(self.app)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise LiveServerError("the live server is not running")
        return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], *, timeout: float = 30.0) -> T:
        """Run `coro` on the server's loop and wait for its result (from synchronous code)."""
        return self.submit(coro).result(timeout)

    async def arun(self, coro: Coroutine[Any, Any, T], *, timeout: float = 30.0) -> T:
        """Run `coro` on the server's loop, awaiting it from another event loop."""
        return await asyncio.wait_for(asyncio.wrap_future(self.submit(coro)), timeout)

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                self.stop()
                raise LiveServerError(f"the live server did not start within {START_TIMEOUT} s")
            time.sleep(0.01)
        if not self._server.started:
            self._socket.close()
            raise LiveServerError(
                "the live server did not start (the app's lifespan failed; see the log above)"
            ) from self._failure
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
        if self._thread.is_alive():
            raise LiveServerError(
                "the live server did not stop within 10 s; where it was:\n" + self._where()
            )
        if self._failure is not None and not isinstance(self._failure, SystemExit):
            raise LiveServerError("the live server crashed") from self._failure

    def _where(self) -> str:
        """The server thread's stack and its loop's pending tasks, to tell what hangs."""
        frame = sys._current_frames().get(self._thread.ident or -1)
        lines = traceback.format_stack(frame) if frame is not None else []
        loop = self._loop
        if loop is not None:
            for task in asyncio.all_tasks(loop):
                lines.append(f"task {task.get_name()}:\n")
                lines.extend(_awaiting(task.get_coro()))
        return "".join(lines)

    def _serve(self) -> None:
        try:
            with asyncio.Runner() as runner:
                self._loop = runner.get_loop()
                runner.run(self._server.serve(sockets=[self._socket]))
        except BaseException as exc:  # uvicorn exits a failed start with SystemExit
            self._failure = exc
        finally:
            self._loop = None


def _awaiting(coro: Any) -> list[str]:
    """The chain of awaits a suspended coroutine is in, outermost first."""
    lines = []
    while coro is not None:
        frame = next(
            (f for a in ("cr_frame", "gi_frame", "ag_frame") if (f := getattr(coro, a, None))),
            None,
        )
        if frame is not None:
            lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}\n")
        coro = next(
            (c for a in ("cr_await", "gi_yieldfrom", "ag_await") if (c := getattr(coro, a, None))),
            None,
        )
    return lines


def bind_loopback() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without, a response written in two parts waits on the
    # client's delayed ACK (about 40 ms a request on loopback).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def fresh_sqlite_url(directory: Path) -> str:
    url = f"sqlite+aiosqlite:///{directory / 'livestage.db'}"
    migrate.upgrade(url)
    return url


LiveServerFactory = Callable[..., LiveServer]


@pytest.fixture
def live_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServerFactory]:
    servers: list[LiveServer] = []

    def start(
        settings: Mapping[str, Any] | None = None,
        *,
        provider: StreamingProvider | None = None,
        clock: Clock = utc_now,
    ) -> LiveServer:
        sock = bind_loopback()
        try:
            url = fresh_sqlite_url(tmp_path_factory.mktemp("live-server"))
            base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            configured = make_settings(url, **{"public_url": base_url, **(settings or {})})
            server = LiveServer(configured, sock=sock, clock=clock, provider=provider)
        except BaseException:
            sock.close()
            raise
        servers.append(server.start())
        return server

    yield start
    for server in reversed(servers):
        server.stop()


@pytest.fixture
def live_server_settings() -> dict[str, Any]:
    """`Settings` overrides for `live_server`: override in a test module to configure the app."""
    return {}


@pytest.fixture
def live_server_provider() -> StreamingProvider | None:
    """The provider `live_server` uses; None means whatever the settings build."""
    return None


@pytest.fixture
def live_server(
    live_server_factory: LiveServerFactory,
    live_server_settings: dict[str, Any],
    live_server_provider: StreamingProvider | None,
) -> LiveServer:
    return live_server_factory(live_server_settings, provider=live_server_provider)
