"""create_app(): the composition root. The lifespan builds the app's state once (`AppState`)
and each domain's dependencies read their own part of it (`web/deps.py`, `accounts/auth.py`,
`influencers/deps.py`, `streams/deps.py`, `tracking/deps.py`)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, cast

from fastapi import APIRouter, Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.telemetry import TelemetryConfig
from redis.asyncio import Redis
from starlette.types import Receive, Scope, Send

from livestage import __version__, migrate
from livestage.accounts import endpoints as accounts_endpoints
from livestage.accounts.auth import AccountsConfig, csrf_protect
from livestage.analytics import endpoints as analytics_endpoints
from livestage.analytics import metrics as analytics_metrics
from livestage.analytics import pages as analytics_pages
from livestage.analytics.auth import MetricsAccess
from livestage.chat import endpoints as chat_endpoints
from livestage.chat.broker import ChatBroker
from livestage.config import Settings
from livestage.db import Database
from livestage.influencers import endpoints as influencers_api
from livestage.influencers import pages as influencers_pages
from livestage.influencers.deps import InfluencerConfig
from livestage.influencers.service import TokenPolicy
from livestage.kit.bus import RedisBus, redis_client
from livestage.kit.crypto import SecretBox
from livestage.kit.leader import Leadership, RedisLeadership, SoleProcess
from livestage.kit.time import Clock, utc_now
from livestage.logging import configure_logging
from livestage.providers.base import StreamingProvider, WebhookTarget
from livestage.providers.factory import browser_uses_hms, build_provider
from livestage.providers.local.provider import LocalProvider
from livestage.streams import endpoints as streams_endpoints
from livestage.streams import pages as streams_pages
from livestage.streams import signalling_endpoints
from livestage.streams import thumbnails as streams_thumbnails
from livestage.streams.broker import HEARTBEAT_SECONDS, LiveBroker
from livestage.streams.joins import JoinRecorder, Viewing, WatchCache
from livestage.streams.service import GoLiveConfig, read_live_state
from livestage.streams.viewers import ViewerCookie
from livestage.tracking import endpoints as tracking_endpoints
from livestage.tracking.deps import Ingestion
from livestage.tracking.inbox import InboxWriter
from livestage.tracking.service import TrackingConfig
from livestage.tracking.verification import WebhookPolicy
from livestage.tracking.worker import TrackingWorker
from livestage.web import system
from livestage.web.docs import install_docs
from livestage.web.errors import UnexpectedErrors, install_error_handlers
from livestage.web.headers import CookieAndSecurityHeaders, ResponseHeaders, content_security_policy
from livestage.web.hms_sdk import warn_if_sdk_missing
from livestage.web.routing import FrontDoor, FrontRoutes

STATIC_DIR = Path(__file__).parent / "web" / "static"

# Every router whose unsafe requests must echo the CSRF token.
ROUTERS: tuple[APIRouter, ...] = (
    system.router,
    accounts_endpoints.pages,
    accounts_endpoints.api,
    influencers_pages.router,
    influencers_api.router,
    streams_endpoints.router,
    streams_pages.router,
    streams_thumbnails.router,
    analytics_endpoints.router,
    analytics_pages.router,
    chat_endpoints.router,
)


LIVE_CHANNEL = "livestage:live"
CHAT_CHANNEL = "livestage:chat"
LEADER_KEY = "livestage:leader"
LOCAL_ROOMS = "livestage:local"


class Livestage(FastAPI):
    """FastAPI, with its `front_door` asked first: the viewer join is answered before any of
    FastAPI's and Starlette's layers (web/routing.py)."""

    front_door: FrontDoor | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.front_door is not None:
            if (found := self.front_door.match(scope)) is not None:
                scope["app"] = self
                await self.front_door.serve(*found, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


class DatabaseNotMigrated(RuntimeError):
    pass


class CannotStart(RuntimeError):
    """The configuration cannot work; the message says what to set."""


@dataclass(frozen=True, slots=True)
class AppState:
    """Everything the app keeps between requests, built once from the settings. Each field is
    one part, typed by the package that owns it; nothing here is derived again per request."""

    settings: Settings
    clock: Clock
    database: Database
    box: SecretBox
    provider: StreamingProvider | None
    accounts: AccountsConfig
    influencers: InfluencerConfig
    go_live: GoLiveConfig
    viewing: Viewing
    broker: LiveBroker
    chat: ChatBroker
    ingestion: Ingestion
    # With Redis (a cluster): the connection, and whether this process runs the periodic jobs.
    redis: Redis | None
    leadership: Leadership
    metrics_access: MetricsAccess

    @classmethod
    def build(
        cls, settings: Settings, *, clock: Clock, provider: StreamingProvider | None
    ) -> AppState:
        if problem := settings.cluster_problem():
            raise CannotStart(problem)
        database = Database.open(settings)
        box = SecretBox(settings.secret_keys)
        token_policy = TokenPolicy.from_settings(settings)
        webhooks = WebhookPolicy.from_settings(settings)
        redis = redis_client(settings.redis_url) if settings.redis_url else None
        leadership: Leadership = SoleProcess()
        bus = chat_bus = None
        if redis is not None:
            leadership = RedisLeadership(redis, key=LEADER_KEY, ttl=settings.leader_ttl_seconds)
            bus = RedisBus(redis, f"{LIVE_CHANNEL}:{_redis_database(redis)}")
            chat_bus = RedisBus(redis, f"{CHAT_CHANNEL}:{_redis_database(redis)}", echo=True)
        broker = LiveBroker(bus=bus, refresh=partial(read_live_state, database.read_sessionmaker))
        viewing = Viewing(
            database.read_sessionmaker,
            WatchCache(),
            JoinRecorder(database.sessionmaker),
            ViewerCookie.from_settings(settings),
        )
        broker.on_publish(viewing.cache.invalidate)
        inbox = InboxWriter(database.sessionmaker, clock=clock)
        worker = TrackingWorker(
            database.sessionmaker,
            TrackingConfig.from_settings(settings),
            clock=clock,
            broker=broker,
            provider=provider,
            poll_seconds=settings.worker_poll_seconds,
            reconcile_seconds=settings.reconcile_interval_seconds,
            inbox=inbox,
            leadership=leadership,
            reads=database.read_sessionmaker,
        )
        go_live = GoLiveConfig.from_settings(
            settings,
            provider=provider,
            box=box,
            token_policy=token_policy,
            webhook=_webhook_target(settings, webhooks),
        )
        return cls(
            settings=settings,
            clock=clock,
            database=database,
            box=box,
            provider=provider,
            accounts=AccountsConfig.from_settings(settings, box),
            influencers=InfluencerConfig(
                box, token_policy, settings.hms_broadcaster_role, settings.go_live_deadline_seconds
            ),
            go_live=go_live,
            viewing=viewing,
            broker=broker,
            chat=ChatBroker(bus=chat_bus),
            ingestion=Ingestion(webhooks, inbox, worker),
            redis=redis,
            leadership=leadership,
            metrics_access=MetricsAccess.from_settings(settings),
        )

    @classmethod
    def of(cls, app: FastAPI) -> AppState:
        return cast(AppState, app.state.livestage)

    async def start(self) -> None:
        """Start the background tasks; the local provider's events go to the inbox, exactly
        where 100ms webhooks go, and its rooms are shared through Redis in a cluster."""
        self.database.start()
        if isinstance(self.provider, LocalProvider):
            self.provider.bind_events(self._store_local_event)
            if self.redis is not None:
                prefix = f"{LOCAL_ROOMS}:{_redis_database(self.redis)}"
                await self.provider.join_cluster(self.redis, prefix=prefix)
        self.ingestion.inbox.start()
        self.viewing.joins.start()
        self.broker.start(heartbeat_seconds=HEARTBEAT_SECONDS)
        self.chat.start(heartbeat_seconds=HEARTBEAT_SECONDS)
        self.leadership.start()
        if self.settings.worker_enabled:
            self.ingestion.worker.start()
            self.ingestion.worker.notify()

    async def stop(self) -> None:
        await self.ingestion.worker.stop()
        await self.leadership.stop()
        await self.ingestion.inbox.stop()
        await self.viewing.joins.stop()
        await self.broker.stop()
        await self.chat.stop()

    async def _store_local_event(self, envelope: dict[str, Any]) -> None:
        await self.ingestion.store("local", envelope)


def _redis_database(redis: Redis) -> int:
    """Pub/sub channels span Redis's databases: naming the database in every channel and key
    keeps two deployments on one Redis server apart."""
    return int(redis.connection_pool.connection_kwargs.get("db", 0))


def _webhook_target(settings: Settings, webhooks: WebhookPolicy) -> WebhookTarget | None:
    """Rooms livestage creates carry their own webhook when it has a public URL."""
    if not settings.public_url or not webhooks.secret:
        return None
    return WebhookTarget(
        url=f"{settings.public_url}/webhooks/100ms",
        headers={webhooks.secret_header: webhooks.secret},
    )


async def ensure_migrated(database: Database) -> None:
    current = await migrate.current_revision(database.engine)
    head = migrate.head_revision()
    if current != head:
        raise DatabaseNotMigrated(
            f"The database is at migration {current or 'none'} but this livestage needs {head}: "
            "run `livestage migrate` first."
        )


# The collector's young-generation threshold for a served app (CPython's default: 700). Under
# a flash crowd of viewer joins, young collections every ~300 requests took ~4.7 us of CPU a
# request (bench/results/NOTES.md, s4); at 20,000 they run ~30 times less often (0.2 us). The
# price: up to 20,000 young container objects (a few MB) wait longer to be freed when they are
# cyclic garbage.
GC_YOUNG_THRESHOLD = 20_000


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = utc_now,
    provider: StreamingProvider | None = None,
    freeze_heap: bool = False,
) -> FastAPI:
    """The web app. `freeze_heap` (for `livestage serve`): once started, everything allocated
    so far (modules, routes, schemas, mappers: about 160,000 objects) is left out of the
    garbage collector's full passes, each of which walked them all (50-140 ms, the go-live's
    and the join's slowest responses), and young collections run every GC_YOUNG_THRESHOLD
    allocations. Not for tests, which build many apps in one process: frozen objects are never
    freed."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        chosen = provider if provider is not None else build_provider(settings, clock=clock)
        state = AppState.build(settings, clock=clock, provider=chosen)
        try:
            await ensure_migrated(state.database)
            app.state.livestage = state
            await state.start()
            if freeze_heap:
                gc.freeze()
                gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
            try:
                yield
            finally:
                await state.stop()
                analytics_metrics.process_stopped()
        finally:
            if chosen is not None and provider is None:
                await chosen.aclose()
            # Last: the local provider's cluster hub records its connections' leaves in Redis
            # as it closes (closing Redis first reopened connections nobody closed).
            if state.redis is not None:
                await state.redis.aclose()
            await state.database.aclose()

    configure_logging(settings.log_level, json=settings.log_json)
    # FastAPI's native OpenTelemetry hooks look for configured providers on every request;
    # livestage exports Prometheus metrics, not OpenTelemetry, so they are off.
    telemetry: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
    # /docs is livestage's own (web/docs.py): FastAPI's loads Swagger UI from a CDN, inline.
    app = Livestage(
        title="livestage",
        version=__version__,
        lifespan=lifespan,
        telemetry=telemetry,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    if browser_uses_hms(settings):
        warn_if_sdk_missing(settings, STATIC_DIR)
    policy = content_security_policy(settings, hms_in_browser=browser_uses_hms(settings))
    headers = ResponseHeaders(cookie_secure=settings.cookie_secure, policy=policy)
    # The URLs crowds call, the viewer join (it checks CSRF itself), 100ms's webhooks, the
    # live events and the chat post, are served ahead of FastAPI's router, the join and the
    # webhooks before any middleware; FastAPI holds the same routes for the OpenAPI document.
    front_routes = [streams_endpoints.viewer_join_route, tracking_endpoints.hms_webhook_route]
    app.front_door = FrontDoor(front_routes, headers=headers)
    crowd_routes = [streams_endpoints.live_events_route, chat_endpoints.post_message_route]
    app.add_middleware(FrontRoutes, routes=crowd_routes)
    app.add_middleware(UnexpectedErrors)
    app.add_middleware(CookieAndSecurityHeaders, headers=headers)
    app.router.routes.extend([*front_routes, *crowd_routes])
    install_docs(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in ROUTERS:
        app.include_router(router, dependencies=[Depends(csrf_protect)])
    # A WebSocket authenticated by its join token (no cookie), so no CSRF dependency.
    app.include_router(signalling_endpoints.router)
    return app


def create_served_app() -> FastAPI:
    """`livestage serve`'s factory."""
    return create_app(freeze_heap=True)
