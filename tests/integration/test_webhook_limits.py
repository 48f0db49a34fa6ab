"""The webhook route refuses before it reads: the secret and the declared size are checked
before any body byte is pulled, a body is read only up to the limit, and only JSON events that
fit are accepted. SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from starlette.types import Message

from livestage.app import AppState
from livestage.models import ProviderEvent
from livestage.tracking.endpoints import MAX_WEBHOOK_BYTES
from livestage.tracking.verification import WEBHOOK_SECRET_HEADER

pytestmark = pytest.mark.asyncio
CHUNK = 64 * 1024
HUGE = 200 * 1024 * 1024


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"worker_enabled": False}


@dataclass
class Upload:
    """A request body handed to the app a chunk at a time; `pulled` counts what it read."""

    size: int
    pulled: int = 0
    sent: list[Message] = field(default_factory=list)

    async def receive(self) -> Message:
        if self.pulled >= self.size:
            return {"type": "http.disconnect"}
        part = min(CHUNK, self.size - self.pulled)
        self.pulled += part
        return {"type": "http.request", "body": b" " * part, "more_body": self.pulled < self.size}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        return int(start["status"])


async def _post_upload(app: FastAPI, upload: Upload, headers: dict[str, str]) -> Upload:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/webhooks/100ms",
        "raw_path": b"/webhooks/100ms",
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("203.0.113.7", 50000),
        "server": ("testserver", 443),
        "extensions": {},
    }
    await app(scope, upload.receive, upload.send)
    return upload


def _secret(ctx: AppState) -> dict[str, str]:
    assert ctx.ingestion.policy.secret is not None
    return {WEBHOOK_SECRET_HEADER: ctx.ingestion.policy.secret}


JSON = {"content-type": "application/json"}


async def _stored(ctx: AppState) -> int:
    async with ctx.database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(ProviderEvent)) or 0)


class TestRefusedBeforeReading:
    @pytest.mark.parametrize("declared", [True, False])
    async def test_no_secret_is_401_without_reading_the_body(
        self, app: FastAPI, declared: bool
    ) -> None:
        headers = {**JSON, **({"content-length": str(HUGE)} if declared else {})}
        upload = await _post_upload(app, Upload(HUGE), headers)
        assert upload.status == 401
        assert upload.pulled == 0

    async def test_declared_size_over_the_limit_is_413_at_once(
        self, app: FastAPI, ctx: AppState
    ) -> None:
        headers = {**JSON, **_secret(ctx), "content-length": str(HUGE)}
        upload = await _post_upload(app, Upload(HUGE), headers)
        assert upload.status == 413
        assert upload.pulled == 0

    @pytest.mark.parametrize("declared", [None, "100"])
    async def test_undeclared_or_understated_size_stops_at_the_limit(
        self, app: FastAPI, ctx: AppState, declared: str | None
    ) -> None:
        headers = {**JSON, **_secret(ctx), **({"content-length": declared} if declared else {})}
        upload = await _post_upload(app, Upload(HUGE), headers)
        assert upload.status == 413
        assert MAX_WEBHOOK_BYTES < upload.pulled <= MAX_WEBHOOK_BYTES + CHUNK
        assert await _stored(ctx) == 0


class TestOnlyJsonEvents:
    @pytest.mark.parametrize(
        "content_type", [None, "text/plain", "application/x-www-form-urlencoded"]
    )
    async def test_not_json_is_415(
        self, client: httpx.AsyncClient, ctx: AppState, content_type: str | None
    ) -> None:
        body = b'{"id": "e1", "type": "session.open.success", "data": {}}'
        headers = {**_secret(ctx), **({"content-type": content_type} if content_type else {})}
        response = await client.post("/webhooks/100ms", content=body, headers=headers)
        assert response.status_code == 415
        assert await _stored(ctx) == 0

    async def test_json_with_a_charset_is_accepted(
        self, client: httpx.AsyncClient, ctx: AppState
    ) -> None:
        body = b'{"id": "e1", "type": "session.open.success", "data": {}}'
        headers = {**_secret(ctx), "content-type": "Application/JSON; charset=utf-8"}
        response = await client.post("/webhooks/100ms", content=body, headers=headers)
        assert response.status_code == 200, response.text

    @pytest.mark.parametrize(
        "body",
        [
            b"[" * 100_000 + b"]" * 100_000,
            b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
            b'{"id": "e1", "type": "session.open.success", "data": {"x": '
            + b"[" * 200
            + b"]" * 200
            + b"}}",
        ],
        ids=["arrays", "objects", "deep-data"],
    )
    async def test_deeply_nested_json_is_400(
        self, client: httpx.AsyncClient, ctx: AppState, body: bytes
    ) -> None:
        headers = {**_secret(ctx), **JSON}
        response = await client.post("/webhooks/100ms", content=body, headers=headers)
        assert response.status_code == 400, response.text
        assert response.json()["detail"].startswith("not a 100ms webhook event: ")
        assert "nested" in response.json()["detail"]
        assert await _stored(ctx) == 0

    @pytest.mark.parametrize("number", [b"NaN", b"-Infinity", b"1e999"])
    async def test_numbers_no_json_column_can_hold_are_400(
        self, client: httpx.AsyncClient, ctx: AppState, number: bytes
    ) -> None:
        body = b'{"id": "e1", "type": "session.open.success", "data": {"v": ' + number + b"}}"
        headers = {**_secret(ctx), **JSON}
        response = await client.post("/webhooks/100ms", content=body, headers=headers)
        assert response.status_code == 400, response.text
        assert "finite" in response.json()["detail"]
        assert await _stored(ctx) == 0
