from __future__ import annotations

from livestage.config import Settings
from livestage.kit.time import Clock, utc_now
from livestage.providers.base import StreamingProvider


def build_provider(settings: Settings, *, clock: Clock = utc_now) -> StreamingProvider | None:
    """`local` when chosen, or by default when no 100ms credential is set at all; 100ms when
    its credentials are configured; None (no server-side provider) for `none` or a partial
    100ms configuration (an admin-set token or a room code can still be used)."""
    if settings.provider == "none":
        return None
    if settings.provider == "local" or (
        settings.provider == "auto" and not settings.hms_any_credential
    ):
        from livestage.providers.local.provider import LocalProvider

        return LocalProvider.from_settings(settings, clock=clock)
    if not settings.hms_configured:
        return None
    from livestage.providers.hms.provider import HmsProvider

    return HmsProvider.from_settings(settings)
