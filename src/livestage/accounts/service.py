"""Accounts: creating users, signing in (password + TOTP for admins), sessions, throttling."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from livestage.accounts import passwords, throttle, totp
from livestage.accounts.repository import SessionRepository, ThrottleRepository, UserRepository
from livestage.audit.service import Actor, audit
from livestage.errors import BadRequest, Conflict, NotFound, TooManyRequests, Unauthorized
from livestage.kit.crypto import SecretBox, random_token, sha256_hex
from livestage.models import LoginThrottle, User, UserRole, UserSession

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class LoginFailed(Unauthorized):
    keeps_changes = True

    def __init__(self) -> None:
        super().__init__("Email, password or secret key is incorrect.")


class LoginLocked(TooManyRequests):
    keeps_changes = True

    def __init__(self, remaining: timedelta) -> None:
        minutes = max(1, -(-int(remaining.total_seconds()) // 60))
        super().__init__(
            f"Too many failed sign-in attempts. Try again in {minutes} minute"
            f"{'s' if minutes != 1 else ''}."
        )


@dataclass(frozen=True, slots=True)
class NewAdmin:
    user: User
    totp_secret: str
    provisioning_uri: str


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL.match(email) or len(email) > 320:
        raise BadRequest("Enter a valid email address, like name@example.com.")
    return email


class AccountService:
    async def create_user(
        self,
        session: AsyncSession,
        *,
        email: str,
        password: str,
        display_name: str,
        role: UserRole,
        totp_secret_encrypted: str | None = None,
    ) -> User:
        email = normalize_email(email)
        if problem := passwords.password_problem(password):
            raise BadRequest(problem)
        display_name = display_name.strip()
        if not 1 <= len(display_name) <= 120:
            raise BadRequest("Name must be between 1 and 120 characters.")
        users = UserRepository(session)
        if await users.get_by_email(email) is not None:
            raise Conflict(f"An account with the email {email} already exists.")
        password_hash = await passwords.hash_off_loop(password)
        return await users.add(
            User(
                email=email,
                display_name=display_name,
                password_hash=password_hash,
                role=role,
                totp_secret_encrypted=totp_secret_encrypted,
            )
        )

    async def create_admin(
        self, session: AsyncSession, box: SecretBox, *, email: str, password: str, name: str
    ) -> NewAdmin:
        secret = totp.new_secret()
        user = await self.create_user(
            session,
            email=email,
            password=password,
            display_name=name,
            role=UserRole.admin,
            totp_secret_encrypted=box.encrypt(secret),
        )
        return NewAdmin(user, secret, totp.provisioning_uri(secret, user.email))

    async def authenticate(
        self,
        session: AsyncSession,
        box: SecretBox,
        policy: throttle.ThrottlePolicy,
        *,
        email: str,
        password: str,
        totp_code: str | None,
        role: UserRole,
        ip: str | None,
        now: datetime,
    ) -> User:
        """Check every factor; count failures per email and per IP; lock after too many."""
        email = email.strip().lower()
        keys = [f"email:{email}"] + ([f"ip:{ip}"] if ip else [])
        throttles = ThrottleRepository(session)
        anonymous = Actor(None, ip)
        for key in keys:
            row = await throttles.get(key)
            if remaining := throttle.locked_for(_state(row), now):
                await audit.record(session, anonymous, "login.locked", now=now, claimed_email=email)
                raise LoginLocked(remaining)

        user = await UserRepository(session).get_by_email(email)
        password_ok = await passwords.verify_off_loop(
            user.password_hash if user else None, password
        )
        factors_ok = user is not None and password_ok and user.role == role
        if factors_ok and role == UserRole.admin:
            factors_ok = user is not None and self._second_factor_ok(user, box, totp_code, now)
        if user is None or not factors_ok:
            await self._record_failure(throttles, keys, policy, now)
            await audit.record(
                session, anonymous, "login.failed", now=now, claimed_email=email, role=role.value
            )
            raise LoginFailed()

        await throttles.clear(f"email:{email}")
        await audit.record(session, Actor(user, ip), "login", now=now, role=role.value)
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = await passwords.hash_off_loop(password)
        user.last_login_at = now
        return user

    def _second_factor_ok(
        self, user: User, box: SecretBox, code: str | None, now: datetime
    ) -> bool:
        if not code or user.totp_secret_encrypted is None:
            return False
        secret = box.decrypt(user.totp_secret_encrypted)
        step = totp.matching_step(secret, code, now, last_step=user.totp_last_step)
        if step is None:
            return False
        user.totp_last_step = step
        return True

    async def _record_failure(
        self,
        throttles: ThrottleRepository,
        keys: list[str],
        policy: throttle.ThrottlePolicy,
        now: datetime,
    ) -> None:
        for key in keys:
            row = await throttles.get(key)
            state = throttle.after_failure(_state(row), policy, now)
            row = row or LoginThrottle(key=key, window_started_at=now)
            row.failures = state.failures
            row.window_started_at = state.window_started_at
            row.locked_until = state.locked_until
            await throttles.save(row)

    async def start_session(
        self, session: AsyncSession, user: User, *, ip: str | None, now: datetime, ttl: timedelta
    ) -> tuple[str, UserSession]:
        raw = random_token()
        record = UserSession(
            token_hash=sha256_hex(raw),
            user_id=user.id,
            created_at=now,
            expires_at=now + ttl,
            ip=ip,
        )
        record.user = user
        await SessionRepository(session).add(record)
        return raw, record

    async def resolve_session(
        self, session: AsyncSession, raw_token: str, *, now: datetime
    ) -> UserSession | None:
        record = await SessionRepository(session).get_by_token_hash(sha256_hex(raw_token))
        if record is None or record.expires_at <= now:
            return None
        return record

    async def end_session(self, session: AsyncSession, record: UserSession) -> None:
        await SessionRepository(session).delete(record)

    async def current_totp_code(
        self, session: AsyncSession, box: SecretBox, *, email: str, now: datetime
    ) -> str:
        """An admin's secret-key code right now (for the operator at the server's console)."""
        user = await UserRepository(session).get_by_email(normalize_email(email))
        if user is None or user.role != UserRole.admin or user.totp_secret_encrypted is None:
            raise NotFound("No admin with this email.")
        return totp.code_at(box.decrypt(user.totp_secret_encrypted), now)

    async def reencrypt_secrets(self, session: AsyncSession, box: SecretBox) -> int:
        """Re-encrypt TOTP secrets with the primary key (after a key rotation)."""
        users = await UserRepository(session).list_with_totp()
        for user in users:
            assert user.totp_secret_encrypted is not None
            user.totp_secret_encrypted = box.rotate(user.totp_secret_encrypted)
        await session.flush()
        return len(users)


def _state(row: LoginThrottle | None) -> throttle.ThrottleState | None:
    if row is None:
        return None
    return throttle.ThrottleState(row.failures, row.window_started_at, row.locked_until)


account = AccountService()
