"""What the app lifespan owns, reachable from requests as `request.app.state.ctx`."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from livestage.accounts.throttle import ThrottlePolicy
from livestage.config import Settings
from livestage.db import create_read_sessionmaker
from livestage.influencers.service import TokenPolicy
from livestage.kit.crypto import SecretBox
from livestage.kit.time import Clock, utc_now
from livestage.providers.base import StreamingProvider, WebhookTarget
from livestage.streams.joins import JoinRecorder, WatchCache
from livestage.streams.service import GoLiveConfig
from livestage.tracking.broker import LiveBroker
from livestage.tracking.inbox import InboxWriter
from livestage.tracking.service import TrackingConfig
from livestage.tracking.verification import WebhookPolicy
from livestage.tracking.worker import TrackingWorker

WEBHOOK_SECRET_HEADER = "X-Livestage-Webhook-Secret"


def webhook_secret(settings: Settings) -> str:
    """The configured secret, or one derived from LIVESTAGE_SECRET_KEY so none is needed."""
    configured = settings.webhook_secret.get_secret_value()
    if configured:
        return configured
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, b"livestage-hms-webhook", hashlib.sha256).hexdigest()


# Open event streams get a keep-alive comment this often (proxies close idle connections).
SSE_HEARTBEAT_SECONDS = 15.0


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    box: SecretBox
    provider: StreamingProvider | None = None
    clock: Clock = field(default=utc_now)
    broker: LiveBroker = field(default_factory=LiveBroker)
    worker: TrackingWorker | None = None
    inbox: InboxWriter = field(init=False)
    read_sessionmaker: async_sessionmaker[AsyncSession] = field(init=False)
    watch_cache: WatchCache = field(default_factory=WatchCache)
    joins: JoinRecorder = field(init=False)

    def __post_init__(self) -> None:
        self.read_sessionmaker = create_read_sessionmaker(self.engine)
        self.inbox = InboxWriter(self.sessionmaker, clock=self.clock)
        self.joins = JoinRecorder(self.sessionmaker)
        self.broker.on_publish(self.watch_cache.invalidate)

    @property
    def tracking_config(self) -> TrackingConfig:
        return TrackingConfig(
            broadcaster_role=self.settings.hms_broadcaster_role,
            reconnect_grace=timedelta(seconds=self.settings.reconnect_grace_seconds),
        )

    @property
    def webhook_policy(self) -> WebhookPolicy:
        s = self.settings
        networks = [n.strip() for n in s.webhook_allowed_networks.split(",") if n.strip()]
        return WebhookPolicy(
            secret_header=WEBHOOK_SECRET_HEADER,
            secret=self.webhook_secret,
            hmac_secret=s.webhook_hmac_secret.get_secret_value() or None,
            allowed_networks=networks,
        )

    def start_worker(self) -> TrackingWorker:
        self.worker = TrackingWorker(
            self.sessionmaker,
            self.tracking_config,
            clock=self.clock,
            broker=self.broker,
            provider=self.provider,
            poll_seconds=self.settings.worker_poll_seconds,
            reconcile_seconds=self.settings.reconcile_interval_seconds,
            inbox=self.inbox,
        )
        self.inbox.start()
        self.joins.start()
        self.broker.start(heartbeat_seconds=SSE_HEARTBEAT_SECONDS)
        if self.settings.worker_enabled:
            self.worker.start()
            self.worker.notify()
        return self.worker

    @property
    def throttle_policy(self) -> ThrottlePolicy:
        s = self.settings
        return ThrottlePolicy(
            max_failures=s.login_max_failures,
            window=timedelta(seconds=s.login_window_seconds),
            lockout=timedelta(seconds=s.login_lockout_seconds),
        )

    @property
    def webhook_secret(self) -> str:
        return webhook_secret(self.settings)

    @property
    def go_live_config(self) -> GoLiveConfig:
        s = self.settings
        webhook = None
        if s.public_url:
            webhook = WebhookTarget(
                url=f"{s.public_url}/webhooks/100ms",
                headers={WEBHOOK_SECRET_HEADER: self.webhook_secret},
            )
        return GoLiveConfig(
            provider=self.provider,
            box=self.box,
            token_policy=self.token_policy,
            broadcaster_role=s.hms_broadcaster_role,
            viewer_role=s.hms_viewer_role,
            auth_url=s.hms_auth_url,
            webhook=webhook,
        )

    @property
    def token_policy(self) -> TokenPolicy:
        s = self.settings
        return TokenPolicy(
            access_key=s.hms_access_key or None,
            app_secret=s.hms_app_secret.get_secret_value() or None,
            expiring_soon=timedelta(hours=s.token_expiring_soon_hours),
        )
