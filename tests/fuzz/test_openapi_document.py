"""What the OpenAPI document says about answers the fuzz run found undocumented (issue 12)."""

from __future__ import annotations

from typing import Any

import pytest

from livestage.app import create_app
from tests.support.fixtures import make_settings

ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    database = tmp_path_factory.mktemp("document") / "unused.db"
    return create_app(make_settings(f"sqlite+aiosqlite:///{database}")).openapi()


def test_every_error_is_documented_as_the_json_error_body(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            errors = {k: v for k, v in operation["responses"].items() if k[0] in "45"}
            assert set(errors) == {"4XX", "5XX"}, (method, path)
            for response in errors.values():
                assert response["content"] == ERROR_BODY, (method, path)


def test_the_event_stream_is_documented_as_one(document: dict[str, Any]) -> None:
    responses = document["paths"]["/api/live/{handle}/events"]["get"]["responses"]
    content = responses["200"]["content"]
    assert list(content) == ["text/event-stream"]
    assert content["text/event-stream"]["schema"]["properties"]["event"]["enum"] == ["stream"]
    assert responses["4XX"]["content"] == ERROR_BODY


@pytest.mark.parametrize("path", ["/api/streams", "/api/streams/room-code"])
def test_going_live_when_already_live_is_documented(document: dict[str, Any], path: str) -> None:
    responses = document["paths"][path]["post"]["responses"]
    go_live = {"$ref": "#/components/schemas/GoLiveResponse"}
    for status in ("200", "201"):
        assert responses[status]["content"]["application/json"]["schema"] == go_live


def test_the_webhook_body_is_documented(document: dict[str, Any]) -> None:
    body = document["paths"]["/webhooks/100ms"]["post"]["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {"type": "object"}
