"""Request dependencies: the transaction, the clock, the signed-in user, CSRF."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from livestage.accounts.service import account as account_service
from livestage.audit.service import Actor
from livestage.db import write_gate
from livestage.errors import Forbidden, LivestageError, Unauthorized
from livestage.kit.crypto import constant_time_equals, random_token
from livestage.kit.db import discard_after_commit, run_after_commit
from livestage.models import User, UserRole, UserSession
from livestage.providers.base import StreamingProvider
from livestage.web.context import AppContext

SESSION_COOKIE = "livestage_session"
CSRF_COOKIE = "livestage_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
CSRF_EXEMPT_PREFIXES = ("/webhooks/",)


# Dependencies are `async def` even when they never await: FastAPI runs plain `def` ones in a
# worker thread, a round trip that cost every request more than the work itself (bench/).
async def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]


async def get_db_session(ctx: Ctx) -> AsyncIterator[AsyncSession]:
    """One transaction per request: commit on success, roll back on error."""
    async with write_gate(ctx.engine), ctx.sessionmaker() as session:
        try:
            yield session
        except LivestageError as error:
            await (session.commit() if error.keeps_changes else session.rollback())
            discard_after_commit(session)
            raise
        except BaseException:
            await session.rollback()
            discard_after_commit(session)
            raise
        else:
            await session.commit()
            run_after_commit(session)


DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]


async def get_now(ctx: Ctx) -> datetime:
    return ctx.clock()


Now = Annotated[datetime, Depends(get_now)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def get_user_session(request: Request, session: DbSession, now: Now) -> UserSession | None:
    if hasattr(request.state, "user_session"):
        cached: UserSession | None = request.state.user_session
        return cached
    raw = request.cookies.get(SESSION_COOKIE)
    record = await account_service.resolve_session(session, raw, now=now) if raw else None
    request.state.user_session = record
    if record is not None:
        request.state.signed_in = SignedIn(
            record.user.email, record.user.role, record.user.display_name, record.csrf_token
        )
    return record


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who is signed in, as plain values: safe to render even after a rollback."""

    email: str
    role: UserRole
    name: str
    csrf_token: str


OptionalUserSession = Annotated[UserSession | None, Depends(get_user_session)]


class NotSignedIn(Unauthorized):
    def __init__(self, role: UserRole) -> None:
        super().__init__("Sign in to continue.")
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


def csrf_token_for(request: Request, signed_in: UserSession | SignedIn | None) -> str:
    """The token forms and scripts must send back: the session's, or the pre-login cookie's."""
    if signed_in is not None:
        return signed_in.csrf_token
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf_cookie", None)
    if token is None:
        token = random_token(24)
        request.state.new_csrf_cookie = token
    return token


class CsrfRejected(Forbidden):
    def __init__(self) -> None:
        super().__init__(
            "The form expired or did not come from this site (CSRF check failed). "
            "Reload the page and try again."
        )


async def csrf_protect(request: Request, ctx: Ctx, now: Now) -> None:
    """Every state-changing request must echo the CSRF token (form field or header): the
    signed-in session's, or the pre-login cookie's.

    Safe methods cost nothing: no database session is opened for them (on SQLite every
    request session queues on the one writer). For the others the session row is read in a
    read-only session of its own, which never waits for the writer."""
    if request.method not in UNSAFE_METHODS or request.url.path.startswith(CSRF_EXEMPT_PREFIXES):
        return
    expected = request.cookies.get(CSRF_COOKIE)
    if raw := request.cookies.get(SESSION_COOKIE):
        async with ctx.read_sessionmaker() as session:
            record = await account_service.resolve_session(session, raw, now=now)
        expected = record.csrf_token if record else expected
    submitted = request.headers.get(CSRF_HEADER)
    if submitted is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        submitted = value if isinstance(value, str) else None
    check_csrf(expected, submitted)


def check_csrf(expected: str | None, submitted: str | None) -> None:
    if not expected or not submitted or not constant_time_equals(expected, submitted):
        raise CsrfRejected()


async def get_provider(ctx: Ctx) -> StreamingProvider | None:
    return ctx.provider


ProviderDep = Annotated[StreamingProvider | None, Depends(get_provider)]
