"""Admin management of influencers through the JSON API and pages — SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from livestage.app import AppState
from livestage.cli import app as cli_app
from tests.support.fixtures import AdminAccount, FakeClock, create_influencer
from tests.support.hms_tokens import auth_token, throwaway_credentials

pytestmark = pytest.mark.asyncio
KEY, SECRET = throwaway_credentials()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "hms_access_key": KEY,
        "hms_app_secret": SECRET,
        "provider": "none",
        "log_level": "DEBUG",
        "session_ttl_hours": 720,
    }


async def _all_stored_text(ctx: AppState) -> str:
    """Every value in every table, as text: what someone reading the database would see."""
    chunks = []
    async with ctx.database.engine.connect() as connection:
        tables = ["users", "influencers", "audit_log", "user_sessions", "login_throttles"]
        for table in tables:
            rows = await connection.execute(text(f"SELECT * FROM {table}"))
            chunks.extend(str(tuple(row)) for row in rows)
    return "\n".join(chunks)


async def _create(client: httpx.AsyncClient, handle: str = "alice") -> dict[str, Any]:
    response = await client.post(
        "/api/admin/influencers",
        json={"email": f"{handle}@example.com", "name": handle.title(), "handle": handle},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


class TestCreate:
    async def test_create_and_list(self, admin_client: httpx.AsyncClient) -> None:
        created = await _create(admin_client)
        assert created["generated_password"]
        assert created["streaming_enabled"] is True
        assert created["token"]["status"] == "none"
        listed = (await admin_client.get("/api/admin/influencers")).json()
        assert [i["handle"] for i in listed] == ["alice"]
        assert "generated_password" not in listed[0]

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"email": "x", "name": "X", "handle": "xavier"}, "valid email"),
            ({"email": "x@example.com", "name": "X", "handle": "X!"}, "Handle must be"),
            ({"email": "x@example.com", "name": "", "handle": "xavier"}, "Name must be"),
            (
                {"email": "x@example.com", "name": "X", "handle": "xavier", "password": "short"},
                "at least 10",
            ),
        ],
    )
    async def test_bad_input_gets_a_message_and_creates_nothing(
        self, admin_client: httpx.AsyncClient, body: dict[str, str], message: str
    ) -> None:
        response = await admin_client.post("/api/admin/influencers", json=body)
        assert response.status_code == 400
        assert message in response.json()["detail"]
        assert (await admin_client.get("/api/admin/influencers")).json() == []

    async def test_duplicate_handle_is_a_conflict(self, admin_client: httpx.AsyncClient) -> None:
        await _create(admin_client)
        again = await admin_client.post(
            "/api/admin/influencers",
            json={"email": "other@example.com", "name": "Other", "handle": "alice"},
        )
        assert again.status_code == 409

    async def test_wrong_types_get_422_not_500(self, admin_client: httpx.AsyncClient) -> None:
        response = await admin_client.post("/api/admin/influencers", json={"email": 5})
        assert response.status_code == 422
        assert "Invalid input" in response.json()["detail"]
        missing = await admin_client.get("/api/admin/influencers/not-a-uuid")
        assert missing.status_code == 422


class TestToken:
    async def test_valid_token_is_stored_encrypted_and_shown_masked(
        self,
        admin_client: httpx.AsyncClient,
        ctx: AppState,
        clock: FakeClock,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        influencer = await _create(admin_client)
        room = "c" * 24
        token = auth_token(access_key=KEY, secret=SECRET, now=clock(), room=room)
        response = await admin_client.put(
            f"/api/admin/influencers/{influencer['id']}/token", json={"token": token}
        )
        assert response.status_code == 200, response.text
        info = response.json()["token"]
        assert info["status"] == "valid"
        assert info["room_id"] == room and info["role"] == "broadcaster"
        assert info["preview"] == f"{token[:8]}…{token[-6:]}"

        listed = await admin_client.get("/api/admin/influencers")
        page = await admin_client.get(f"/admin/influencers/{influencer['id']}")
        audit = await admin_client.get("/api/admin/audit")
        for body in (response.text, listed.text, page.text, audit.text):
            assert token not in body
        assert token not in await _all_stored_text(ctx)
        assert token not in capsys.readouterr().out
        if ctx.settings.is_sqlite:
            path = ctx.settings.database_url.split("///", 1)[1]
            await ctx.database.engine.dispose()
            for suffix in ("", "-wal"):
                try:
                    with open(path + suffix, "rb") as handle:
                        assert token.encode() not in handle.read()
                except FileNotFoundError:
                    pass
        assert "token.set" in audit.text

    async def test_second_save_is_an_update(
        self, admin_client: httpx.AsyncClient, clock: FakeClock
    ) -> None:
        influencer = await _create(admin_client)
        url = f"/api/admin/influencers/{influencer['id']}/token"
        for _ in range(2):
            clock.advance(seconds=1)
            token = auth_token(access_key=KEY, secret=SECRET, now=clock())
            assert (await admin_client.put(url, json={"token": token})).status_code == 200
        actions = [
            e["action"] for e in (await admin_client.get("/api/admin/audit")).json()["items"]
        ]
        assert actions[:2] == ["token.update", "token.set"]

    @pytest.mark.parametrize(
        ("make", "code", "words"),
        [
            (lambda now: "not-a-token", "structure", "three parts"),
            (
                lambda now: auth_token(access_key=KEY, secret=throwaway_credentials()[1], now=now),
                "signature",
                "signature does not match",
            ),
            (
                lambda now: auth_token(access_key="other", secret=SECRET, now=now),
                "access_key",
                "different 100ms app",
            ),
            (
                lambda now: auth_token(access_key=KEY, secret=SECRET, now=now - timedelta(days=30)),
                "expired",
                "expired on",
            ),
            (
                lambda now: auth_token(access_key=KEY, secret=SECRET, now=now, type="management"),
                "type",
                "management token",
            ),
        ],
    )
    async def test_bad_token_gets_its_reason_and_changes_nothing(
        self,
        admin_client: httpx.AsyncClient,
        clock: FakeClock,
        make: Any,
        code: str,
        words: str,
    ) -> None:
        influencer = await _create(admin_client)
        url = f"/api/admin/influencers/{influencer['id']}/token"
        good = auth_token(access_key=KEY, secret=SECRET, now=clock())
        await admin_client.put(url, json={"token": good})
        before = (await admin_client.get(f"/api/admin/influencers/{influencer['id']}")).json()
        audit_before = (await admin_client.get("/api/admin/audit")).json()["items"]

        response = await admin_client.put(url, json={"token": make(clock())})
        assert response.status_code == 422
        assert response.json()["code"] == code
        assert words in response.json()["detail"]
        after = (await admin_client.get(f"/api/admin/influencers/{influencer['id']}")).json()
        assert after == before
        assert (await admin_client.get("/api/admin/audit")).json()["items"] == audit_before

    async def test_bad_token_in_the_form_shows_the_reason(
        self, admin_client: httpx.AsyncClient
    ) -> None:
        influencer = await _create(admin_client)
        response = await admin_client.post(
            f"/admin/influencers/{influencer['id']}/token", data={"token": "abc.def"}
        )
        assert response.status_code == 422
        assert "three parts" in response.text
        assert "No token" in response.text

    async def test_status_moves_with_the_clock(
        self, admin_client: httpx.AsyncClient, clock: FakeClock
    ) -> None:
        influencer = await _create(admin_client)
        token = auth_token(access_key=KEY, secret=SECRET, now=clock(), ttl=timedelta(hours=100))
        await admin_client.put(
            f"/api/admin/influencers/{influencer['id']}/token", json={"token": token}
        )

        async def status() -> str:
            body = (await admin_client.get(f"/api/admin/influencers/{influencer['id']}")).json()
            assert "token" in body, body
            return str(body["token"]["status"])

        seen = [await status()]
        for hours in (27, 2, 71):
            clock.advance(hours=hours)
            seen.append(await status())
        assert seen == ["valid", "valid", "expiring_soon", "expired"]

    async def test_clearing_the_token(
        self, admin_client: httpx.AsyncClient, clock: FakeClock
    ) -> None:
        influencer = await _create(admin_client)
        url = f"/api/admin/influencers/{influencer['id']}/token"
        await admin_client.put(
            url, json={"token": auth_token(access_key=KEY, secret=SECRET, now=clock())}
        )
        cleared = await admin_client.delete(url)
        assert cleared.json()["token"] == {
            "status": "none",
            "preview": None,
            "room_id": None,
            "role": None,
            "user_id": None,
            "issued_at": None,
            "expires_at": None,
            "created_at": None,
            "problem": None,
        }


class TestTokenWithoutAppSecret:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"hms_access_key": KEY, "provider": "none"}

    async def test_a_signature_that_cannot_be_checked_is_not_called_valid(
        self, admin_client: httpx.AsyncClient, clock: FakeClock
    ) -> None:
        influencer = await _create(admin_client)
        any_key = throwaway_credentials()[1]
        token = auth_token(access_key=KEY, secret=any_key, now=clock())
        response = await admin_client.put(
            f"/api/admin/influencers/{influencer['id']}/token", json={"token": token}
        )
        assert response.status_code == 200, response.text
        assert response.json()["token"]["status"] == "unverified"

        page = await admin_client.get(f"/admin/influencers/{influencer['id']}")
        assert re.search(r'data-testid="token-status"[^>]*>Unverified<', page.text)
        assert re.search(r'data-testid="token-unverified">[^<]*LIVESTAGE_HMS_APP_SECRET', page.text)
        listing = await admin_client.get("/admin/influencers")
        assert re.search(r'data-testid="token-status"[^>]*>Unverified<', listing.text)


class TestAuditActors:
    async def test_an_influencer_created_by_the_cli_is_credited_to_the_cli(
        self, admin_client: httpx.AsyncClient, ctx: AppState
    ) -> None:
        env = {
            "LIVESTAGE_ENV": "test",
            "LIVESTAGE_DATABASE_URL": ctx.settings.database_url,
            "LIVESTAGE_SECRET_KEY": ctx.settings.secret_key.get_secret_value(),
            "LIVESTAGE_LOG_LEVEL": "WARNING",
        }
        args = ["influencer", "create", "--email", "carol@example.com", "--handle", "carol"]
        result = await asyncio.to_thread(
            CliRunner().invoke, cli_app, [*args, "--name", "Carol"], env=env
        )
        assert result.exit_code == 0, result.output

        audit = await admin_client.get("/api/admin/audit", params={"action": "influencer.create"})
        [entry] = audit.json()["items"]
        assert entry["actor_email"] is None
        assert entry["details"]["via"] == "cli"
        assert entry["details"]["handle"] == "carol"
        page = await admin_client.get("/admin/audit", params={"action": "influencer.create"})
        who = re.findall(
            r"<tr[^>]*><td>[^<]*</td><td>([^<]*)</td><td><code>influencer.create", page.text
        )
        assert who == ["cli"]

    async def test_an_influencer_created_by_an_admin_is_credited_to_the_admin(
        self, admin_client: httpx.AsyncClient, admin: AdminAccount
    ) -> None:
        await _create(admin_client, "dave")
        audit = await admin_client.get("/api/admin/audit", params={"action": "influencer.create"})
        [entry] = audit.json()["items"]
        assert entry["actor_email"] == admin.email
        assert "via" not in entry["details"]


class TestRoomCodeAndStreaming:
    async def test_manual_room_code(self, admin_client: httpx.AsyncClient) -> None:
        influencer = await _create(admin_client)
        url = f"/api/admin/influencers/{influencer['id']}/room-code"
        for code in ("ABC-defg-hij", "abc-def-ghi"):
            response = await admin_client.put(url, json={"code": code})
            assert response.status_code == 200
            assert response.json()["room_code"] == code.lower()
        bad = await admin_client.put(url, json={"code": "abc-12-xyz"})
        assert bad.status_code == 422 and "abc-defg-hij" in bad.json()["detail"]
        assert (await admin_client.get(f"/api/admin/influencers/{influencer['id']}")).json()[
            "room_code"
        ] == "abc-def-ghi"
        cleared = await admin_client.put(url, json={"code": None})
        assert cleared.json()["room_code"] is None

    async def test_auto_generate_without_provider_explains_what_to_configure(
        self, admin_client: httpx.AsyncClient
    ) -> None:
        influencer = await _create(admin_client)
        response = await admin_client.post(
            f"/api/admin/influencers/{influencer['id']}/room-code/generate"
        )
        assert response.status_code == 409
        assert "LIVESTAGE_HMS_ACCESS_KEY" in response.json()["detail"]

    async def test_enable_disable_streaming_is_audited(
        self, admin_client: httpx.AsyncClient, clock: FakeClock
    ) -> None:
        influencer = await _create(admin_client)
        url = f"/api/admin/influencers/{influencer['id']}/streaming"
        clock.advance(seconds=1)
        off = await admin_client.put(url, json={"enabled": False})
        clock.advance(seconds=1)
        assert off.json()["streaming_enabled"] is False
        on = await admin_client.put(url, json={"enabled": True})
        assert on.json()["streaming_enabled"] is True
        actions = [
            e["action"] for e in (await admin_client.get("/api/admin/audit")).json()["items"]
        ]
        assert actions[:2] == ["streaming.enable", "streaming.disable"]

    async def test_pages_render_list_and_detail(
        self, admin_client: httpx.AsyncClient, ctx: AppState
    ) -> None:
        account = await create_influencer(ctx, "bob")
        listing = await admin_client.get("/admin/influencers")
        assert listing.status_code == 200 and "@bob" in listing.text
        detail = await admin_client.get(f"/admin/influencers/{account.id}")
        assert "Set Token" in detail.text
        toggle = await admin_client.post(
            f"/admin/influencers/{account.id}/streaming", data={"enabled": "false"}
        )
        assert toggle.status_code == 303
        after = await admin_client.get(toggle.headers["location"])
        assert re.search(r'data-testid="streaming-state">disabled<', after.text)
        audit_page = await admin_client.get("/admin/audit")
        assert "streaming.disable" in audit_page.text


async def test_openapi_documents_the_admin_and_stream_api(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in (
        "/api/admin/influencers",
        "/api/admin/influencers/{influencer_id}/token",
        "/api/admin/influencers/{influencer_id}/room-code",
        "/api/admin/influencers/{influencer_id}/room-code/generate",
        "/api/admin/influencers/{influencer_id}/streaming",
        "/api/admin/audit",
        "/api/streams",
        "/api/streams/room-code",
        "/api/watch/{handle}/join",
    ):
        assert path in paths
    assert not any(p.startswith("/admin/") for p in paths)


class TestManagePage:
    async def test_a_failed_form_shows_its_error_beside_the_form(
        self, admin_client: httpx.AsyncClient
    ) -> None:
        created = await _create(admin_client)
        token = admin_client.headers["x-csrf-token"]
        page = await admin_client.post(
            f"/admin/influencers/{created['id']}/token",
            data={"token": "not-a-token", "csrf_token": token},
        )
        assert page.status_code == 422
        html = page.text
        assert html.count('data-testid="error"') == 1
        assert html.index('data-testid="error"') > html.index("<h2>100ms auth token</h2>")
        assert html.index('data-testid="error"') < html.index("<h2>Room code</h2>")


class TestManagePageUnderTheLocalProvider:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"provider": "local"}

    async def test_it_says_why_there_are_no_100ms_controls(
        self, admin_client: httpx.AsyncClient
    ) -> None:
        created = await _create(admin_client)
        html = (await admin_client.get(f"/admin/influencers/{created['id']}")).text
        assert 'data-testid="local-provider-note"' in html
        assert "embedded local provider" in html
        assert 'data-testid="token-form"' not in html
        assert "/room-code/generate" not in html
