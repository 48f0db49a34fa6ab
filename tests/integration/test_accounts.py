"""Sign-in, TOTP, throttling, CSRF and role enforcement — on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import threading

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from livestage.accounts import passwords
from livestage.app import ROUTERS, AppState
from tests.support.fixtures import (
    AdminAccount,
    FakeClock,
    create_influencer,
    csrf_token,
    login_influencer,
)

pytestmark = pytest.mark.asyncio


async def _api_login(
    client: httpx.AsyncClient, email: str, password: str, code: str | None, role: str = "admin"
) -> httpx.Response:
    token = await csrf_token(client)
    return await client.post(
        "/api/auth/login",
        json={"email": email, "password": password, "totp_code": code, "role": role},
        headers={"x-csrf-token": token},
    )


class TestAdminLogin:
    async def test_needs_email_password_and_secret_key(
        self, client: httpx.AsyncClient, admin: AdminAccount, clock: FakeClock
    ) -> None:
        missing = await _api_login(client, admin.email, admin.password, None)
        wrong = await _api_login(client, admin.email, admin.password, "000000")
        right = await _api_login(client, admin.email, admin.password, admin.code(clock()))
        assert missing.status_code == wrong.status_code == 401
        assert missing.json()["detail"] == "Email, password or secret key is incorrect."
        assert right.status_code == 200
        cookie = right.headers["set-cookie"].lower()
        assert "httponly" in cookie and "secure" in cookie and "samesite=lax" in cookie
        me = await client.get("/api/auth/me")
        assert me.json()["email"] == admin.email

    async def test_a_used_code_cannot_be_replayed(
        self, client: httpx.AsyncClient, admin: AdminAccount, clock: FakeClock
    ) -> None:
        code = admin.code(clock())
        assert (await _api_login(client, admin.email, admin.password, code)).status_code == 200
        client.cookies.clear()
        assert (await _api_login(client, admin.email, admin.password, code)).status_code == 401

    async def test_page_login_sets_cookie_and_redirects(
        self, client: httpx.AsyncClient, admin: AdminAccount, clock: FakeClock
    ) -> None:
        page = await client.get("/admin/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        response = await client.post(
            "/admin/login",
            data={
                "csrf_token": token.group(1),
                "email": admin.email,
                "password": admin.password,
                "totp_code": admin.code(clock()),
            },
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/admin/influencers"
        assert (await client.get("/admin/influencers")).status_code == 200

    async def test_wrong_password_page_shows_message(
        self, client: httpx.AsyncClient, admin: AdminAccount, clock: FakeClock
    ) -> None:
        page = await client.get("/admin/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        response = await client.post(
            "/admin/login",
            data={
                "csrf_token": token.group(1),
                "email": admin.email,
                "password": "nope",
                "totp_code": admin.code(clock()),
            },
        )
        assert response.status_code == 401
        assert "Email, password or secret key is incorrect." in response.text


class TestThrottling:
    async def test_lockout_after_repeated_failures_then_release(
        self, client: httpx.AsyncClient, admin: AdminAccount, clock: FakeClock, ctx: AppState
    ) -> None:
        for _ in range(ctx.settings.login_max_failures):
            response = await _api_login(client, admin.email, "wrong-password", admin.code(clock()))
            assert response.status_code == 401
        locked = await _api_login(client, admin.email, admin.password, admin.code(clock()))
        assert locked.status_code == 429
        assert "Try again in 15 minutes" in locked.json()["detail"]

        clock.advance(seconds=ctx.settings.login_lockout_seconds + 1)
        client.cookies.clear()
        released = await _api_login(client, admin.email, admin.password, admin.code(clock()))
        assert released.status_code == 200

    async def test_failures_are_audited(
        self, admin_client: httpx.AsyncClient, admin: AdminAccount, client: httpx.AsyncClient
    ) -> None:
        await _api_login(client, admin.email, "wrong-password", "123456")
        entries = (await admin_client.get("/api/admin/audit?action=login.failed")).json()
        assert entries["items"]
        assert entries["items"][0]["actor_email"] == admin.email


class TestCsrf:
    async def test_api_write_without_token_is_refused(
        self, admin_client: httpx.AsyncClient
    ) -> None:
        body = {"email": "b@example.com", "name": "B", "handle": "bob"}
        no_header = await admin_client.post(
            "/api/admin/influencers", json=body, headers={"x-csrf-token": ""}
        )
        wrong = await admin_client.post(
            "/api/admin/influencers", json=body, headers={"x-csrf-token": "forged"}
        )
        assert no_header.status_code == wrong.status_code == 403
        assert "CSRF" in wrong.json()["detail"]
        assert (await admin_client.get("/api/admin/influencers")).json() == []

    async def test_form_without_token_is_refused(self, admin_client: httpx.AsyncClient) -> None:
        del admin_client.headers["x-csrf-token"]
        response = await admin_client.post(
            "/admin/influencers", data={"email": "b@example.com", "name": "B", "handle": "bob"}
        )
        assert response.status_code == 403
        assert "CSRF check failed" in response.text

    async def test_login_form_needs_its_token_too(
        self, client: httpx.AsyncClient, admin: AdminAccount, clock: FakeClock
    ) -> None:
        response = await client.post(
            "/admin/login",
            data={
                "email": admin.email,
                "password": admin.password,
                "totp_code": admin.code(clock()),
            },
        )
        assert response.status_code == 403


def _admin_routes(app: FastAPI) -> list[tuple[str, str]]:
    routes = []
    for route in (r for router in ROUTERS for r in router.routes):
        if isinstance(route, APIRoute) and route.path.startswith(("/admin", "/api/admin")):
            if route.path == "/admin/login":
                continue
            path = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", route.path)
            routes.extend((method, path) for method in route.methods)
    return routes


class TestRoles:
    async def test_influencer_gets_403_on_every_admin_route(
        self, app: FastAPI, client: httpx.AsyncClient, ctx: AppState
    ) -> None:
        account = await create_influencer(ctx, "mallory")
        await login_influencer(client, account)
        routes = _admin_routes(app)
        assert len(routes) >= 12
        for method, path in routes:
            response = await client.request(method, path, json={}, data=None)
            assert response.status_code == 403, (method, path, response.status_code)

    async def test_anonymous_api_gets_401_and_pages_redirect_to_login(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        for method, path in _admin_routes(app):
            if method != "GET":
                continue
            response = await client.get(path)
            if path.startswith("/api/"):
                assert response.status_code == 401
            else:
                assert response.status_code == 303
                assert response.headers["location"].startswith("/admin/login?next=")

    async def test_influencer_cannot_sign_in_as_admin(
        self, client: httpx.AsyncClient, ctx: AppState
    ) -> None:
        account = await create_influencer(ctx, "eve")
        response = await _api_login(client, account.email, account.password, "123456")
        assert response.status_code == 401


class TestPasswordHashing:
    async def test_never_runs_on_the_event_loop(
        self,
        client: httpx.AsyncClient,
        ctx: AppState,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """argon2 takes 50-300 ms of CPU: on the loop it stalled every request of the process.
        Creating an account, a wrong password and a right one all hash or verify elsewhere."""
        threads: list[int] = []
        for name in ("hash_password", "verify_password"):
            real = getattr(passwords, name)
            monkeypatch.setattr(
                passwords,
                name,
                lambda *args, real=real: threads.append(threading.get_ident()) or real(*args),
            )
        loop_thread = threading.get_ident()

        account = await create_influencer(ctx, "hasher")
        wrong = await _api_login(client, account.email, "not the password", None, "influencer")
        right = await _api_login(client, account.email, account.password, None, "influencer")

        assert (wrong.status_code, right.status_code) == (401, 200)
        assert len(threads) == 3
        assert loop_thread not in threads
