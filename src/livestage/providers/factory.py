from __future__ import annotations

from livestage.config import Settings
from livestage.providers.base import StreamingProvider


def build_provider(settings: Settings) -> StreamingProvider | None:
    """100ms when credentials are configured; None means no server-side provider yet."""
    if settings.provider == "local" or not settings.hms_configured:
        return None
    from livestage.providers.hms.provider import HmsProvider

    return HmsProvider.from_settings(settings)
