"""Who is asking: the session cookie, the signed-in user's role, the CSRF token a request must
echo, and the accounts configuration built once by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, cast

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from livestage.accounts.service import account as account_service
from livestage.accounts.throttle import ThrottlePolicy
from livestage.audit.service import Actor
from livestage.config import Settings
from livestage.errors import Forbidden, SignInRequired
from livestage.kit.crypto import SecretBox, csrf_token_of
from livestage.models import User, UserRole, UserSession
from livestage.web.csrf import (
    CSRF_COOKIE,
    UNSAFE_METHODS,
    check_csrf,
    pre_login_token,
    submitted_token,
)
from livestage.web.deps import DbSession, Now, ReadSessions, client_ip
from livestage.web.templating import SignedIn

SESSION_COOKIE = "livestage_session"
LOGIN_PAGES = {UserRole.admin: "/admin/login", UserRole.influencer: "/login"}
CSRF_EXEMPT_PREFIXES = ("/webhooks/",)


@dataclass(frozen=True, slots=True)
class AccountsConfig:
    box: SecretBox
    throttle: ThrottlePolicy
    session_ttl: timedelta
    cookie_secure: bool

    @classmethod
    def from_settings(cls, settings: Settings, box: SecretBox) -> AccountsConfig:
        throttle = ThrottlePolicy(
            max_failures=settings.login_max_failures,
            window=timedelta(seconds=settings.login_window_seconds),
            lockout=timedelta(seconds=settings.login_lockout_seconds),
        )
        ttl = timedelta(hours=settings.session_ttl_hours)
        return cls(box, throttle, ttl, settings.cookie_secure)


async def get_accounts_config(connection: HTTPConnection) -> AccountsConfig:
    return cast(AccountsConfig, connection.app.state.livestage.accounts)


AccountsDep = Annotated[AccountsConfig, Depends(get_accounts_config)]


async def get_user_session(request: Request, session: DbSession, now: Now) -> UserSession | None:
    if hasattr(request.state, "user_session"):
        cached: UserSession | None = request.state.user_session
        return cached
    raw = request.cookies.get(SESSION_COOKIE)
    record = await account_service.resolve_session(session, raw, now=now) if raw else None
    request.state.user_session = record
    if record is not None and raw:
        user = record.user
        request.state.signed_in = SignedIn(
            user.email, user.role.value, user.display_name, csrf_token_of(raw)
        )
    return record


OptionalUserSession = Annotated[UserSession | None, Depends(get_user_session)]


class NotSignedIn(SignInRequired):
    def __init__(self, role: UserRole) -> None:
        super().__init__(LOGIN_PAGES[role])
        self.role = role


def _require(role: UserRole):  # type: ignore[no-untyped-def]
    async def dependency(user_session: OptionalUserSession) -> User:
        if user_session is None:
            raise NotSignedIn(role)
        if user_session.user.role != role:
            raise Forbidden(f"This page is for {role.value}s only.")
        return user_session.user

    return dependency


CurrentAdmin = Annotated[User, Depends(_require(UserRole.admin))]
CurrentInfluencer = Annotated[User, Depends(_require(UserRole.influencer))]


async def get_actor(request: Request, user_session: OptionalUserSession) -> Actor:
    return Actor(user_session.user if user_session else None, client_ip(request))


ActorDep = Annotated[Actor, Depends(get_actor)]


def csrf_token_for(request: Request, signed_in: UserSession | None) -> str:
    """The token forms and scripts must send back: the session's, or the pre-login cookie's."""
    raw = request.cookies.get(SESSION_COOKIE)
    return csrf_token_of(raw) if signed_in is not None and raw else pre_login_token(request)


async def signed_in_session(
    connection: HTTPConnection, reads: async_sessionmaker[AsyncSession], now: datetime
) -> UserSession | None:
    """The session the cookie names, read in a read-only session of its own, which never waits
    for the writer. Read once per request: the CSRF check and the route's own dependency
    both ask (on go-live the second read was an eighth of the server's own time)."""
    if not (raw := connection.cookies.get(SESSION_COOKIE)):
        return None
    state = connection.state
    if getattr(state, "read_session_token", None) == raw:
        cached: UserSession | None = state.read_user_session
        return cached
    async with reads() as session:
        record = await account_service.resolve_session(session, raw, now=now)
    state.read_session_token, state.read_user_session = raw, record
    return record


async def check_request_csrf(
    request: Request, reads: async_sessionmaker[AsyncSession], now: datetime
) -> UserSession | None:
    """The request must echo the signed-in session's token, else the pre-login cookie's.
    Returns the signed-in session, so a caller that needs it reads it once."""
    record = await signed_in_session(request, reads, now)
    raw = request.cookies.get(SESSION_COOKIE)
    expected = csrf_token_of(raw) if record and raw else request.cookies.get(CSRF_COOKIE)
    check_csrf(expected, await submitted_token(request))
    return record


async def csrf_protect(request: Request, reads: ReadSessions, now: Now) -> None:
    """Every state-changing request must echo the CSRF token (form field or header).

    Safe methods cost nothing: no database session is opened for them (on SQLite every
    request session queues on the one writer)."""
    if request.method not in UNSAFE_METHODS or request.url.path.startswith(CSRF_EXEMPT_PREFIXES):
        return
    await check_request_csrf(request, reads, now)
