from __future__ import annotations

from livestage.config import Settings
from livestage.kit.time import Clock, utc_now
from livestage.providers.base import StreamingProvider


def build_provider(settings: Settings, *, clock: Clock = utc_now) -> StreamingProvider | None:
    """`local` when chosen; 100ms when its credentials are configured; otherwise None (no
    server-side provider: an admin-set token or a room code can still be used).

    `auto` does not pick `local` yet: the pages cannot join a local room until the browser side
    of the local provider exists, and a default that answers Start Streaming with a join the
    page cannot use would be worse than today's room-code fallback."""
    if settings.provider == "none":
        return None
    if settings.provider == "local":
        from livestage.providers.local.provider import LocalProvider

        return LocalProvider.from_settings(settings, clock=clock)
    if not settings.hms_configured:
        return None
    from livestage.providers.hms.provider import HmsProvider

    return HmsProvider.from_settings(settings)
