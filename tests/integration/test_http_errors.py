"""What fuzzing the OpenAPI document found: bad input never makes a 500, 405s name the allowed
methods, and the document describes the error bodies the app really sends."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.asyncio
TOO_BIG = str(2**63)


async def _openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    document: dict[str, Any] = (await client.get("/openapi.json")).json()
    return document


class TestBounds:
    @pytest.mark.parametrize(
        "url",
        [
            f"/api/admin/streams?offset={TOO_BIG}",
            f"/api/admin/streams?limit={TOO_BIG}",
            f"/api/admin/audit?offset={TOO_BIG}",
            f"/api/admin/audit?offset=-{TOO_BIG}",
        ],
    )
    async def test_huge_numbers_in_the_api_are_422(
        self, admin_client: httpx.AsyncClient, url: str
    ) -> None:
        response = await admin_client.get(url)
        assert response.status_code == 422, response.text
        assert "Input should be" in response.json()["detail"]

    @pytest.mark.parametrize(
        "url", [f"/admin/streams?cursor={TOO_BIG}", f"/admin/audit?cursor={TOO_BIG}"]
    )
    async def test_bad_page_cursors_are_400(
        self, admin_client: httpx.AsyncClient, url: str
    ) -> None:
        assert (await admin_client.get(url)).status_code == 400

    async def test_every_integer_query_parameter_has_a_maximum(
        self, client: httpx.AsyncClient
    ) -> None:
        unbounded = [
            f"{method.upper()} {path} {parameter['name']}"
            for path, operations in (await _openapi(client))["paths"].items()
            for method, operation in operations.items()
            for parameter in operation.get("parameters", [])
            if parameter["schema"].get("type") == "integer" and "maximum" not in parameter["schema"]
        ]
        assert unbounded == []


class TestMethodNotAllowed:
    async def test_every_405_names_the_allowed_methods(self, client: httpx.AsyncClient) -> None:
        paths = (await _openapi(client))["paths"]
        checked = 0
        for path, operations in paths.items():
            url = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)
            response = await client.request("PATCH", url)
            if "patch" in operations:
                continue
            assert response.status_code == 405, (path, response.status_code)
            allowed = {m.strip() for m in response.headers.get("allow", "").split(",")}
            assert {m.upper() for m in operations} <= allowed, (path, allowed)
            checked += 1
        assert checked > 10

    async def test_a_page_405_names_them_too(self, client: httpx.AsyncClient) -> None:
        response = await client.delete("/login")
        assert response.status_code == 405
        assert "GET" in response.headers["allow"]


class TestDocumentedErrorBodies:
    async def test_the_document_describes_the_error_body_the_app_sends(
        self, client: httpx.AsyncClient
    ) -> None:
        document = await _openapi(client)
        schemas = document["components"]["schemas"]
        assert "HTTPValidationError" not in schemas
        assert schemas["ErrorBody"]["properties"]["detail"]["type"] == "string"
        missing = [
            f"{method.upper()} {path}"
            for path, operations in document["paths"].items()
            for method, operation in operations.items()
            if operation["responses"].get("4XX", {}).get("content", {}).get("application/json", {})
            != {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
        ]
        assert missing == []

    async def test_a_real_422_matches_the_documented_body(
        self, admin_client: httpx.AsyncClient
    ) -> None:
        from livestage.web.errors import ErrorBody

        response = await admin_client.get("/api/admin/streams?limit=0")
        assert response.status_code == 422
        body = ErrorBody.model_validate(response.json())
        assert body.errors and body.errors[0].startswith("limit:")
