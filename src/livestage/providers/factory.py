from __future__ import annotations

from livestage.config import Settings
from livestage.kit.time import Clock, utc_now
from livestage.providers.base import StreamingProvider


def build_provider(settings: Settings, *, clock: Clock = utc_now) -> StreamingProvider | None:
    """`auto`: 100ms when its credentials are configured, the embedded local provider when no
    100ms credential is set at all. A partial 100ms configuration (say, only a management token)
    is a 100ms user's, so it gets no provider rather than a silent switch to local: the admin-set
    token and room-code fallbacks still work, and `livestage hms check` says what is missing.
    `none`: no server-side provider."""
    if settings.provider == "none":
        return None
    if _local_chosen(settings):
        from livestage.providers.local.provider import LocalProvider

        return LocalProvider.from_settings(settings, clock=clock)
    if not settings.hms_configured:
        return None
    from livestage.providers.hms.provider import HmsProvider

    return HmsProvider.from_settings(settings)


def describe_choice(settings: Settings) -> str:
    """One line for the person starting the server: which provider Start Streaming will use."""
    if settings.provider == "none":
        return "provider: none (influencers go live with an admin-set token or a room code)"
    if _local_chosen(settings):
        return (
            "provider: local (no 100ms account needed: video goes browser to browser, "
            "signalled by this server; set LIVESTAGE_HMS_ACCESS_KEY and "
            "LIVESTAGE_HMS_APP_SECRET to use 100ms)"
        )
    if settings.hms_configured:
        return "provider: 100ms (rooms and tokens made automatically)"
    return (
        "provider: none (the 100ms configuration is incomplete: set both "
        "LIVESTAGE_HMS_ACCESS_KEY and LIVESTAGE_HMS_APP_SECRET; `livestage hms check` tells more)"
    )


def browser_uses_hms(settings: Settings) -> bool:
    """Whether pages may load the 100ms SDK: under every choice but the local provider (with
    `none` or a partial configuration, influencers go live with an admin-set token or a room
    code, in the SDK)."""
    return not _local_chosen(settings)


def _local_chosen(settings: Settings) -> bool:
    return settings.provider == "local" or (
        settings.provider == "auto" and not settings.hms_any_credential
    )
