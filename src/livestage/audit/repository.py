from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Select, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from livestage.models import AuditLog
from livestage.models.keyset import Cursor, after, order


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, values: dict[str, Any]) -> None:
        """One entry, written at once as a plain INSERT (no ORM object: nothing reads it back
        in the transaction that writes it, and every go-live writes one)."""
        await self.session.execute(_INSERT_ENTRY, values)

    def list_statement(self, *, action: str | None = None) -> Select[AuditLog]:
        statement = select(AuditLog).order_by(
            *order(AuditLog.created_at, AuditLog.id, descending=True)
        )
        if action:
            statement = statement.where(AuditLog.action == action)
        return statement

    async def list(
        self, *, action: str | None, limit: int, cursor: Cursor | None = None
    ) -> list[AuditLog]:
        """Newest first, by (created_at, id): a page after `cursor` is an index range however
        long the log."""
        statement = self.list_statement(action=action)
        keyed = after(cursor, AuditLog.created_at, AuditLog.id, descending=True)
        if keyed is not None:
            statement = statement.where(keyed)
        return list(await self.session.scalars(statement.limit(limit)))


_INSERT_ENTRY = insert(cast(Table, AuditLog.__table__))
