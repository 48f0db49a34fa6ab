"""An admin's journey through the real pages, in Chromium: sign-in, influencers, 100ms tokens."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.pages import AdminLoginPage, InfluencerAdminPage, InfluencersPage
from tests.support import hms_tokens
from tests.support.fixtures import AdminAccount, create_admin, create_influencer
from tests.support.live_server import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SESSION_COOKIE = "livestage_session"
REASONS = {
    "signed-by-another-app": (
        "The token's signature does not match LIVESTAGE_HMS_APP_SECRET: "
        "it was signed by another app or altered."
    ),
    "truncated": (
        "A 100ms auth token has three parts separated by dots (header.payload.signature); "
        "this has 2."
    ),
}


@pytest.fixture
def hms_credentials() -> tuple[str, str]:
    return hms_tokens.throwaway_credentials()


@pytest.fixture
def live_server_settings(hms_credentials: tuple[str, str]) -> dict[str, Any]:
    access_key, app_secret = hms_credentials
    return {"provider": "none", "hms_access_key": access_key, "hms_app_secret": app_secret}


@pytest.fixture
def admin(live_server: LiveServer) -> AdminAccount:
    return live_server.run(create_admin(live_server.ctx))


def mint(access_key: str, app_secret: str, **claims: Any) -> str:
    now = datetime.now(UTC)
    return hms_tokens.auth_token(access_key=access_key, secret=app_secret, now=now, **claims)


def bad_token(kind: str, good: str, access_key: str) -> str:
    if kind == "signed-by-another-app":
        return mint(access_key, hms_tokens.throwaway_credentials()[1])
    return good.rsplit(".", 1)[0]


async def sign_in(page: Page, live_server: LiveServer, admin: AdminAccount) -> InfluencersPage:
    login = AdminLoginPage(page, live_server.base_url)
    await login.open()
    await login.sign_in(admin.email, admin.password, admin.code(datetime.now(UTC)))
    await expect(page).to_have_url(live_server.url("/admin/influencers"))
    return InfluencersPage(page, live_server.base_url)


async def expect_token_shown(influencer: InfluencerAdminPage, token: str, room: str) -> None:
    await expect(influencer.token_status).to_have_text("Valid")
    await expect(influencer.token_preview).to_have_text(f"{token[:8]}…{token[-6:]}")
    await expect(influencer.token_fact("Room")).to_have_text(room)
    await expect(influencer.token_fact("Role")).to_have_text("broadcaster")
    html = await influencer.page.content()
    assert token not in html
    assert token.split(".")[1] not in html


async def test_admin_signs_in_with_password_and_totp(
    page: Page, live_server: LiveServer, admin: AdminAccount
) -> None:
    influencers = await sign_in(page, live_server, admin)

    await expect(influencers.page.get_by_role("heading", level=1)).to_have_text("Influencers")
    cookies = {c["name"]: c for c in await page.context.cookies()}
    assert SESSION_COOKIE in cookies, "Chromium did not keep the session cookie"
    assert cookies[SESSION_COOKIE]["httpOnly"] is True
    assert cookies[SESSION_COOKIE]["sameSite"] == "Lax"
    assert cookies[SESSION_COOKIE]["secure"] is True


async def test_wrong_totp_code_is_refused_without_a_session(
    page: Page, live_server: LiveServer, admin: AdminAccount
) -> None:
    now = datetime.now(UTC)
    accepted = {admin.code(now + timedelta(seconds=s)) for s in (-30, 0, 30)}
    wrong = next(code for code in ("000000", "111111", "222222", "333333") if code not in accepted)
    login = AdminLoginPage(page, live_server.base_url)
    await login.open()

    await login.sign_in(admin.email, admin.password, wrong)

    await expect(login.error).to_have_text("Email, password or secret key is incorrect.")
    await expect(page).to_have_url(live_server.url("/admin/login"))
    assert SESSION_COOKIE not in {c["name"] for c in await page.context.cookies()}
    await page.goto(live_server.url("/admin/influencers"))
    await expect(page).to_have_url(re.compile(r"/admin/login\?next=/admin/influencers$"))


async def test_admin_creates_an_influencer_sets_a_token_and_disables_streaming(
    page: Page, live_server: LiveServer, admin: AdminAccount, hms_credentials: tuple[str, str]
) -> None:
    influencers = await sign_in(page, live_server, admin)

    influencer = await influencers.create(name="Alice", email="alice@example.com", handle="alice")
    await expect(influencer.notice).to_have_text("Influencer created.")
    await expect(influencer.generated_password).to_have_text(re.compile(r"\S{10,}"))
    await expect(influencer.heading).to_contain_text("@alice")
    await expect(influencer.streaming_state).to_have_text("enabled")
    await expect(influencer.token_status).to_have_text("No token")

    room = hms_tokens.room_id()
    token = mint(*hms_credentials, room=room, role="broadcaster")
    await influencer.set_token(token)
    await expect(influencer.notice).to_contain_text("Token saved.")
    await expect_token_shown(influencer, token, room)

    listing = await influencer.back_to_list()
    await expect(listing.token_status("alice")).to_have_text("Valid")
    await expect(listing.streaming("alice")).to_have_text("On")

    influencer = await listing.manage("alice")
    await influencer.disable_streaming()
    await expect(influencer.notice).to_have_text("Streaming disabled.")
    await expect(influencer.streaming_state).to_have_text("disabled")
    listing = await influencer.back_to_list()
    await expect(listing.streaming("alice")).to_have_text("Off")


@pytest.mark.parametrize("kind", sorted(REASONS))
async def test_a_bad_token_shows_its_reason_and_changes_nothing(
    page: Page,
    live_server: LiveServer,
    admin: AdminAccount,
    hms_credentials: tuple[str, str],
    kind: str,
) -> None:
    live_server.run(create_influencer(live_server.ctx, "alice"))
    influencer = await (await sign_in(page, live_server, admin)).manage("alice")
    room = hms_tokens.room_id()
    good = mint(*hms_credentials, room=room, role="broadcaster")
    await influencer.set_token(good)
    await expect_token_shown(influencer, good, room)
    bad = bad_token(kind, good, access_key=hms_credentials[0])

    await influencer.set_token(bad)

    await expect(influencer.error).to_have_text(REASONS[kind])
    await expect_token_shown(influencer, good, room)
    assert bad not in await page.content()
    listing = await influencer.back_to_list()
    await expect(listing.token_status("alice")).to_have_text("Valid")
