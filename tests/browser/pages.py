"""Page objects for the admin pages: what a person sees and does, not how the HTML is built."""

from __future__ import annotations

from playwright.async_api import Locator, Page


class AdminPage:
    path = "/"

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    async def open(self) -> None:
        await self.page.goto(self.base_url + self.path)

    @property
    def notice(self) -> Locator:
        return self.page.locator("main > p.notice[role=status]")

    @property
    def error(self) -> Locator:
        return self.page.get_by_test_id("error")


class AdminLoginPage(AdminPage):
    path = "/admin/login"

    async def sign_in(self, email: str, password: str, code: str) -> None:
        await self.page.get_by_label("Email").fill(email)
        await self.page.get_by_label("Password").fill(password)
        await self.page.get_by_label("Secret key").fill(code)
        await self.page.get_by_role("button", name="Sign in").click()


class InfluencersPage(AdminPage):
    path = "/admin/influencers"

    def row(self, handle: str) -> Locator:
        return self.page.locator(f"[data-testid=influencers] tr[data-handle='{handle}']")

    def streaming(self, handle: str) -> Locator:
        return self.row(handle).locator("td:nth-child(3) .badge")

    def token_status(self, handle: str) -> Locator:
        return self.row(handle).get_by_test_id("token-status")

    async def create(self, *, name: str, email: str, handle: str) -> InfluencerAdminPage:
        form = self.page.get_by_test_id("create-influencer")
        await form.get_by_label("Name").fill(name)
        await form.get_by_label("Email").fill(email)
        await form.get_by_label("Handle").fill(handle)
        await form.get_by_role("button", name="Create influencer").click()
        return InfluencerAdminPage(self.page, self.base_url)

    async def manage(self, handle: str) -> InfluencerAdminPage:
        await self.row(handle).get_by_role("link", name="Manage").click()
        return InfluencerAdminPage(self.page, self.base_url)


class InfluencerAdminPage(AdminPage):
    """/admin/influencers/{id}: streaming switch, 100ms auth token, room code."""

    @property
    def heading(self) -> Locator:
        return self.page.get_by_role("heading", level=1)

    @property
    def generated_password(self) -> Locator:
        return self.page.get_by_test_id("generated-password").locator("code")

    @property
    def streaming_state(self) -> Locator:
        return self.page.get_by_test_id("streaming-state")

    @property
    def token_status(self) -> Locator:
        return self.page.get_by_test_id("token-status")

    @property
    def token_preview(self) -> Locator:
        return self.page.get_by_test_id("token-preview")

    def token_fact(self, label: str) -> Locator:
        return self.page.locator(f"[data-testid=token-details] dt:text-is('{label}') + dd")

    async def set_token(self, token: str) -> None:
        form = self.page.get_by_test_id("token-form")
        await form.locator("textarea[name=token]").fill(token)
        await form.get_by_role("button").click()

    async def disable_streaming(self) -> None:
        await self.page.get_by_role("button", name="Disable streaming").click()

    async def back_to_list(self) -> InfluencersPage:
        await self.page.get_by_role("link", name="All influencers").click()
        return InfluencersPage(self.page, self.base_url)
