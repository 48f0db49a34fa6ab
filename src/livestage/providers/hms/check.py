"""`livestage hms check`: can livestage reach 100ms with the configured credentials?

Every line says what was checked and what to do about a failure. Secrets are never printed:
the app secret and tokens only as "set", the access key only by its first characters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import httpx

from livestage.config import Settings
from livestage.kit.time import Clock, rfc3339, utc_now
from livestage.providers.base import ProviderError
from livestage.providers.hms.client import HmsClient
from livestage.providers.hms.errors import HmsError, HmsNotFound
from livestage.providers.hms.provider import (
    APP_CREDENTIALS,
    DASHBOARD_TOKEN,
    Credentials,
    token_source_from_settings,
    translate_error,
)
from livestage.providers.hms.tokens import StaticManagementToken, TokenBuildError, TokenSource


@dataclass(frozen=True, slots=True)
class CheckLine:
    ok: bool
    what: str
    detail: str


@dataclass(slots=True)
class CheckReport:
    lines: list[CheckLine] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(line.ok for line in self.lines)

    def add(self, ok: bool, what: str, detail: str) -> bool:
        self.lines.append(CheckLine(ok, what, detail))
        return ok


async def check_credentials(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = utc_now,
) -> CheckReport:
    report = CheckReport()
    _check_configuration(settings, report)
    try:
        source = token_source_from_settings(settings, clock=clock)
    except ProviderError as exc:
        report.add(False, "management token", exc.message)
        return report
    if not await _check_token(source, settings, report, clock):
        return report
    credentials = APP_CREDENTIALS if source.renewable else DASHBOARD_TOKEN
    async with HmsClient(
        token_source=source,
        base_url=settings.hms_api_url,
        auth_url=settings.hms_auth_url,
        timeout=settings.hms_timeout_seconds,
        max_retries=settings.hms_max_retries,
        transport=transport,
        clock=clock,
    ) as client:
        if await _check_rooms(client, report, credentials):
            await _check_template(client, settings, report, credentials)
    return report


def _check_configuration(settings: Settings, report: CheckReport) -> None:
    key = settings.hms_access_key
    if key:
        report.add(True, "access key", f"LIVESTAGE_HMS_ACCESS_KEY is set ({key[:6]}...)")
    else:
        report.add(False, "access key", "set LIVESTAGE_HMS_ACCESS_KEY (100ms dashboard, Developer)")
    if settings.hms_app_secret.get_secret_value():
        report.add(True, "app secret", "LIVESTAGE_HMS_APP_SECRET is set (not shown)")
    else:
        report.add(
            False,
            "app secret",
            "set LIVESTAGE_HMS_APP_SECRET: without it livestage cannot mint join tokens",
        )


async def _check_token(
    source: TokenSource, settings: Settings, report: CheckReport, clock: Clock
) -> bool:
    try:
        await source.get()
    except TokenBuildError as exc:
        return report.add(False, "management token", str(exc))
    expires = rfc3339(source.expires_at) if source.expires_at else "never"
    if not isinstance(source, StaticManagementToken):
        return report.add(True, "management token", f"minted locally, valid until {expires}")
    detail = f"using LIVESTAGE_HMS_MANAGEMENT_TOKEN from the dashboard, expires {expires}"
    soon = timedelta(hours=settings.token_expiring_soon_hours)
    if source.expiring_soon(clock(), within=soon):
        detail += "; expires soon: mint a new one or configure LIVESTAGE_HMS_APP_SECRET"
    return report.add(True, "management token", detail)


async def _check_rooms(client: HmsClient, report: CheckReport, credentials: Credentials) -> bool:
    try:
        page = await client.list_rooms(limit=10)
    except (HmsError, TokenBuildError) as exc:
        error = translate_error(exc, doing="listing rooms", credentials=credentials)
        return report.add(False, "rooms API", error.message)
    return report.add(True, "rooms API", f"GET /rooms answered ({len(page.data)} room(s) shown)")


async def _check_template(
    client: HmsClient, settings: Settings, report: CheckReport, credentials: Credentials
) -> None:
    template_id = settings.hms_template_id
    if not template_id:
        report.add(False, "template", await _missing_template_hint(client))
        return
    try:
        template = await client.get_template(template_id)
    except HmsNotFound:
        report.add(False, "template", f"no template {template_id} in this 100ms workspace")
        return
    except (HmsError, TokenBuildError) as exc:
        error = translate_error(exc, doing="reading the template", credentials=credentials)
        report.add(False, "template", error.message)
        return
    wanted = (settings.hms_broadcaster_role, settings.hms_viewer_role)
    missing = [role for role in wanted if role not in template.roles]
    if missing:
        detail = f"template {template.name!r} lacks role(s) {', '.join(missing)}"
        report.add(False, "template", detail)
    else:
        report.add(True, "template", f"template {template.name!r} has roles {', '.join(wanted)}")


async def _missing_template_hint(client: HmsClient) -> str:
    hint = "LIVESTAGE_HMS_TEMPLATE_ID is not set, so rooms use the workspace default template"
    try:
        page = await client.list_templates(limit=100)
    except (HmsError, TokenBuildError):
        return hint
    for template in page.data:
        if template.name == "livestage":
            return f"{hint}; set LIVESTAGE_HMS_TEMPLATE_ID={template.id} (template 'livestage')"
    return hint
