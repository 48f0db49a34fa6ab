"""Admin management of influencers: who may stream, with which 100ms token and room code."""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from livestage.accounts.service import account as account_service
from livestage.audit.service import Actor, audit
from livestage.config import Settings
from livestage.db import Database, transaction
from livestage.errors import BadRequest, Conflict, LivestageError, NotFound, ServiceUnavailable
from livestage.influencers import tokens
from livestage.influencers.repository import InfluencerRepository
from livestage.influencers.room_codes import InvalidRoomCode, normalize_room_code
from livestage.influencers.schemas import InfluencerPage, InfluencerRead, TokenInfo
from livestage.influencers.tokens import InvalidAuthToken
from livestage.kit import deadlines
from livestage.kit.crypto import DecryptionError, SecretBox
from livestage.models import Influencer, UserRole
from livestage.models.keyset import decode_cursor, encode_cursor
from livestage.providers.base import ProviderError, StreamingProvider, browser_signalling

HANDLE = re.compile(r"^[a-z0-9_]{3,32}$")


class InvalidTokenError(LivestageError):
    status_code = 422

    def __init__(self, error: InvalidAuthToken) -> None:
        super().__init__(error.message)
        self.problem = error.problem


class InvalidRoomCodeError(LivestageError):
    status_code = 422


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """What an admin-set token is checked against (from settings)."""

    access_key: str | None
    app_secret: str | None
    expiring_soon: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenPolicy:
        return cls(
            access_key=settings.hms_access_key or None,
            app_secret=settings.hms_app_secret.get_secret_value() or None,
            expiring_soon=timedelta(hours=settings.token_expiring_soon_hours),
        )


# The provider's client stops at the deadline by itself; this catches one that does not.
BACKSTOP_SECONDS = 1.0


def _backstop() -> asyncio.Timeout:
    return asyncio.timeout((deadlines.remaining() or 0.0) + BACKSTOP_SECONDS)


def room_name_for(handle: str) -> str:
    """Deterministic, so 100ms's upsert-by-name always lands on the same room."""
    return f"livestage-{handle}"


class InfluencerService:
    async def list(
        self,
        session: AsyncSession,
        box: SecretBox,
        policy: TokenPolicy,
        *,
        now: datetime,
        limit: int,
        cursor: str | None = None,
    ) -> InfluencerPage:
        """One page, newest first, after `cursor` (a 400 if this app did not write it)."""
        repository = InfluencerRepository(session)
        # One row more than asked tells whether there is a next page.
        rows = await repository.page(limit=limit + 1, cursor=decode_cursor(cursor))
        shown, more = rows[:limit], len(rows) > limit
        live = await repository.active_stream_statuses([i.id for i in shown])
        return InfluencerPage(
            items=[self.read(i, box, policy, now=now, live_status=live.get(i.id)) for i in shown],
            next_cursor=encode_cursor(shown[-1].created_at, shown[-1].id) if more else None,
        )

    async def get(
        self, session: AsyncSession, influencer_id: uuid.UUID, *, reload: bool = False
    ) -> Influencer:
        influencer = await InfluencerRepository(session).get(influencer_id, reload=reload)
        if influencer is None:
            raise NotFound("No influencer with this id.")
        return influencer

    async def get_by_handle(self, session: AsyncSession, handle: str) -> Influencer:
        influencer = await InfluencerRepository(session).get_by_handle(handle.lower())
        if influencer is None:
            raise NotFound(f"No influencer with the handle @{handle[:40]}.")
        return influencer

    async def read_one(
        self,
        session: AsyncSession,
        influencer: Influencer,
        box: SecretBox,
        policy: TokenPolicy,
        *,
        now: datetime,
    ) -> InfluencerRead:
        live = await InfluencerRepository(session).active_stream_statuses([influencer.id])
        return self.read(influencer, box, policy, now=now, live_status=live.get(influencer.id))

    def read(
        self,
        influencer: Influencer,
        box: SecretBox,
        policy: TokenPolicy,
        *,
        now: datetime,
        live_status: str | None = None,
    ) -> InfluencerRead:
        return InfluencerRead(
            id=influencer.id,
            handle=influencer.handle,
            name=influencer.user.display_name,
            email=influencer.user.email,
            streaming_enabled=influencer.streaming_enabled,
            room_code=influencer.room_code,
            room_code_source=influencer.room_code_source,
            hms_room_id=influencer.hms_room_id,
            live_status=live_status,
            token=self.token_info(influencer, box, policy, now=now),
        )

    def token_info(
        self, influencer: Influencer, box: SecretBox, policy: TokenPolicy, *, now: datetime
    ) -> TokenInfo:
        """Status is computed now, against today's configuration, not when the token was saved."""
        problem = self._stored_token_problem(influencer, box, policy, now=now)
        status = tokens.token_status(
            influencer.token_expires_at,
            now=now,
            soon=policy.expiring_soon,
            valid=problem is None,
            verified=policy.app_secret is not None,
        )
        return TokenInfo(
            status=status,
            preview=influencer.token_preview,
            room_id=influencer.token_room_id,
            role=influencer.token_role,
            user_id=influencer.token_user_id,
            issued_at=influencer.token_issued_at,
            expires_at=influencer.token_expires_at,
            created_at=influencer.token_created_at,
            problem=problem,
        )

    def usable_token(
        self, influencer: Influencer, box: SecretBox, policy: TokenPolicy, *, now: datetime
    ) -> str | None:
        """The decrypted admin-set token when it would let the influencer join right now."""
        info = self.token_info(influencer, box, policy, now=now)
        if info.status not in tokens.USABLE:
            return None
        assert influencer.auth_token_encrypted is not None
        return box.decrypt(influencer.auth_token_encrypted)

    def _stored_token_problem(
        self, influencer: Influencer, box: SecretBox, policy: TokenPolicy, *, now: datetime
    ) -> str | None:
        if influencer.auth_token_encrypted is None:
            return None
        try:
            raw = box.decrypt(influencer.auth_token_encrypted)
        except DecryptionError:
            return "The stored token cannot be decrypted with LIVESTAGE_SECRET_KEY; set it again."
        try:
            tokens.validate_auth_token(
                raw, now=now, access_key=policy.access_key, app_secret=policy.app_secret
            )
        except InvalidAuthToken as error:
            return None if error.problem == tokens.TokenProblem.expired else error.message
        return None

    async def create(
        self,
        session: AsyncSession,
        actor: Actor,
        *,
        email: str,
        name: str,
        handle: str,
        password: str | None,
        now: datetime,
    ) -> tuple[Influencer, str | None]:
        handle = handle.strip().lstrip("@").lower()
        if not HANDLE.match(handle):
            raise BadRequest(
                "Handle must be 3–32 characters: lowercase letters, digits and underscores."
            )
        repository = InfluencerRepository(session)
        if await repository.get_by_handle(handle) is not None:
            raise Conflict(f"The handle @{handle} is taken.")
        generated = None if password else secrets.token_urlsafe(12)
        user = await account_service.create_user(
            session,
            email=email,
            password=password or generated or "",
            display_name=name,
            role=UserRole.influencer,
        )
        influencer = Influencer(user_id=user.id, handle=handle, streaming_enabled=True)
        influencer.user = user
        await repository.add(influencer)
        await audit.record(
            session,
            actor,
            "influencer.create",
            now=now,
            target_type="influencer",
            target_id=influencer.id,
            handle=handle,
            email=user.email,
        )
        return influencer, generated

    async def set_token(
        self,
        session: AsyncSession,
        actor: Actor,
        influencer: Influencer,
        raw_token: str,
        *,
        box: SecretBox,
        policy: TokenPolicy,
        now: datetime,
    ) -> Influencer:
        try:
            decoded = tokens.validate_auth_token(
                raw_token, now=now, access_key=policy.access_key, app_secret=policy.app_secret
            )
        except InvalidAuthToken as error:
            raise InvalidTokenError(error) from error
        replaced = influencer.auth_token_encrypted is not None
        token = raw_token.strip()
        influencer.auth_token_encrypted = box.encrypt(token)
        influencer.token_preview = tokens.masked_preview(token)
        influencer.token_room_id = decoded.room_id
        influencer.token_role = decoded.role
        influencer.token_user_id = decoded.user_id
        influencer.token_issued_at = decoded.issued_at
        influencer.token_expires_at = decoded.expires_at
        influencer.token_created_at = now
        await session.flush()
        await audit.record(
            session,
            actor,
            "token.update" if replaced else "token.set",
            now=now,
            target_type="influencer",
            target_id=influencer.id,
            handle=influencer.handle,
            room_id=decoded.room_id,
            role=decoded.role,
            expires_at=decoded.expires_at.isoformat(),
            signature_verified=decoded.signature_verified,
        )
        return influencer

    async def clear_token(
        self, session: AsyncSession, actor: Actor, influencer: Influencer, *, now: datetime
    ) -> Influencer:
        for column in (
            "auth_token_encrypted",
            "token_preview",
            "token_room_id",
            "token_role",
            "token_user_id",
            "token_issued_at",
            "token_expires_at",
            "token_created_at",
        ):
            setattr(influencer, column, None)
        await session.flush()
        await audit.record(
            session,
            actor,
            "token.clear",
            now=now,
            target_type="influencer",
            target_id=influencer.id,
            handle=influencer.handle,
        )
        return influencer

    async def set_room_code(
        self,
        database: Database,
        actor: Actor,
        influencer_id: uuid.UUID,
        raw_code: str | None,
        *,
        provider: StreamingProvider | None,
        deadline_seconds: float,
        now: datetime,
    ) -> None:
        """100ms checks the code with no session open (within the deadline), then one short
        transaction stores it."""
        code = None
        if raw_code and raw_code.strip():
            try:
                code = normalize_room_code(raw_code)
            except InvalidRoomCode as error:
                raise InvalidRoomCodeError(str(error)) from error
            with deadlines.within(deadline_seconds):
                await self._check_code_with_provider(provider, code)
        async with transaction(database.sessionmaker) as session:
            influencer = await self.get(session, influencer_id)
            influencer.room_code = code
            influencer.room_code_source = "manual" if code else None
            await session.flush()
            await audit.record(
                session,
                actor,
                "room_code.set" if code else "room_code.clear",
                now=now,
                target_type="influencer",
                target_id=influencer.id,
                handle=influencer.handle,
                room_code=code,
            )

    async def _check_code_with_provider(
        self, provider: StreamingProvider | None, code: str
    ) -> None:
        # Room codes are 100ms's: only a 100ms provider can check one.
        if provider is None or browser_signalling(provider) is not None:
            return
        try:
            async with _backstop():
                await provider.resolve_room_code(code)
        except TimeoutError:
            return  # as for any fault of 100ms: the browser's exchange of the code checks it
        except ProviderError as error:
            if not error.transient:
                message = f"100ms does not accept this room code: {error.message}"
                raise InvalidRoomCodeError(message) from error

    async def generate_room_code(
        self,
        database: Database,
        actor: Actor,
        influencer: Influencer,
        *,
        provider: StreamingProvider | None,
        broadcaster_role: str,
        deadline_seconds: float,
        now: datetime,
    ) -> None:
        """`influencer` as read before (no session open now): 100ms makes the room and its
        codes within the deadline, then one short transaction keeps the broadcaster's."""
        if provider is None or browser_signalling(provider) is not None:
            # Not a fault that a later try could clear (503): this server has no 100ms.
            raise Conflict(
                "Auto-generating a room code needs 100ms credentials: set "
                "LIVESTAGE_HMS_ACCESS_KEY and LIVESTAGE_HMS_APP_SECRET, or type a code "
                "from the 100ms dashboard."
            )
        with deadlines.within(deadline_seconds):
            try:
                async with _backstop():
                    room = await provider.ensure_room(name=room_name_for(influencer.handle))
                    codes = await provider.ensure_room_codes(room.id)
            except ProviderError as error:
                message = f"Could not generate a room code: {error.message}"
                raise ServiceUnavailable(message) from error
            except TimeoutError as error:
                message = "Could not generate a room code: 100ms did not answer in time."
                raise ServiceUnavailable(message) from error
        chosen = next((c for c in codes if c.role == broadcaster_role and c.enabled), None)
        if chosen is None:
            raise ServiceUnavailable(
                f"100ms created no room code for the role {broadcaster_role!r}: check that the "
                "room's template has this role (LIVESTAGE_HMS_BROADCASTER_ROLE)."
            )
        async with transaction(database.sessionmaker) as session:
            stored = await self.get(session, influencer.id)
            stored.hms_room_id, stored.hms_room_name = room.id, room.name
            stored.room_code, stored.room_code_source = chosen.code, "generated"
            await session.flush()
            await audit.record(
                session,
                actor,
                "room_code.generate",
                now=now,
                target_type="influencer",
                target_id=stored.id,
                handle=stored.handle,
                room_id=room.id,
                room_code=chosen.code,
            )

    async def set_streaming_enabled(
        self,
        session: AsyncSession,
        actor: Actor,
        influencer: Influencer,
        enabled: bool,
        *,
        now: datetime,
    ) -> Influencer:
        influencer.streaming_enabled = enabled
        await session.flush()
        await audit.record(
            session,
            actor,
            "streaming.enable" if enabled else "streaming.disable",
            now=now,
            target_type="influencer",
            target_id=influencer.id,
            handle=influencer.handle,
        )
        return influencer

    async def reencrypt_tokens(self, session: AsyncSession, box: SecretBox) -> int:
        """Re-encrypt stored auth tokens with the primary key (after a key rotation)."""
        rows = await InfluencerRepository(session).list_with_token()
        for row in rows:
            assert row.auth_token_encrypted is not None
            row.auth_token_encrypted = box.rotate(row.auth_token_encrypted)
        await session.flush()
        return len(rows)


influencer = InfluencerService()
