"""The emulator's ASGI app: `/v2` (management API), `/auth/v2` (room-code exchange) and
`/_emulator` (control). Every `/v2` and `/auth` request is logged and may be hit by a fault."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hms_emulator import (
    control,
    history,
    live_streams,
    peers,
    room_codes,
    rooms,
)
from hms_emulator.config import EmulatorConfig
from hms_emulator.errors import ApiError, token_error
from hms_emulator.faults import (
    FAULT_HEADER,
    Fault,
    fault_from_header,
    hold_until_timeout,
    send_status_fault,
)
from hms_emulator.runtime import Emulator
from hms_emulator.state import RequestRecord
from hms_emulator.tokens import TokenRejected, bearer_token, verify_token

CONTROL_PREFIX = "/_emulator"


class ManagementAuth:
    """Rejects `/v2` calls without a valid management token, as 100ms does, before routing."""

    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            emu = self.emulator
            try:
                token = bearer_token(Headers(scope=scope).get("authorization"))
                verify_token(token, emu.config, now=emu.now(), kind="management")
            except TokenRejected as exc:
                error = token_error(exc.reason)
                await JSONResponse(error.body(), status_code=401)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class FaultsAndLog:
    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        status, fault, received_at = 500, None, self.emulator.now()
        try:
            fault = self._fault_for(scope)
            status = await self._serve(fault, scope, receive, send)
        except ApiError as error:
            status = error.status
            await JSONResponse(error.body(), status_code=error.status)(scope, receive, send)
        finally:
            self._record(scope, status, fault, received_at)

    async def _serve(self, fault: Fault | None, scope: Scope, receive: Receive, send: Send) -> int:
        if fault is not None and fault.kind == "status":
            return await send_status_fault(fault, send, scope["path"])
        if fault is not None and fault.kind == "timeout":
            return await hold_until_timeout(fault, receive, send)
        if fault is not None:
            await asyncio.sleep(fault.seconds)
        status = 500

        async def note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, note)
        return status

    def _fault_for(self, scope: Scope) -> Fault | None:
        header = Headers(scope=scope).get(FAULT_HEADER)
        default_timeout = self.emulator.config.timeout_fault_seconds
        if header:
            return fault_from_header(header, default_timeout=default_timeout)
        if scope["method"] == "OPTIONS":
            return None
        return self.emulator.faults.take(scope["method"], scope["path"])

    def _record(
        self, scope: Scope, status: int, fault: Fault | None, received_at: datetime
    ) -> None:
        jti, exp = _token_claims(Headers(scope=scope).get("authorization"))
        self.emulator.state.requests.append(
            RequestRecord(
                method=scope["method"],
                path=scope["path"],
                query=scope.get("query_string", b"").decode("latin-1"),
                status=status,
                fault=fault.describe() if fault else None,
                token_jti=jti,
                token_exp=exp,
                received_at=received_at,
                timestamp=self.emulator.now(),
            )
        )


def _token_claims(authorization: str | None) -> tuple[str | None, int | None]:
    """Unverified peek at the bearer token, so tests can see which token each call carried."""
    try:
        claims: dict[str, Any] = jwt.decode(
            bearer_token(authorization), options={"verify_signature": False}
        )
    except (TokenRejected, jwt.InvalidTokenError):
        return None, None
    jti, exp = claims.get("jti"), claims.get("exp")
    return (
        jti if isinstance(jti, str) else None,
        int(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None,
    )


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    body = {"code": exc.status_code, "message": exc.detail.lower()}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"code": 500, "message": "internal server error"}, status_code=500)


def create_emulator_app(config: EmulatorConfig) -> Starlette:
    emulator = Emulator(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await emulator.aclose()

    cors = Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"])
    api_routes = (
        rooms.routes + room_codes.routes + peers.routes + live_streams.routes + history.routes
    )
    app = Starlette(
        routes=[
            Mount("/v2", routes=api_routes, middleware=[Middleware(ManagementAuth, emulator)]),
            Mount("/auth", routes=room_codes.auth_routes, middleware=[cors]),
            Mount(f"{CONTROL_PREFIX}/hls", routes=live_streams.playlist_routes, middleware=[cors]),
            Mount(CONTROL_PREFIX, routes=control.routes),
        ],
        middleware=[Middleware(FaultsAndLog, emulator)],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
        lifespan=lifespan,
    )
    app.state.emulator = emulator
    return app
