"""The Content-Security-Policy built from the settings (web/headers.py)."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from livestage.config import Settings
from livestage.providers.factory import browser_uses_hms
from livestage.web.headers import ResponseHeaders, content_security_policy

STRICT = {
    "default-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:", "blob:"],
    "media-src": ["'self'", "blob:", "mediastream:"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, secret_key=secrets.token_urlsafe(32), **values)


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for directive in policy.split(";"):
        name, *sources = directive.split()
        assert name not in parsed, f"{name} twice"
        parsed[name] = sources
    return parsed


def test_the_local_provider_s_pages_run_nothing_but_livestage_s_own_code() -> None:
    policy = directives(content_security_policy(settings(), hms_in_browser=False))
    assert policy == {
        **STRICT,
        "script-src": ["'self'"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'"],
    }


def test_with_100ms_the_sdk_s_origin_and_100ms_s_hosts_are_allowed() -> None:
    configured = settings(
        hms_sdk_url="https://sdk.example.net/npm/hms@1/+esm",
        hms_auth_url="https://auth.example.org:8443/v2",
    )
    policy = directives(content_security_policy(configured, hms_in_browser=True))
    assert policy == {
        **STRICT,
        "script-src": ["'self'", "https://sdk.example.net"],
        "connect-src": [
            "'self'",
            "https://auth.example.org:8443",
            "https://*.100ms.live",
            "wss://*.100ms.live",
        ],
        "worker-src": ["'self'", "blob:"],
    }


def test_the_default_sdk_is_livestage_s_own_so_scripts_stay_self() -> None:
    policy = directives(content_security_policy(settings(), hms_in_browser=True))
    assert policy["script-src"] == ["'self'"]
    assert "https://auth.100ms.live" in policy["connect-src"]


@pytest.mark.parametrize(
    "sdk_url",
    [
        "/static/vendor/hms.js",  # on this site: 'self' covers it
        "javascript:alert(1)",
        "https://evil.example; script-src *",
        "https://user:secret@sdk.example.net/x.js",
    ],
)
def test_an_sdk_url_adds_only_a_clean_origin(sdk_url: str) -> None:
    policy = content_security_policy(settings(hms_sdk_url=sdk_url), hms_in_browser=True)
    script = directives(policy)["script-src"]
    assert script in (["'self'"], ["'self'", "https://sdk.example.net"])
    assert "secret" not in policy and "*" not in script


def test_nothing_is_allowed_inline_or_evaluated() -> None:
    for hms in (False, True):
        policy = content_security_policy(settings(), hms_in_browser=hms)
        assert "unsafe" not in policy and "nonce" not in policy and "'strict-dynamic'" not in policy


@pytest.mark.parametrize(
    ("values", "uses_hms"),
    [
        ({"provider": "local"}, False),
        ({"provider": "auto"}, False),
        ({"provider": "auto", "hms_access_key": "an-access-key"}, True),
        ({"provider": "hms"}, True),
        # An admin-set token or a room code: the pages join with the 100ms SDK.
        ({"provider": "none"}, True),
    ],
)
def test_pages_load_the_100ms_sdk_unless_the_local_provider_runs(
    values: dict[str, Any], uses_hms: bool
) -> None:
    assert browser_uses_hms(settings(**values)) is uses_hms


def test_json_gets_the_json_policy_and_everything_else_the_pages_policy() -> None:
    headers = ResponseHeaders(cookie_secure=True, policy="default-src 'self'")
    answers = {
        b"application/json": b"default-src 'none'; frame-ancestors 'none'",
        b"text/html; charset=utf-8": b"default-src 'self'",
        b"text/event-stream": b"default-src 'self'",
        b"image/jpeg": b"default-src 'self'",
    }
    for content_type, policy in answers.items():
        raw = [(b"content-type", content_type)]
        headers.complete(raw, {})
        assert dict(raw)[b"content-security-policy"] == policy, content_type
        assert dict(raw)[b"x-frame-options"] == b"DENY"
    own = [(b"content-type", b"application/json"), (b"content-security-policy", b"sandbox")]
    headers.complete(own, {})
    assert [v for k, v in own if k == b"content-security-policy"] == [b"sandbox"]
