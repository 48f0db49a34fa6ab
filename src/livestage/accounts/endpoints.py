"""Sign-in and sign-out, as pages and as JSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from livestage.accounts.auth import (
    SESSION_COOKIE,
    AccountsConfig,
    AccountsDep,
    OptionalUserSession,
    csrf_token_for,
)
from livestage.accounts.schemas import CsrfResponse, LoginRequest, LoginResponse, UserRead
from livestage.accounts.service import account as account_service
from livestage.errors import LivestageError
from livestage.kit.crypto import csrf_token_of
from livestage.models import User, UserRole, UserSession
from livestage.web.deps import DbSession, Now, client_ip
from livestage.web.errors import ERROR_RESPONSES, PageRejected
from livestage.web.templating import render

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/auth", tags=["auth"], responses=ERROR_RESPONSES)

HOME = {UserRole.admin: "/admin/influencers", UserRole.influencer: "/influencer/live"}
LOGIN_TEMPLATES = {UserRole.admin: "admin/login.html", UserRole.influencer: "login.html"}


def _safe_next(target: str | None, role: UserRole) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return HOME[role]


def _set_session_cookie(response: Response, config: AccountsConfig, raw: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        raw,
        max_age=int(config.session_ttl.total_seconds()),
        httponly=True,
        secure=config.cookie_secure,
        samesite="lax",
        path="/",
    )


async def _sign_in(
    request: Request, session: DbSession, config: AccountsConfig, now: Now, form: LoginRequest
) -> tuple[str, UserSession]:
    user: User = await account_service.authenticate(
        session,
        config.box,
        config.throttle,
        email=form.email,
        password=form.password,
        totp_code=form.totp_code,
        role=form.role,
        ip=client_ip(request),
        now=now,
    )
    return await account_service.start_session(
        session, user, ip=client_ip(request), now=now, ttl=config.session_ttl
    )


async def _login_page_post(
    request: Request,
    session: DbSession,
    config: AccountsConfig,
    now: Now,
    form: LoginRequest,
    next_: str,
) -> Response:
    try:
        raw, _record = await _sign_in(request, session, config, now, form)
    except LivestageError as error:
        context = {"email": form.email, "next": next_}
        raise PageRejected(error, LOGIN_TEMPLATES[form.role], context) from error
    response = RedirectResponse(_safe_next(next_, form.role), status_code=303)
    _set_session_cookie(response, config, raw)
    return response


@pages.get("/admin/login")
async def admin_login_page(request: Request, next: str = "") -> Response:
    return render(request, "admin/login.html", {"next": next})


@pages.post("/admin/login")
async def admin_login(
    request: Request,
    session: DbSession,
    config: AccountsDep,
    now: Now,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    totp_code: Annotated[str, Form(max_length=16)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    form = LoginRequest(email=email, password=password, totp_code=totp_code, role=UserRole.admin)
    return await _login_page_post(request, session, config, now, form, next)


@pages.get("/login")
async def influencer_login_page(request: Request, next: str = "") -> Response:
    return render(request, "login.html", {"next": next})


@pages.post("/login")
async def influencer_login(
    request: Request,
    session: DbSession,
    config: AccountsDep,
    now: Now,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    form = LoginRequest(email=email, password=password, role=UserRole.influencer)
    return await _login_page_post(request, session, config, now, form, next)


@pages.post("/logout")
async def logout(session: DbSession, user_session: OptionalUserSession) -> Response:
    target = "/"
    if user_session is not None:
        target = "/admin/login" if user_session.user.role == UserRole.admin else "/login"
        await account_service.end_session(session, user_session)
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@api.get("/csrf")
async def csrf(request: Request, user_session: OptionalUserSession) -> CsrfResponse:
    """The token to send as `X-CSRF-Token` on every state-changing request."""
    return CsrfResponse(csrf_token=csrf_token_for(request, user_session))


@api.post("/login")
async def api_login(
    request: Request, session: DbSession, config: AccountsDep, now: Now, body: LoginRequest
) -> Response:
    raw, record = await _sign_in(request, session, config, now, body)
    user = record.user
    payload = LoginResponse(
        user=UserRead(id=user.id, email=user.email, name=user.display_name, role=user.role),
        csrf_token=csrf_token_of(raw),
    )
    response = Response(payload.model_dump_json(), media_type="application/json")
    _set_session_cookie(response, config, raw)
    return response


@api.post("/logout", status_code=204)
async def api_logout(session: DbSession, user_session: OptionalUserSession) -> Response:
    if user_session is not None:
        await account_service.end_session(session, user_session)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@api.get("/me")
async def me(user_session: OptionalUserSession) -> UserRead | None:
    if user_session is None:
        return None
    user = user_session.user
    return UserRead(id=user.id, email=user.email, name=user.display_name, role=user.role)
