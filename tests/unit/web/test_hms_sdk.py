"""The 100ms browser SDK livestage serves from its own origin (`make deps` bundles the version
pinned in vendor/package.json into web/static/vendor/), and what a start says without it."""

from __future__ import annotations

import json
import logging
import re
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from livestage.app import STATIC_DIR, create_app
from livestage.config import Settings
from livestage.web.hms_sdk import missing_local_sdk, warn_if_sdk_missing

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = "@100mslive/hms-video-store"
# The SDK carries its own package.json in its build: `{version:"0.12.38",license:"MIT",…}`.
EMBEDDED_VERSION = re.compile(rb'\{version:"([0-9][^"]*)",license:"MIT"')
# A bare specifier (`from "immer"`, `import("uuid")`) a browser cannot resolve.
BARE_IMPORT = re.compile(rb'(?:\bfrom|\bimport)\s*\(?\s*"(?![./])[^"]+"')


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, secret_key=secrets.token_urlsafe(32), **values)


def pinned_version() -> str:
    manifest = json.loads((ROOT / "vendor" / "package.json").read_text(encoding="utf-8"))
    version: str = manifest["dependencies"][PACKAGE]
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", version), "pin an exact version"
    return version


@pytest.mark.asyncio
async def test_the_pages_sdk_is_served_by_livestage_at_the_pinned_version() -> None:
    app = create_app(settings(provider="hms"))
    url = Settings.model_fields["hms_sdk_url"].default
    assert url.startswith("/static/"), "the default SDK is livestage's own"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://livestage.test"
    ) as client:
        response = await client.get(url)
    assert response.status_code == 200, "run `make deps`: the SDK bundle is missing"
    assert "javascript" in response.headers["content-type"]
    found = EMBEDDED_VERSION.findall(response.content)
    assert found == [pinned_version().encode()], f"served {PACKAGE} {found}"
    # One module: every package it needs bundled in, so the page's import() resolves.
    assert BARE_IMPORT.findall(response.content) == []
    assert "script-src 'self';" in response.headers["content-security-policy"]


def test_the_pinned_version_is_a_published_one_not_the_never_published_0_12_37() -> None:
    installed = ROOT / "vendor" / "node_modules" / PACKAGE / "package.json"
    version = json.loads(installed.read_text(encoding="utf-8"))["version"]
    assert version == pinned_version() != "0.12.37"


def test_a_start_without_the_bundle_says_so_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chosen = settings(hms_sdk_url="/static/vendor/hms-video-store.js")
    with caplog.at_level(logging.ERROR, logger="livestage.web.hms_sdk"):
        assert warn_if_sdk_missing(chosen, tmp_path)
    (record,) = caplog.records
    assert "100ms browser SDK is not installed" in record.getMessage()
    assert "make deps" in record.getMessage()
    assert str(tmp_path / "vendor" / "hms-video-store.js") in record.getMessage()


def test_the_bundle_present_or_an_sdk_elsewhere_is_not_reported(tmp_path: Path) -> None:
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "sdk.js").write_text("export {};\n", encoding="utf-8")
    assert missing_local_sdk(settings(hms_sdk_url="/static/vendor/sdk.js?v=1"), tmp_path) is None
    assert (
        missing_local_sdk(settings(hms_sdk_url="https://sdk.example.net/hms.js"), tmp_path) is None
    )
    assert missing_local_sdk(settings(), STATIC_DIR) is None, "run `make deps`"
