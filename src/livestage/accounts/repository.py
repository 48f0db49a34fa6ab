from __future__ import annotations

import uuid

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from livestage.models import LoginThrottle, User, UserSession


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_email(self, email: str) -> User | None:
        return await self.session.scalar(select(User).where(User.email == email))

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user

    async def list_with_totp(self) -> list[User]:
        statement = select(User).where(User.totp_secret_encrypted.is_not(None))
        return list(await self.session.scalars(statement))


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_token_hash(self, token_hash: str) -> UserSession | None:
        return await self.session.scalar(_SESSION_BY_TOKEN_HASH, {"token_hash": token_hash})

    async def add(self, user_session: UserSession) -> UserSession:
        self.session.add(user_session)
        await self.session.flush()
        return user_session

    async def delete(self, user_session: UserSession) -> None:
        await self.session.delete(user_session)


class ThrottleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, key: str) -> LoginThrottle | None:
        return await self.session.get(LoginThrottle, key)

    async def save(self, throttle: LoginThrottle) -> None:
        self.session.add(throttle)
        await self.session.flush()

    async def clear(self, key: str) -> None:
        await self.session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))


# Every signed-in request reads its session: the statement is built once, not per request.
_SESSION_BY_TOKEN_HASH = select(UserSession).where(
    UserSession.token_hash == bindparam("token_hash")
)
