"""Chat beside the stream (SPEC §8): posting under the rules of chat/rules.py, the history, and
moderation by the stream's influencer or an admin, every action in the audit log."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from livestage.audit.service import Actor
from livestage.audit.service import audit as audit_service
from livestage.chat import rules
from livestage.chat.repository import ChatRepository, Draft, NewMessage, Posting, PostingState
from livestage.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
)
from livestage.influencers.service import influencer as influencer_service
from livestage.kit import deadlines
from livestage.kit.db import new_id
from livestage.kit.time import rfc3339
from livestage.models import (
    ChatMessage,
    ChatRestriction,
    ChatRole,
    Influencer,
    LiveStream,
    RestrictionKind,
    User,
    UserRole,
)
from livestage.providers.base import ProviderError, StreamingProvider

log = structlog.get_logger()
# Past the deadline, the provider client's own timeouts have had their chance.
BACKSTOP_SECONDS = 1.0


class InvalidMessage(BadRequest):
    problem = "invalid_message"


class PostTooLarge(PayloadTooLarge):
    problem = "post_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"A chat post is at most {limit} bytes.")


class InvalidRestriction(BadRequest):
    problem = "invalid_restriction"


class NotLive(Conflict):
    problem = "not_live"

    def __init__(self, handle: str) -> None:
        super().__init__(f"@{handle} is not live right now: chat opens with the stream.")


class NotModerator(Forbidden):
    problem = "not_moderator"

    def __init__(self) -> None:
        super().__init__("Only the stream's creator and admins moderate its chat.")


class ChatBanned(Forbidden):
    problem = "chat_banned"

    def __init__(self) -> None:
        super().__init__("You are banned from this chat.")


class ChatTimedOut(Forbidden):
    problem = "chat_timed_out"

    def __init__(self, until: datetime) -> None:
        super().__init__(f"You are timed out of this chat until {rfc3339(until)}.")
        self.until = until


class ChatWait(TooManyRequests):
    """Too soon: the response carries Retry-After."""

    def __init__(self, wait: rules.Wait) -> None:
        if wait.reason == "slow_mode":
            self.problem = "slow_mode"
            message = f"Slow mode is on: wait {wait.seconds} s before your next message."
        else:
            self.problem = "chat_rate_limited"
            message = f"You are sending messages too fast: wait {wait.seconds} s."
        super().__init__(message)
        self.headers = {"Retry-After": str(wait.seconds)}


@dataclass(frozen=True, slots=True)
class Chatter:
    """Who is chatting: a viewer identity (streams/viewers.py), signed in or not."""

    identity: str
    user: User | None

    def role_for(self, owner_id: uuid.UUID) -> ChatRole:
        """As an author in the chat of the influencer whose user is `owner_id`."""
        admin = self.user is not None and self.user.role == UserRole.admin
        return rules.role(self.user.id if self.user else None, admin, owner_id)

    def may_moderate(self, influencer: Influencer) -> bool:
        return self.role_for(influencer.user_id) != ChatRole.viewer


@dataclass(frozen=True, slots=True)
class ChatView:
    """The chat of a handle as one chatter opens it."""

    influencer: Influencer
    stream: LiveStream | None
    messages: list[ChatMessage]
    name: str | None
    can_moderate: bool
    restriction: ChatRestriction | None


@dataclass(frozen=True, slots=True)
class Posted:
    influencer_id: uuid.UUID
    message: NewMessage
    seq: int


@dataclass(frozen=True, slots=True)
class Restricted:
    influencer: Influencer
    restriction: ChatRestriction


def active_restriction(
    restriction: ChatRestriction | None, now: datetime
) -> ChatRestriction | None:
    if restriction is None or restriction.kind == RestrictionKind.ban:
        return restriction
    return restriction if restriction.until is not None and restriction.until > now else None


class ChatService:
    async def view(
        self, session: AsyncSession, chatter: Chatter, handle: str, *, now: datetime
    ) -> ChatView:
        influencer = await influencer_service.get_by_handle(session, handle)
        repository = ChatRepository(session)
        stream = await repository.active_stream(influencer.id)
        messages, name = [], None
        if stream is not None:
            messages = await repository.history(stream.id, limit=rules.HISTORY)
            name = await repository.last_name(stream.id, chatter.identity)
        if chatter.user is not None:
            name = chatter.user.display_name[: rules.NAME_MAX]
        restriction = await repository.get_restriction(influencer.id, chatter.identity)
        return ChatView(
            influencer,
            stream,
            messages,
            name,
            chatter.may_moderate(influencer),
            active_restriction(restriction, now),
        )

    async def history(
        self, session: AsyncSession, influencer_id: uuid.UUID
    ) -> tuple[LiveStream | None, list[ChatMessage]]:
        repository = ChatRepository(session)
        stream = await repository.active_stream(influencer_id)
        if stream is None:
            return None, []
        return stream, await repository.history(stream.id, limit=rules.HISTORY)

    async def get_influencer(self, session: AsyncSession, handle: str) -> Influencer:
        return await influencer_service.get_by_handle(session, handle)

    async def post(
        self,
        repository: Posting,
        chatter: Chatter,
        handle: str,
        *,
        body: str,
        name: str | None,
        now: datetime,
    ) -> Posted:
        text, author_name = rules.clean_body(body), self._author_name(chatter, name)
        if text is None or author_name is None:
            # An unknown handle is a 404 before anything is said about the message.
            if await repository.posting_state(handle, chatter.identity, recent=0) is None:
                raise NotFound(f"No influencer with the handle @{handle[:40]}.")
            if text is None:
                raise InvalidMessage(
                    f"A message is 1 to {rules.BODY_MAX} characters (control characters removed)."
                )
            raise InvalidMessage(f"Choose a display name of 1 to {rules.NAME_MAX} characters.")
        draft = Draft(
            id=new_id(),
            handle=handle,
            identity=chatter.identity,
            user_id=chatter.user.id if chatter.user else None,
            admin=chatter.user is not None and chatter.user.role == UserRole.admin,
            author_name=author_name,
            body=text,
            sent_at=now,
        )
        stored = await repository.add_if_allowed(draft, partial(self._check_post, now=now))
        if stored is None:
            raise NotFound(f"No influencer with the handle @{handle[:40]}.")
        state = stored.state
        if state.stream_id is None or stored.seq is None:
            raise NotLive(state.handle)
        message = NewMessage(
            id=draft.id,
            stream_id=state.stream_id,
            author_identity=chatter.identity,
            author_name=author_name,
            author_role=stored.role,
            body=text,
            sent_at=now,
        )
        return Posted(state.influencer_id, message, stored.seq)

    def _author_name(self, chatter: Chatter, name: str | None) -> str | None:
        """None when the name a viewer chose is not one."""
        if chatter.user is not None:
            return chatter.user.display_name[: rules.NAME_MAX].strip() or "?"
        return rules.clean_name(name)

    def _check_post(self, state: PostingState, role: ChatRole, *, now: datetime) -> None:
        """Raises why the post is refused (repository.py's PostgreSQL statement decides the
        same way)."""
        if state.stream_id is None:
            raise NotLive(state.handle)
        if role != ChatRole.viewer:
            return
        if state.restriction == RestrictionKind.ban:
            raise ChatBanned()
        until = state.restricted_until
        if state.restriction == RestrictionKind.timeout and until is not None and until > now:
            raise ChatTimedOut(until)
        wait = rules.wait_before_posting(
            state.recent, now, slow_mode_seconds=state.slow_mode_seconds
        )
        if wait is not None:
            raise ChatWait(wait)

    # Moderation: the influencer on their own stream, or an admin.

    async def moderated_influencer(
        self, session: AsyncSession, actor: Actor, handle: str
    ) -> Influencer:
        influencer = await influencer_service.get_by_handle(session, handle)
        self._authorize(actor, influencer)
        return influencer

    def _authorize(self, actor: Actor, influencer: Influencer) -> None:
        if actor.user is None or not Chatter("", actor.user).may_moderate(influencer):
            raise NotModerator()

    async def delete_message(
        self, session: AsyncSession, actor: Actor, message_id: uuid.UUID, *, now: datetime
    ) -> tuple[Influencer, ChatMessage]:
        repository = ChatRepository(session)
        message = await repository.get_message(message_id)
        stream = None if message is None else await session.get(LiveStream, message.stream_id)
        if message is None or stream is None:
            raise NotFound("No such chat message.")
        self._authorize(actor, stream.influencer)
        if message.deleted_at is None:
            message.deleted_at = now
            message.deleted_by = actor.user.id if actor.user else None
            await audit_service.record(
                session,
                actor,
                "chat.message_deleted",
                now=now,
                target_type="chat_message",
                target_id=message.id,
                handle=stream.influencer.handle,
                author=message.author_identity,
                body=message.body[:100],
            )
        return stream.influencer, message

    async def restrict(
        self,
        session: AsyncSession,
        actor: Actor,
        handle: str,
        *,
        identity: str,
        kind: RestrictionKind,
        minutes: int | None,
        now: datetime,
    ) -> Restricted:
        influencer = await self.moderated_influencer(session, actor, handle)
        await self._check_restrictable(session, influencer, identity)
        if kind == RestrictionKind.timeout and minutes is None:
            raise InvalidRestriction("A timeout needs its length in minutes (1 to 1440).")
        until = now + timedelta(minutes=minutes or 0) if kind == RestrictionKind.timeout else None
        restriction = await ChatRepository(session).replace_restriction(
            ChatRestriction(
                influencer_id=influencer.id,
                identity=identity,
                kind=kind,
                until=until,
                created_at=now,
                created_by=actor.user.id if actor.user else None,
            )
        )
        await audit_service.record(
            session,
            actor,
            f"chat.{kind.value}",
            now=now,
            target_type="viewer",
            target_id=identity,
            handle=influencer.handle,
            until=None if until is None else rfc3339(until),
        )
        return Restricted(influencer, restriction)

    async def _check_restrictable(
        self, session: AsyncSession, influencer: Influencer, identity: str
    ) -> None:
        if not rules.IDENTITY.fullmatch(identity):
            raise InvalidRestriction("That is not a viewer identity.")
        if identity.startswith("user-"):
            user = await session.get(User, uuid.UUID(identity.removeprefix("user-")))
            if user is not None and (user.id == influencer.user_id or user.role == UserRole.admin):
                raise InvalidRestriction("The stream's creator and admins cannot be restricted.")

    async def live_room(self, session: AsyncSession, influencer: Influencer) -> str | None:
        stream = await ChatRepository(session).active_stream(influencer.id)
        return None if stream is None else stream.room_id

    async def remove_from_room(
        self,
        provider: StreamingProvider | None,
        room_id: str,
        identity: str,
        *,
        deadline_seconds: float,
    ) -> int:
        """A banned viewer leaves the media room at once (their join is refused from now on),
        called with no session open, within the deadline. A provider failure does not undo the
        ban; it is logged."""
        if provider is None:
            return 0
        with deadlines.within(deadline_seconds):
            try:
                async with asyncio.timeout(deadline_seconds + BACKSTOP_SECONDS):
                    return await provider.remove_user(room_id, identity, reason="banned")
            except (ProviderError, TimeoutError) as error:
                problem = error.message if isinstance(error, ProviderError) else "deadline"
                log.warning("chat.remove_banned_failed", room_id=room_id, error=problem)
                return 0

    async def lift(
        self, session: AsyncSession, actor: Actor, handle: str, identity: str, *, now: datetime
    ) -> Influencer:
        influencer = await self.moderated_influencer(session, actor, handle)
        if await ChatRepository(session).lift_restriction(influencer.id, identity):
            await audit_service.record(
                session,
                actor,
                "chat.restriction_lifted",
                now=now,
                target_type="viewer",
                target_id=identity,
                handle=influencer.handle,
            )
        return influencer

    async def set_slow_mode(
        self, session: AsyncSession, actor: Actor, handle: str, seconds: int, *, now: datetime
    ) -> Influencer:
        influencer = await self.moderated_influencer(session, actor, handle)
        repository = ChatRepository(session)
        stream = await repository.active_stream(influencer.id)
        if stream is None:
            raise NotLive(influencer.handle)
        await repository.set_slow_mode(stream.id, seconds)
        await audit_service.record(
            session,
            actor,
            "chat.slow_mode",
            now=now,
            target_type="live_stream",
            target_id=stream.id,
            handle=influencer.handle,
            seconds=seconds,
        )
        return influencer


chat = ChatService()
