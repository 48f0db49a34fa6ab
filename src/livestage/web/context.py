"""What the app lifespan owns, reachable from requests as `request.app.state.ctx`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from livestage.accounts.throttle import ThrottlePolicy
from livestage.config import Settings
from livestage.influencers.service import TokenPolicy
from livestage.kit.crypto import SecretBox
from livestage.kit.time import Clock, utc_now
from livestage.providers.base import StreamingProvider


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    box: SecretBox
    provider: StreamingProvider | None = None
    clock: Clock = field(default=utc_now)

    @property
    def throttle_policy(self) -> ThrottlePolicy:
        s = self.settings
        return ThrottlePolicy(
            max_failures=s.login_max_failures,
            window=timedelta(seconds=s.login_window_seconds),
            lockout=timedelta(seconds=s.login_lockout_seconds),
        )

    @property
    def token_policy(self) -> TokenPolicy:
        s = self.settings
        return TokenPolicy(
            access_key=s.hms_access_key or None,
            app_secret=s.hms_app_secret.get_secret_value() or None,
            expiring_soon=timedelta(hours=s.token_expiring_soon_hours),
        )
