from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from livestage.models import AuditLog


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, entry: AuditLog) -> None:
        self.session.add(entry)
        await self.session.flush()

    def list_statement(self, *, action: str | None = None) -> Select[AuditLog]:
        statement = select(AuditLog).order_by(AuditLog.created_at.desc(), AuditLog.id)
        if action:
            statement = statement.where(AuditLog.action == action)
        return statement

    async def list(self, *, action: str | None, limit: int, offset: int) -> list[AuditLog]:
        statement = self.list_statement(action=action).limit(limit).offset(offset)
        return list(await self.session.scalars(statement))

    async def count(self, *, action: str | None) -> int:
        inner = self.list_statement(action=action).order_by(None).subquery()
        return int(await self.session.scalar(select(func.count()).select_from(inner)) or 0)
