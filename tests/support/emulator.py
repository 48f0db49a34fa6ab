"""The 100ms emulator as a real uvicorn server on loopback, plus a webhook receiver.

Fixtures:
- `emulator`: a handle on a session-wide emulator, reset before the test.
- `start_emulator`: `start_emulator(**EmulatorConfig overrides) -> EmulatorHandle`, a dedicated
  server for tests that need their own clock, secret, webhook delays or HIPAA signing.
- `webhook_receiver`: a tiny HTTP server that records POSTs and answers a chosen status.

Credentials are generated per run; nothing here is a real 100ms key.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
import uvicorn

from livestage.providers.emulator import EmulatorConfig, create_emulator_app
from tests.support.network_guard import is_loopback

FAST_RETRY_DELAYS = (0.05, 0.1, 0.2)


def mint_management_token(
    access_key: str,
    app_secret: str,
    *,
    now: datetime | None = None,
    ttl: float = 600,
    **overrides: Any,
) -> str:
    """A management token like 100ms's samples mint; `None` overrides drop a claim."""
    issued = int((now or datetime.now(UTC)).timestamp())
    claims: dict[str, Any] = {
        "access_key": access_key,
        "type": "management",
        "version": 2,
        "jti": str(uuid.uuid4()),
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(ttl),
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, app_secret, algorithm="HS256")


@dataclass
class RecordingSleep:
    """A `sleep` for clients under test: records the back-off instead of waiting it out."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def wait_until(check: Callable[[], Any], *, timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll until `check()` is truthy and return it; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


class EmulatorControl:
    """Synchronous helpers over `/_emulator` (simulated peers, faults, logs)."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=f"{base_url}/_emulator", timeout=10)

    def _call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        assert response.status_code == expect, response.text
        return response.json()

    def join_peer(self, room_id: str, *, expect: int = 201, **fields: Any) -> dict[str, Any]:
        """Fields: user_id, role, name, metadata, token."""
        body = {k: v for k, v in fields.items() if v is not None}
        result: dict[str, Any] = self._call("POST", f"/rooms/{room_id}/peers", expect, json=body)
        return result

    def leave_peer(
        self, room_id: str, peer_id: str, *, reason: str = "client request"
    ) -> dict[str, Any]:
        path = f"/rooms/{room_id}/peers/{peer_id}"
        result: dict[str, Any] = self._call("DELETE", path, params={"reason": reason})
        return result

    def queue_fault(self, path_prefix: str = "/v2", **spec: Any) -> dict[str, Any]:
        """Spec: kind (status|latency|timeout), status, retry_after, seconds, method, count."""
        body = {"path_prefix": path_prefix, **{k: v for k, v in spec.items() if v is not None}}
        result: dict[str, Any] = self._call("POST", "/faults", 201, json=body)
        return result

    def faults(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/faults")["data"])

    def webhooks(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/webhooks")["data"])

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        events = list(self._call("GET", "/events")["data"])
        return [e for e in events if event_type is None or e["type"] == event_type]

    def requests(self, *, path_prefix: str = "", method: str | None = None) -> list[dict[str, Any]]:
        records = self._call("GET", "/requests")["data"]
        return [
            r
            for r in records
            if r["path"].startswith(path_prefix) and (method is None or r["method"] == method)
        ]

    def set_workspace_webhook(
        self, url: str | None, headers: Mapping[str, str] | None = None
    ) -> None:
        self._call("POST", "/workspace-webhook", json={"url": url, "headers": dict(headers or {})})

    def info(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/info")
        return result

    def reset(self) -> None:
        self._call("POST", "/reset")

    def close(self) -> None:
        self.http.close()


@dataclass
class EmulatorHandle:
    base_url: str
    config: EmulatorConfig
    control: EmulatorControl

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v2"

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}/auth/v2"

    @property
    def access_key(self) -> str:
        return self.config.access_key

    @property
    def app_secret(self) -> str:
        return self.config.app_secret

    def management_token(self, **kwargs: Any) -> str:
        return mint_management_token(self.access_key, self.app_secret, **kwargs)

    def api(self, **token_kwargs: Any) -> httpx.Client:
        """A plain client for `/v2` carrying a fresh management token (close it, or use `with`)."""
        headers = {"Authorization": f"Bearer {self.management_token(**token_kwargs)}"}
        return httpx.Client(base_url=self.api_url, headers=headers, timeout=10)


class EmulatorServer:
    """uvicorn in a daemon thread on a socket bound to 127.0.0.1 with a kernel-chosen port."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        # An explicit IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted connections; without
        # it every response stalls ~40 ms on Nagle + delayed ACK.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        uv_config = uvicorn.Config(
            create_emulator_app(config),
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(uv_config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        wait_until(lambda: self._server.started or not self._thread.is_alive(), timeout=10)
        if not self._server.started:
            raise RuntimeError("the emulator did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def handle(self) -> EmulatorHandle:
        return EmulatorHandle(self.base_url, self.config, EmulatorControl(self.base_url))


class LoopbackOnlyWebhooks(httpx.AsyncBaseTransport):
    """Webhook transport of test emulators. 100ms would reach a room's public webhook URL (say
    `https://streams.example.test/...`); a test must not, so such a delivery fails like an
    unreachable host without touching the network, and shows up in `control.webhooks()`."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not is_loopback(request.url.host):
            message = f"the test emulator does not deliver to {request.url.host}"
            raise httpx.ConnectError(message, request=request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def emulator_config(**overrides: Any) -> EmulatorConfig:
    values: dict[str, Any] = {
        "access_key": f"emu-{secrets.token_hex(8)}",
        "app_secret": secrets.token_hex(32),
        "webhook_transport": LoopbackOnlyWebhooks(),
        "webhook_retry_delays": FAST_RETRY_DELAYS,
        "hls_transition_seconds": 0.05,
        "timeout_fault_seconds": 5.0,
    }
    return EmulatorConfig(**{**values, **overrides})


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    server = EmulatorServer(emulator_config())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> Iterator[EmulatorHandle]:
    handle = emulator_server.handle()
    handle.control.reset()
    yield handle
    # Also stops this test's pending webhook retries before the next test starts.
    handle.control.reset()
    handle.control.close()


StartEmulator = Callable[..., EmulatorHandle]


@pytest.fixture
def start_emulator() -> Iterator[StartEmulator]:
    started: list[tuple[EmulatorServer, EmulatorHandle]] = []

    def start(**overrides: Any) -> EmulatorHandle:
        server = EmulatorServer(emulator_config(**overrides))
        server.start()
        handle = server.handle()
        started.append((server, handle))
        return handle

    yield start
    for server, handle in started:
        handle.control.close()
        server.stop()


@dataclass(frozen=True)
class ReceivedWebhook:
    path: str
    headers: dict[str, str]  # lower-cased names
    raw_headers: list[tuple[str, str]]  # names as sent
    body: bytes
    received_at: float  # time.monotonic()

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """Answers each POST with the next queued status (`respond_with`), then `default_status`."""

    url: str
    default_status: int = 200
    received: list[ReceivedWebhook] = field(default_factory=list)
    _statuses: deque[int] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def respond_with(self, *statuses: int) -> None:
        with self._lock:
            self._statuses.extend(statuses)

    def next_status(self) -> int:
        with self._lock:
            return self._statuses.popleft() if self._statuses else self.default_status

    def record(self, webhook: ReceivedWebhook) -> None:
        with self._lock:
            self.received.append(webhook)

    def wait_for(self, count: int, *, timeout: float = 5.0) -> list[ReceivedWebhook]:
        wait_until(lambda: len(self.received) >= count, timeout=timeout)
        with self._lock:
            return list(self.received)


def _handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            raw = list(self.headers.items())
            headers = {k.lower(): v for k, v in raw}
            receiver.record(ReceivedWebhook(self.path, headers, raw, body, time.monotonic()))
            self.send_response(receiver.next_status())
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/100ms"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
