"""Sign-in and sign-out, as pages and as JSON."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from livestage.accounts.schemas import CsrfResponse, LoginRequest, LoginResponse, UserRead
from livestage.accounts.service import account as account_service
from livestage.errors import LivestageError
from livestage.models import User, UserRole, UserSession
from livestage.web.context import AppContext
from livestage.web.deps import (
    SESSION_COOKIE,
    Ctx,
    DbSession,
    Now,
    OptionalUserSession,
    client_ip,
    csrf_token_for,
)
from livestage.web.templating import render

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/auth", tags=["auth"])

HOME = {UserRole.admin: "/admin/influencers", UserRole.influencer: "/influencer/live"}
LOGIN_TEMPLATES = {UserRole.admin: "admin/login.html", UserRole.influencer: "login.html"}


def _safe_next(target: str | None, role: UserRole) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return HOME[role]


def _set_session_cookie(response: Response, ctx: AppContext, raw: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        raw,
        max_age=ctx.settings.session_ttl_hours * 3600,
        httponly=True,
        secure=ctx.settings.cookie_secure,
        samesite="lax",
        path="/",
    )


async def _sign_in(
    request: Request, session: DbSession, ctx: AppContext, now: Now, form: LoginRequest
) -> tuple[str, UserSession]:
    user: User = await account_service.authenticate(
        session,
        ctx.box,
        ctx.throttle_policy,
        email=form.email,
        password=form.password,
        totp_code=form.totp_code,
        role=form.role,
        ip=client_ip(request),
        now=now,
    )
    ttl = timedelta(hours=ctx.settings.session_ttl_hours)
    return await account_service.start_session(
        session, user, ip=client_ip(request), now=now, ttl=ttl
    )


async def _login_page_post(
    request: Request, session: DbSession, ctx: AppContext, now: Now, form: LoginRequest, next_: str
) -> Response:
    try:
        raw, _record = await _sign_in(request, session, ctx, now, form)
    except LivestageError as error:
        context = {"error": error.message, "email": form.email, "next": next_}
        return render(request, LOGIN_TEMPLATES[form.role], context, status_code=error.status_code)
    response = RedirectResponse(_safe_next(next_, form.role), status_code=303)
    _set_session_cookie(response, ctx, raw)
    return response


@pages.get("/admin/login")
async def admin_login_page(request: Request, next: str = "") -> Response:
    return render(request, "admin/login.html", {"next": next})


@pages.post("/admin/login")
async def admin_login(
    request: Request,
    session: DbSession,
    ctx: Ctx,
    now: Now,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    totp_code: Annotated[str, Form(max_length=16)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    form = LoginRequest(email=email, password=password, totp_code=totp_code, role=UserRole.admin)
    return await _login_page_post(request, session, ctx, now, form, next)


@pages.get("/login")
async def influencer_login_page(request: Request, next: str = "") -> Response:
    return render(request, "login.html", {"next": next})


@pages.post("/login")
async def influencer_login(
    request: Request,
    session: DbSession,
    ctx: Ctx,
    now: Now,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    form = LoginRequest(email=email, password=password, role=UserRole.influencer)
    return await _login_page_post(request, session, ctx, now, form, next)


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
    request: Request, session: DbSession, ctx: Ctx, now: Now, body: LoginRequest
) -> Response:
    raw, record = await _sign_in(request, session, ctx, now, body)
    user = record.user
    payload = LoginResponse(
        user=UserRead(id=user.id, email=user.email, name=user.display_name, role=user.role),
        csrf_token=record.csrf_token,
    )
    response = Response(payload.model_dump_json(), media_type="application/json")
    _set_session_cookie(response, ctx, raw)
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
