from __future__ import annotations

import secrets
import uuid
from http.cookies import SimpleCookie

import pytest
from starlette.responses import Response

from livestage.streams.viewers import (
    COOKIE_MAX_AGE_SECONDS,
    VIEWER_COOKIE,
    ViewerCookie,
    ViewerIdentity,
)
from tests.support.fixtures import make_settings


def viewer_cookie(*, secure: bool = True, fallbacks: str = "") -> ViewerCookie:
    settings = make_settings(
        "sqlite+aiosqlite://", cookie_secure=secure, secret_key_fallbacks=fallbacks
    )
    return ViewerCookie.from_settings(settings)


def issued(cookie: ViewerCookie, identity: ViewerIdentity) -> SimpleCookie:
    response = Response()
    cookie.remember(response, identity)
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.getlist("set-cookie"):
        jar.load(header)
    return jar


def test_a_new_visitor_gets_an_id_and_the_cookie_that_brings_it_back() -> None:
    cookie = viewer_cookie()
    first = cookie.identify({}, None)
    assert first.new_cookie and first.id.startswith("viewer-")
    jar = issued(cookie, first)
    morsel = jar[VIEWER_COOKIE]
    assert morsel["httponly"] and morsel["secure"]
    assert morsel["samesite"].lower() == "lax"
    assert (morsel["path"], int(morsel["max-age"])) == ("/", COOKIE_MAX_AGE_SECONDS)
    again = cookie.identify({VIEWER_COOKIE: morsel.value}, None)
    assert again == ViewerIdentity(first.id, new_cookie=False)
    assert not issued(cookie, again)


def test_not_secure_when_the_app_serves_plain_http() -> None:
    cookie = viewer_cookie(secure=False)
    assert not issued(cookie, cookie.identify({}, None))[VIEWER_COOKIE]["secure"]


@pytest.mark.parametrize("secure", [True, False])
def test_the_header_is_the_one_starlettes_set_cookie_writes(secure: bool) -> None:
    cookie = viewer_cookie(secure=secure)
    ours = Response()
    cookie.remember(ours, cookie.identify({}, None))
    (header,) = ours.headers.getlist("set-cookie")
    theirs = Response()
    theirs.set_cookie(
        VIEWER_COOKIE,
        header.partition("=")[2].partition(";")[0],
        max_age=COOKIE_MAX_AGE_SECONDS,
        httponly=True,
        secure=secure,
        samesite="lax",
        path="/",
    )
    assert theirs.headers.getlist("set-cookie") == [header]


def test_a_tampered_or_foreign_cookie_is_replaced() -> None:
    cookie = viewer_cookie()
    genuine = issued(cookie, cookie.identify({}, None))[VIEWER_COOKIE].value
    value, _, mac = genuine.rpartition(".")
    stranger = viewer_cookie()
    foreign = issued(stranger, stranger.identify({}, None))[VIEWER_COOKIE].value
    for raw in (f"viewer-{'0' * 16}.{mac}", f"{value}.{mac[::-1]}", foreign, value, "", "é"):
        replaced = cookie.identify({VIEWER_COOKIE: raw}, None)
        assert replaced.new_cookie and replaced.id != value, raw


def test_a_signed_value_that_is_not_a_viewer_id_is_refused() -> None:
    cookie = viewer_cookie()
    user = issued(cookie, ViewerIdentity(f"user-{uuid.uuid4()}", new_cookie=True))
    assert cookie.viewer_of({VIEWER_COOKIE: user[VIEWER_COOKIE].value}) is None


def test_cookies_signed_before_a_key_rotation_still_count() -> None:
    old_key = secrets.token_urlsafe(32)
    before = ViewerCookie.from_settings(make_settings("sqlite+aiosqlite://", secret_key=old_key))
    first = before.identify({}, None)
    raw = issued(before, first)[VIEWER_COOKIE].value
    after = viewer_cookie(fallbacks=old_key)
    assert after.identify({VIEWER_COOKIE: raw}, None) == ViewerIdentity(first.id, False)


def test_a_signed_in_user_is_the_user_whatever_the_cookie() -> None:
    cookie = viewer_cookie()
    user_id = uuid.uuid4()
    raw = issued(cookie, cookie.identify({}, None))[VIEWER_COOKIE].value
    for cookies in ({}, {VIEWER_COOKIE: raw}):
        assert cookie.identify(cookies, user_id) == ViewerIdentity(f"user-{user_id}", False)
