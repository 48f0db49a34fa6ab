"""Settings: every knob is a `LIVESTAGE_` environment variable (or a git-ignored `.env` line)."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "dev-insecure-change-me"


class IceServer(BaseModel):
    """One RTCIceServer handed to browsers (local provider). TURN credentials reach browsers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    urls: str | list[str]
    username: str | None = None
    credential: str | None = None

    @field_validator("urls")
    @classmethod
    def _ice_urls(cls, value: str | list[str]) -> str | list[str]:
        for url in [value] if isinstance(value, str) else value:
            if not url.startswith(("stun:", "turn:", "turns:")):
                raise ValueError(f"ICE server URLs start with stun:, turn: or turns: (got {url!r})")
        if not value:
            raise ValueError("an ICE server needs at least one URL")
        return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def split_list(value: str) -> list[str]:
    """The items of a comma-separated setting, without blanks."""
    return [item.strip() for item in value.split(",") if item.strip()]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LIVESTAGE_", env_file=".env", extra="ignore", frozen=True
    )

    env: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///./livestage.db"
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    # Older keys, comma separated, still accepted for decryption so the key can be rotated.
    secret_key_fallbacks: SecretStr = SecretStr("")
    public_url: str = ""
    cookie_secure: bool = True
    session_ttl_hours: int = Field(default=12, ge=1, le=24 * 30)
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_seconds: int = Field(default=900, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)
    token_expiring_soon_hours: int = Field(default=72, ge=1)

    # auto: 100ms when its credentials are set, else local; none: no server-side provider.
    provider: Literal["auto", "hms", "local", "none"] = "auto"
    local_viewer_cap: int = Field(default=16, ge=1, le=500)
    # JSON list of RTCIceServer objects; [] = host candidates only (same network / loopback).
    ice_servers: list[IceServer] = Field(default_factory=list)
    hms_access_key: str = ""
    hms_app_secret: SecretStr = SecretStr("")
    hms_management_token: SecretStr = SecretStr("")
    hms_api_url: str = "https://api.100ms.live/v2"
    hms_auth_url: str = "https://auth.100ms.live/v2"
    hms_template_id: str = ""
    hms_broadcaster_role: str = "broadcaster"
    hms_viewer_role: str = "viewer"
    hms_timeout_seconds: float = Field(default=10.0, gt=0)
    hms_max_retries: int = Field(default=3, ge=0, le=10)
    # Start Streaming answers within this, however slow 100ms is: every call and retry of one
    # go-live shares it (a per-call timeout alone lets retries add up to 40 s and more).
    go_live_deadline_seconds: float = Field(default=12.0, gt=0, le=120)
    hms_auth_token_ttl_seconds: int = Field(default=4 * 3600, ge=60, le=90 * 86400)
    hms_management_token_ttl_seconds: int = Field(default=3600, ge=60, le=90 * 86400)
    # The pinned SDK (vendor/package.json), bundled by `make deps` and served by livestage itself.
    hms_sdk_url: str = "/static/vendor/hms-video-store.js"
    webhook_secret: SecretStr = SecretStr("")
    webhook_hmac_secret: SecretStr = SecretStr("")
    webhook_allowed_networks: str = ""
    # Comma-separated IPs/CIDRs of the reverse proxies whose X-Forwarded-For/-Proto are
    # believed ("*": any peer). Empty: none is, so nobody can choose the address the sign-in
    # throttle and the audit log see by sending the header.
    trusted_proxies: str = ""
    # /metrics asks for `Authorization: Bearer <token>` when set, and serves only clients
    # from these comma-separated CIDRs when set; with neither it is open (one machine).
    metrics_token: SecretStr = SecretStr("")
    metrics_allowed_networks: str = ""
    reconnect_grace_seconds: int = Field(default=60, ge=0)
    # A stream whose broadcaster has not joined this long after Start Streaming fails.
    start_timeout_seconds: int = Field(default=300, ge=1)
    reconcile_interval_seconds: float = Field(default=60.0, ge=0)
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    # Off only where something else drives processing (tests, a separate worker process).
    worker_enabled: bool = True
    # Redis: live state shared by several processes (a cluster); empty for one process.
    redis_url: str = ""
    # A cluster's periodic jobs run in the process holding this lease; it passes to another
    # process within this many seconds of the holder dying.
    leader_ttl_seconds: float = Field(default=10.0, ge=1.0, le=600.0)
    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("hms_api_url", "hms_auth_url", "public_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("LIVESTAGE_REDIS_URL starts with redis://, rediss:// or unix://")
        return value

    @field_validator("trusted_proxies", "metrics_allowed_networks")
    @classmethod
    def _ip_networks(cls, value: str, info: ValidationInfo) -> str:
        for item in split_list(value):
            if item == "*" and info.field_name == "trusted_proxies":
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                name = f"LIVESTAGE_{str(info.field_name).upper()}"
                raise ValueError(f"{name}: {item!r} is not an IP address or a CIDR") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"LIVESTAGE_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("secret_key")
    @classmethod
    def _secret_key_not_placeholder(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("LIVESTAGE_SECRET_KEY must be at least 16 characters")
        return value

    def model_post_init(self, __context: object) -> None:
        if self.env == "production" and self.secret_key.get_secret_value() == DEV_SECRET_KEY:
            raise ValueError("set LIVESTAGE_SECRET_KEY to a long random value in production")

    @property
    def hms_configured(self) -> bool:
        return bool(self.hms_access_key and self.hms_app_secret.get_secret_value())

    @property
    def hms_any_credential(self) -> bool:
        """Any 100ms credential at all (the automatic choice of the local provider needs none)."""
        return bool(
            self.hms_access_key
            or self.hms_app_secret.get_secret_value()
            or self.hms_management_token.get_secret_value()
        )

    def cluster_problem(self, *, processes: int = 1) -> str | None:
        """Why this configuration cannot run as `processes` processes (or as a cluster at all,
        when Redis is set), as a sentence saying what to set; None when it can."""
        if processes > 1 and not self.redis_url:
            return (
                f"{processes} processes share live state through Redis: set LIVESTAGE_REDIS_URL "
                "(e.g. redis://127.0.0.1:6379/0), or run one process"
            )
        if (processes > 1 or self.redis_url) and self.is_sqlite:
            return (
                "several processes need PostgreSQL (SQLite has one writer, in one process): set "
                "LIVESTAGE_DATABASE_URL=postgresql+asyncpg://user:password@host/database, or run "
                "one process without LIVESTAGE_REDIS_URL"
            )
        return None

    @property
    def reconnect_grace(self) -> timedelta:
        """How long a stream whose broadcaster dropped stays live, waiting for them."""
        return timedelta(seconds=self.reconnect_grace_seconds)

    @property
    def secret_keys(self) -> tuple[str, ...]:
        fallbacks = [k.strip() for k in self.secret_key_fallbacks.get_secret_value().split(",")]
        return (self.secret_key.get_secret_value(), *(k for k in fallbacks if k))

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
