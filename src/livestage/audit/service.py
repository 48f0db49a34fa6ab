"""The audit trail: who did what, when, from where. Details never hold a secret."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from livestage.audit.repository import AuditRepository
from livestage.models import AuditLog, User


@dataclass(frozen=True, slots=True)
class Actor:
    user: User | None
    ip: str | None

    @property
    def email(self) -> str | None:
        return self.user.email if self.user else None


class AuditService:
    async def record(
        self,
        session: AsyncSession,
        actor: Actor,
        action: str,
        *,
        now: datetime,
        target_type: str | None = None,
        target_id: object = None,
        email: str | None = None,
        **details: Any,
    ) -> None:
        await AuditRepository(session).add(
            AuditLog(
                created_at=now,
                actor_id=actor.user.id if actor.user else None,
                actor_email=actor.email or email,
                action=action,
                target_type=target_type,
                target_id=None if target_id is None else str(target_id),
                details=details,
                ip=actor.ip,
            )
        )

    async def list(
        self, session: AsyncSession, *, action: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[AuditLog], int]:
        repository = AuditRepository(session)
        rows = await repository.list(action=action, limit=limit, offset=offset)
        return rows, await repository.count(action=action)


audit = AuditService()
