"""Typed async client for the 100ms REST API v2 and its room-code token endpoint."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
import structlog
from pydantic import BaseModel, ValidationError

from livestage.kit import deadlines
from livestage.kit.time import Clock, rfc3339, utc_now
from livestage.kit.waits import waiting
from livestage.providers.hms.errors import (
    HmsDeadlineExceeded,
    HmsError,
    HmsResponseError,
    HmsTransientError,
    error_from_response,
    redact,
)
from livestage.providers.hms.metrics import CALL_ERRORS, CALL_SECONDS, call_name
from livestage.providers.hms.schemas import (
    ActivePeer,
    ActivePeers,
    ActiveRoom,
    EndRoom,
    HmsModel,
    LiveStream,
    LiveStreamPage,
    LiveStreamRecording,
    LiveStreamStart,
    Page,
    PublishParams,
    RemovePeers,
    Room,
    RoomCode,
    RoomCodeList,
    RoomCodePage,
    RoomCreate,
    RoomPage,
    RoomUpdate,
    Session,
    SessionPage,
    SubscribeParams,
    Template,
    TemplateCreate,
    TemplatePage,
    TemplateRole,
    TokenReply,
    WebhookConfig,
    WebhookHistory,
)
from livestage.providers.hms.tokens import TokenSource

DEFAULT_API_URL = "https://api.100ms.live/v2"
DEFAULT_AUTH_URL = "https://auth.100ms.live/v2"
MAX_PAGE_SIZE = 100

Sleep = Callable[[float], Awaitable[None]]
Backoff = Callable[[int], float]
M = TypeVar("M", bound=BaseModel)

log = structlog.get_logger()


def exponential_backoff(
    attempt: int, *, base: float = 0.5, cap: float = 8.0, rand: Callable[[], float] = random.random
) -> float:
    """Seconds before retry `attempt` (0-based): doubling, capped, with half of it jittered."""
    ceiling = min(cap, base * 2.0**attempt)
    return ceiling / 2 + rand() * ceiling / 2


def _segment(value: str) -> str:
    return quote(value, safe="")


class _RoomCodeUpdate(HmsModel):
    code: str
    enabled: bool


class _TokenRequest(HmsModel):
    code: str
    user_id: str | None = None


class HmsClient:
    """One method per 100ms call, over one `httpx.AsyncClient`.

    Every management call carries a bearer token from `token_source`. Transient failures
    (timeouts, connection errors, 429, 5xx) are retried `max_retries` times with jittered
    exponential backoff, or after `Retry-After` when 100ms sends one no longer than
    `max_retry_after`. A 401/403 re-mints the token once and retries once. Inside a caller's
    budget (`kit.deadlines.within`) attempts and back-offs stop at its deadline. Raises the
    `HmsError` tree; a token source that cannot produce a token raises `TokenBuildError`.
    """

    def __init__(
        self,
        *,
        token_source: TokenSource,
        base_url: str = DEFAULT_API_URL,
        auth_url: str = DEFAULT_AUTH_URL,
        timeout: float = 10.0,
        max_retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        backoff: Backoff = exponential_backoff,
        max_retry_after: float = 30.0,
        clock: Clock = utc_now,
    ) -> None:
        self._tokens = token_source
        self._auth_url = auth_url.rstrip("/")
        self._max_retries = max_retries
        self._sleep = sleep
        self._backoff = backoff
        self._max_retry_after = max_retry_after
        self._clock = clock
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "livestage"},
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # Rooms

    async def create_room(
        self,
        name: str,
        *,
        description: str | None = None,
        template_id: str | None = None,
        webhook: WebhookConfig | None = None,
        region: str | None = None,
        size: int | None = None,
        max_duration_seconds: int | None = None,
        large_room: bool | None = None,
    ) -> Room:
        """Create the room, or update and return the existing room with this name (upsert)."""
        body = RoomCreate(
            name=name,
            description=description,
            template_id=template_id,
            webhook=webhook,
            region=region,
            size=size,
            max_duration_seconds=max_duration_seconds,
            large_room=large_room,
        )
        return await self._post("/rooms", Room, body)

    async def get_room(self, room_id: str) -> Room:
        return await self._get(f"/rooms/{_segment(room_id)}", Room)

    async def list_rooms(
        self,
        *,
        enabled: bool | None = None,
        name: str | None = None,
        template_id: str | None = None,
        limit: int | None = None,
        start: str | None = None,
    ) -> Page[Room]:
        params = {"enabled": enabled, "name": name, "template_id": template_id}
        return await self._get("/rooms", RoomPage, {**params, "limit": limit, "start": start})

    def iter_rooms(
        self, *, enabled: bool | None = None, name: str | None = None
    ) -> AsyncIterator[Room]:
        return self._paginate("/rooms", RoomPage, {"enabled": enabled, "name": name})

    async def update_room(self, room_id: str, update: RoomUpdate) -> Room:
        return await self._post(f"/rooms/{_segment(room_id)}", Room, update)

    async def set_room_enabled(self, room_id: str, enabled: bool) -> Room:
        return await self.update_room(room_id, RoomUpdate(enabled=enabled))

    # Room codes

    async def create_room_codes(self, room_id: str) -> list[RoomCode]:
        """One new code for every role of the room's template."""
        reply = await self._post(f"/room-codes/room/{_segment(room_id)}", RoomCodeList)
        return reply.data

    async def create_room_code_for_role(self, room_id: str, role: str) -> RoomCode:
        path = f"/room-codes/room/{_segment(room_id)}/role/{_segment(role)}"
        return await self._post(path, RoomCode)

    async def list_room_codes(
        self, room_id: str, *, enabled: bool | None = None, role: str | None = None
    ) -> list[RoomCode]:
        path = f"/room-codes/room/{_segment(room_id)}"
        pages = self._paginate(path, RoomCodePage, {"enabled": enabled, "role": role})
        return [code async for code in pages]

    async def set_room_code_enabled(self, code: str, enabled: bool) -> RoomCode:
        return await self._post(
            "/room-codes/code", RoomCode, _RoomCodeUpdate(code=code, enabled=enabled)
        )

    async def exchange_room_code(self, code: str, user_id: str | None = None) -> str:
        """The auth token 100ms issues for a room code (the call browsers make; no bearer)."""
        body = _TokenRequest(code=code, user_id=user_id)
        url = f"{self._auth_url}/token"
        response = await self._request("POST", url, body=body, authenticated=False)
        return _parse(TokenReply, response).token

    # Active rooms

    async def get_active_room(self, room_id: str) -> ActiveRoom:
        return await self._get(f"/active-rooms/{_segment(room_id)}", ActiveRoom)

    async def list_active_peers(
        self, room_id: str, *, role: str | None = None, user_id: str | None = None
    ) -> list[ActivePeer]:
        path = f"/active-rooms/{_segment(room_id)}/peers"
        reply = await self._get(path, ActivePeers, {"role": role, "user_id": user_id})
        return list(reply.peers.values())

    async def remove_peers(
        self,
        room_id: str,
        *,
        peer_id: str | None = None,
        role: str | None = None,
        reason: str | None = None,
    ) -> None:
        if (peer_id is None) == (role is None):
            raise ValueError("remove_peers needs exactly one of peer_id or role")
        body = RemovePeers(peer_id=peer_id, role=role, reason=reason)
        await self._request("POST", f"/active-rooms/{_segment(room_id)}/remove-peers", body=body)

    async def end_room(
        self, room_id: str, *, reason: str | None = None, lock: bool = False
    ) -> None:
        """End the live session; `lock` also disables the room. 404 when nothing is live."""
        body = EndRoom(reason=reason, lock=lock)
        await self._request("POST", f"/active-rooms/{_segment(room_id)}/end-room", body=body)

    # Sessions

    async def list_sessions(
        self,
        *,
        room_id: str | None = None,
        active: bool | None = None,
        limit: int | None = None,
        start: str | None = None,
    ) -> Page[Session]:
        # The documented default for `active` contradicts the examples; send it when known.
        params = {"room_id": room_id, "active": active, "limit": limit, "start": start}
        return await self._get("/sessions", SessionPage, params)

    async def get_session(self, session_id: str) -> Session:
        return await self._get(f"/sessions/{_segment(session_id)}", Session)

    # Live streams (HLS)

    async def start_live_stream(
        self,
        room_id: str,
        *,
        meeting_url: str | None = None,
        recording: LiveStreamRecording | None = None,
    ) -> LiveStream:
        """Start HLS; 409 (`HmsConflict`) when a stream already runs in the room."""
        body = LiveStreamStart(meeting_url=meeting_url, recording=recording)
        return await self._post(f"/live-streams/room/{_segment(room_id)}/start", LiveStream, body)

    async def stop_live_streams(self, room_id: str) -> list[LiveStream]:
        path = f"/live-streams/room/{_segment(room_id)}/stop"
        return (await self._post(path, LiveStreamPage)).data

    async def stop_live_stream(self, stream_id: str) -> LiveStream:
        return await self._post(f"/live-streams/{_segment(stream_id)}/stop", LiveStream)

    async def get_live_stream(self, stream_id: str) -> LiveStream:
        return await self._get(f"/live-streams/{_segment(stream_id)}", LiveStream)

    async def list_live_streams(
        self,
        *,
        room_id: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        start: str | None = None,
    ) -> Page[LiveStream]:
        params = {"room_id": room_id, "status": status, "limit": limit, "start": start}
        return await self._get("/live-streams", LiveStreamPage, params)

    # Templates

    async def create_template(
        self,
        name: str,
        *,
        roles: Mapping[str, TemplateRole],
        settings: dict[str, Any] | None = None,
        destinations: dict[str, Any] | None = None,
    ) -> Template:
        """Create the template, or overwrite the existing one with this name."""
        body = TemplateCreate(
            name=name, roles=dict(roles), settings=settings, destinations=destinations
        )
        return await self._post("/templates", Template, body)

    async def get_template(self, template_id: str) -> Template:
        return await self._get(f"/templates/{_segment(template_id)}", Template)

    async def list_templates(
        self, *, limit: int | None = None, start: str | None = None
    ) -> Page[Template]:
        return await self._get("/templates", TemplatePage, {"limit": limit, "start": start})

    async def ensure_livestage_template(
        self,
        name: str = "livestage",
        *,
        broadcaster_role: str = "broadcaster",
        viewer_role: str = "viewer",
    ) -> Template:
        """Create or overwrite the template livestage rooms use: one broadcaster, many viewers."""
        roles = livestage_roles(broadcaster_role=broadcaster_role, viewer_role=viewer_role)
        return await self.create_template(name, roles=roles)

    # Plumbing

    async def webhook_history(
        self,
        *,
        start_time: datetime,
        end_time: datetime,
        status: str = "all",
        room_id: str | None = None,
        page: int = 1,
        limit: int = 100,
    ) -> WebhookHistory:
        """`GET /analytics/webhooks`: what 100ms sent (or failed to send) in a time range."""
        params = {
            "start_time": rfc3339(start_time),
            "end_time": rfc3339(end_time),
            "status": status,
            "room_id": room_id,
            "page": page,
            "limit": min(limit, MAX_PAGE_SIZE),
        }
        return await self._get("/analytics/webhooks", WebhookHistory, params)

    async def iter_webhook_history(
        self, *, start_time: datetime, end_time: datetime, status: str = "all"
    ) -> AsyncIterator[dict[str, Any]]:
        page = 1
        while True:
            reply = await self.webhook_history(
                start_time=start_time, end_time=end_time, status=status, page=page
            )
            for delivery in reply.data:
                yield delivery.event
            if page >= reply.pagination.total_pages or not reply.data:
                return
            page += 1

    async def _get(
        self, path: str, model: type[M], params: Mapping[str, object] | None = None
    ) -> M:
        return _parse(model, await self._request("GET", path, params=params))

    async def _post(self, path: str, model: type[M], body: BaseModel | None = None) -> M:
        return _parse(model, await self._request("POST", path, body=body))

    async def _paginate(
        self, path: str, page_model: type[Page[M]], params: Mapping[str, object]
    ) -> AsyncIterator[M]:
        start: str | None = None
        while True:
            query = {**params, "limit": MAX_PAGE_SIZE, "start": start}
            page = await self._get(path, page_model, query)
            for item in page.data:
                yield item
            if not page.has_more:
                return
            start = page.last

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, object] | None = None,
        body: BaseModel | None = None,
        authenticated: bool = True,
    ) -> httpx.Response:
        """The one way calls go out: `_attempts` under the call's Prometheus figures."""
        if path.startswith(self._auth_url):
            call = call_name(method, path.removeprefix(self._auth_url), base="auth")
        else:
            call = call_name(method, path)
        started = time.perf_counter()
        try:
            response = await self._attempts(method, path, params, body, authenticated)
        except HmsError as error:
            kind = "transient" if isinstance(error, HmsTransientError) else "permanent"
            CALL_ERRORS.labels(call, kind).inc()
            CALL_SECONDS.labels(call).observe(time.perf_counter() - started)
            raise
        CALL_SECONDS.labels(call).observe(time.perf_counter() - started)
        return response

    async def _attempts(
        self,
        method: str,
        path: str,
        params: Mapping[str, object] | None,
        body: BaseModel | None,
        authenticated: bool,
    ) -> httpx.Response:
        content = (
            body.model_dump_json(exclude_none=True, by_alias=True) if body is not None else None
        )
        query = _query(params)
        reauthenticated = False
        attempt = 0
        while True:
            token = await self._tokens.get() if authenticated else None
            outcome = await self._send(method, path, query, content, token)
            if isinstance(outcome, HmsError):
                error = outcome
            elif outcome.is_success:
                return outcome
            elif token and not reauthenticated and self._may_reauthenticate(outcome):
                reauthenticated = True
                log.info("hms.request.reauthenticate", method=method, path=path)
                await self._tokens.force_new(rejected=token)
                continue
            else:
                error = error_from_response(outcome, now=self._clock())
            delay = self._retry_delay(error, attempt)
            if delay is None or isinstance(error, HmsDeadlineExceeded):
                try:
                    raise error
                finally:
                    # This frame is in the error's traceback: keeping the error in its locals
                    # would make a cycle that only the garbage collector frees (see `_send`).
                    del error, outcome
            if (budget := deadlines.remaining()) is not None and delay >= budget:
                # A retry that cannot start before the caller's deadline only delays its answer.
                raise HmsDeadlineExceeded.during(method, path, last=error)
            log.warning(
                "hms.request.retry",
                method=method,
                path=path,
                attempt=attempt + 1,
                delay=round(delay, 3),
                status=getattr(error, "status_code", None),
            )
            await self._sleep(delay)
            attempt += 1

    async def _send(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None,
        content: str | None,
        token: str | None,
    ) -> httpx.Response | HmsError:
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content is not None:
            headers["Content-Type"] = "application/json"
        budget = deadlines.remaining()
        if budget is not None and budget <= 0:
            return HmsDeadlineExceeded.during(method, path)
        try:
            with waiting():
                async with asyncio.timeout(budget):
                    response = await self._http.request(
                        method, path, params=params, content=content, headers=headers
                    )
        except TimeoutError:
            return HmsDeadlineExceeded.during(method, path)
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            return HmsTransientError.from_exception(exc, method=method, path=path)
        except httpx.TransportError as exc:
            reason = redact(str(exc))[:200]
            return HmsError(f"100ms {method} {path}: could not send the request ({reason})")
        # httpx 0.28 binds a response's stream back to the response (encode/httpx#3733): a cycle
        # holding ~40 objects a call that only the garbage collector frees, in young collections
        # that each freed ~20,000 of them and held a go-live up by 8-12 ms (bench NOTES, s6).
        # The body is read and the stream closed, so the stream can go.
        response.stream = _READ
        return response

    def _may_reauthenticate(self, response: httpx.Response) -> bool:
        return response.status_code in (401, 403) and self._tokens.renewable

    def _retry_delay(self, error: HmsError, attempt: int) -> float | None:
        if not isinstance(error, HmsTransientError) or attempt >= self._max_retries:
            return None
        if error.retry_after is None:
            return self._backoff(attempt)
        return error.retry_after if error.retry_after <= self._max_retry_after else None


def livestage_roles(*, broadcaster_role: str, viewer_role: str) -> dict[str, TemplateRole]:
    """Roles for one publisher and an audience; unlisted settings take 100ms's defaults."""
    broadcaster = TemplateRole(
        name=broadcaster_role,
        publish_params=PublishParams(allowed=["audio", "video", "screen"]),
        permissions={
            "endRoom": True,
            "hlsStreaming": True,
            "browserRecording": False,
            "rtmpStreaming": False,
        },
        priority=1,
        max_peer_count=1,
    )
    viewer = TemplateRole(
        name=viewer_role,
        publish_params=PublishParams(allowed=[]),
        subscribe_params=SubscribeParams(subscribe_to_roles=[broadcaster_role]),
        permissions={"hlsStreaming": False, "browserRecording": False, "rtmpStreaming": False},
        priority=2,
        max_peer_count=0,
    )
    return {broadcaster_role: broadcaster, viewer_role: viewer}


_READ = httpx.ByteStream(b"")


def _query(params: Mapping[str, object] | None) -> dict[str, str] | None:
    if not params:
        return None
    query = {}
    for key, value in params.items():
        if value is None:
            continue
        query[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return query


def _parse(model: type[M], response: httpx.Response) -> M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        # Field locations only: the rejected values could include a token.
        where = ", ".join(".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors())
        request = response.request
        raise HmsResponseError(
            f"100ms {request.method} {request.url.path} sent an unexpected body ({where})"
        ) from None
