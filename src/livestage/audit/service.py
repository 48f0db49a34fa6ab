"""The audit trail: who did what, when, from where. Details never hold a secret."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from livestage.audit.repository import AuditRepository
from livestage.models import AuditLog, User

# The CLI and the demo seeder act from a terminal, not over HTTP: their Actor carries the
# command's name where a request's carries the client's address (`Actor(None, "cli")`).
COMMANDS = frozenset({"cli", "demo"})


@dataclass(frozen=True, slots=True)
class Actor:
    user: User | None
    ip: str | None

    @property
    def email(self) -> str | None:
        return self.user.email if self.user else None

    @property
    def via(self) -> str | None:
        """The command ("cli", "demo") for an action run from a terminal, else None."""
        return self.ip if self.user is None and self.ip in COMMANDS else None


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
        claimed_email: str | None = None,
        **details: Any,
    ) -> None:
        """`claimed_email` is who an anonymous request said it was (a sign-in attempt); it is
        never the email of the action's target, which goes in `details`."""
        if actor.via:
            details = {**details, "via": actor.via}
        await AuditRepository(session).add(
            AuditLog(
                created_at=now,
                actor_id=actor.user.id if actor.user else None,
                actor_email=actor.email or claimed_email,
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
