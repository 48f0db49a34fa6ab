"""The audit trail: who did what, when, from where. Details never hold a secret."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from livestage.audit.repository import AuditRepository
from livestage.models import AuditLog, User
from livestage.models.keyset import decode_cursor, encode_cursor

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
            {
                "created_at": now,
                "actor_id": actor.user.id if actor.user else None,
                "actor_email": actor.email or claimed_email,
                "action": action,
                "target_type": target_type,
                "target_id": None if target_id is None else str(target_id),
                "details": details,
                "ip": actor.ip,
            }
        )

    async def page(
        self, session: AsyncSession, *, action: str | None, limit: int, cursor: str | None
    ) -> tuple[list[AuditLog], str | None]:
        """One page after `cursor` and the cursor of the next one (None on the last)."""
        rows = await AuditRepository(session).list(
            action=action, limit=limit + 1, cursor=decode_cursor(cursor)
        )
        shown = rows[:limit]
        more = len(rows) > limit
        return shown, encode_cursor(shown[-1].created_at, shown[-1].id) if more else None


audit = AuditService()
