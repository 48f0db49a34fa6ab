"""The 100ms emulator as a real uvicorn server on loopback, plus a webhook receiver.

Fixtures:
- `emulator`: a handle on a session-wide emulator, reset before the test.
- `start_emulator`: `start_emulator(**EmulatorConfig overrides) -> EmulatorHandle`, a dedicated
  server for tests that need their own clock, secret, webhook delays or HIPAA signing.
- `webhook_receiver`: a tiny HTTP server that records POSTs and answers a chosen status.

`handle.control` drives `/_emulator` (peers, scripts, ground truth, chaos, faults, logs) and the
analytics webhook history / replay API under `/v2` (with a fresh management token per call).

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
import uvicorn

from hms_emulator import EmulatorConfig, create_emulator_app
from tests.support.network_guard import is_loopback

FAST_RETRY_DELAYS = (0.05, 0.1, 0.2)
# Default window of the history / replay helpers: every event a test can have produced.
ALL_TIME = ("2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z")


def rfc3339(value: datetime) -> str:
    """A datetime as the emulator takes it in scripts and history filters (microseconds, `Z`)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def join_op(
    user_id: str, at: datetime, *, role: str = "viewer", peer_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A script `join` op; pass `peer_id` (a UUID) to leave it later in the same script."""
    op = {"op": "join", "user_id": user_id, "role": role, "at": rfc3339(at), **extra}
    if peer_id is not None:
        op["peer_id"] = peer_id
    return op


def leave_op(peer_id: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {"op": "leave", "peer_id": peer_id, "at": rfc3339(at), **extra}


def _time_param(value: datetime | str) -> str:
    return rfc3339(value) if isinstance(value, datetime) else value


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
    """Synchronous helpers over `/_emulator` (simulated peers, faults, logs) and, given the
    emulator's config, the `/v2/analytics/webhooks` history and replay API."""

    def __init__(self, base_url: str, config: EmulatorConfig | None = None) -> None:
        self.http = httpx.Client(base_url=f"{base_url}/_emulator", timeout=10)
        self.api = httpx.Client(base_url=f"{base_url}/v2", timeout=10)
        self._config = config

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

    # Scripted sessions and their ground truth.

    def script(
        self, room_id: str, events: Sequence[Mapping[str, Any]], *, expect: int = 201
    ) -> dict[str, Any]:
        """Apply join/leave ops (see `join_op`, `leave_op`) in order; returns `{"room_id",
        "peer_ids" (one per join, in order), "session_ids", "events_emitted"}`."""
        body = {"events": [dict(e) for e in events]}
        result: dict[str, Any] = self._call("POST", f"/rooms/{room_id}/script", expect, json=body)
        return result

    def ground_truths(self, room_id: str) -> list[dict[str, Any]]:
        """Ground truth of every session of the room, oldest first."""
        return list(self._call("GET", f"/rooms/{room_id}/ground-truth")["data"])

    def ground_truth(self, room_id: str, session_id: str | None = None) -> dict[str, Any]:
        """One session's ground truth; without `session_id` the room must have exactly one."""
        params = {"session_id": session_id} if session_id else {}
        data = self._call("GET", f"/rooms/{room_id}/ground-truth", params=params)["data"]
        assert len(data) == 1, f"room {room_id} has {len(data)} sessions; pass session_id"
        result: dict[str, Any] = data[0]
        return result

    # Webhook delivery: chaos mode and progress.

    def set_chaos(
        self,
        *,
        duplicates_min: int = 1,
        duplicates_max: int = 3,
        max_delay_seconds: float = 0.5,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Turn chaos delivery on; returns the settings (with the seed used)."""
        body = {
            "duplicates_min": duplicates_min,
            "duplicates_max": duplicates_max,
            "max_delay_seconds": max_delay_seconds,
            "seed": seed,
        }
        result: dict[str, Any] = self._call("POST", "/webhook-chaos", json=body)["chaos"]
        return result

    def clear_chaos(self) -> None:
        self._call("DELETE", "/webhook-chaos")

    def chaos(self) -> dict[str, Any]:
        """`{"chaos": settings | None, "plan": [{"event_id", "type", "replay", "delays"}]}`."""
        result: dict[str, Any] = self._call("GET", "/webhook-chaos")
        return result

    def webhook_summary(self) -> dict[str, Any]:
        """`{"events", "success", "failed", "pending", "deliveries_in_flight"}`."""
        result: dict[str, Any] = self._call("GET", "/webhooks/summary")
        return result

    def wait_for_deliveries(self, *, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until no delivery (copy, retry or replay) is under way; returns the summary."""
        result: dict[str, Any] = wait_until(self._settled, timeout=timeout)
        return result

    def _settled(self) -> dict[str, Any] | None:
        summary = self.webhook_summary()
        return summary if summary["deliveries_in_flight"] == 0 else None

    # The 100ms analytics webhook history / replay API.

    def webhook_history(
        self,
        *,
        start_time: datetime | str = ALL_TIME[0],
        end_time: datetime | str = ALL_TIME[1],
        expect: int = 200,
        **filters: Any,
    ) -> dict[str, Any]:
        """One page of `GET /v2/analytics/webhooks`. Filters: room_id, status, event_names
        (a list or a comma string), limit, page."""
        if isinstance(names := filters.get("event_names"), list | tuple):
            filters["event_names"] = ",".join(names)
        params = {
            "start_time": _time_param(start_time),
            "end_time": _time_param(end_time),
            **{k: v for k, v in filters.items() if v is not None},
        }
        result: dict[str, Any] = self._api("GET", "/analytics/webhooks", expect, params=params)
        return result

    def webhook_history_all(self, **filters: Any) -> list[dict[str, Any]]:
        """Every row of the history (walking the pages) for the `webhook_history` filters."""
        rows: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = self.webhook_history(**filters, limit=100, page=page)
            rows.extend(answer["data"])
            if page >= answer["pagination"]["total_pages"]:
                return rows
            page += 1

    def replay_webhooks(
        self,
        *,
        start_time: datetime | str = ALL_TIME[0],
        end_time: datetime | str = ALL_TIME[1],
        expect: int = 200,
        **filters: Any,
    ) -> dict[str, Any]:
        """`POST /v2/analytics/webhooks/replay`. Filters: room_id, event_names (list), status
        (default "failed"), limit, offset. Returns `{"workflow_id", "status", "message",
        "filters"}`."""
        body = {
            "start_time": _time_param(start_time),
            "end_time": _time_param(end_time),
            **{k: v for k, v in filters.items() if v is not None},
        }
        path = "/analytics/webhooks/replay"
        result: dict[str, Any] = self._api("POST", path, expect, json=body)
        return result

    def replay_status(self, workflow_id: str, *, expect: int = 200) -> dict[str, Any]:
        path = f"/analytics/webhooks/replay/{workflow_id}"
        result: dict[str, Any] = self._api("GET", path, expect)
        return result

    def wait_for_replay(self, workflow_id: str, *, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until the replay has re-sent everything and its deliveries settled."""

        def completed() -> dict[str, Any] | None:
            status = self.replay_status(workflow_id)
            return status if status["status"] == "completed" else None

        result: dict[str, Any] = wait_until(completed, timeout=timeout)
        return result

    def _api(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        assert self._config is not None, "the history API needs the emulator's credentials"
        token = mint_management_token(self._config.access_key, self._config.app_secret)
        headers = {"Authorization": f"Bearer {token}"}
        response = self.api.request(method, path, headers=headers, **kwargs)
        assert response.status_code == expect, response.text
        return response.json()

    def close(self) -> None:
        self.http.close()
        self.api.close()


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

    def app_settings(self) -> dict[str, Any]:
        """The settings that point livestage's 100ms client at this emulator."""
        return {
            "hms_access_key": self.access_key,
            "hms_app_secret": self.app_secret,
            "hms_api_url": self.api_url,
            "hms_auth_url": self.auth_url,
        }

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
        control = EmulatorControl(self.base_url, self.config)
        return EmulatorHandle(self.base_url, self.config, control)


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
        "replay_events_per_second": None,
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


@contextmanager
def serve_webhook_receiver(port: int = 0) -> Iterator[WebhookReceiver]:
    """A receiver on 127.0.0.1:`port` (0: any free port) for as long as the block runs; a
    fixed port lets a test bring a receiver back where deliveries used to fail."""
    receiver = WebhookReceiver(url="")
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/100ms"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def unused_port() -> int:
    """A loopback port nothing listens on (yet): connections to it are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    with serve_webhook_receiver() as receiver:
        yield receiver
