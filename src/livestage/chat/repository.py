"""All of chat's SQL."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import lazyload

from livestage.models import ChatMessage, ChatRestriction, Influencer, LiveStream
from livestage.models.active import is_active


class ChatRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def influencer_and_stream(
        self, handle: str
    ) -> tuple[Influencer, LiveStream | None] | None:
        """The influencer of `handle` and their starting or live stream, in one query."""
        statement = (
            select(Influencer, LiveStream)
            .outerjoin(
                LiveStream,
                and_(
                    LiveStream.influencer_id == Influencer.id,
                    is_active(),
                ),
            )
            .where(Influencer.handle == handle.lower())
            # The stream's own eager (inner) join to its influencer would drop the influencer
            # row when nothing is live; it is this row's first entity anyway (identity map).
            .options(lazyload(LiveStream.influencer))
        )
        row = (await self.session.execute(statement)).first()
        return None if row is None else (row[0], row[1])

    async def active_stream(self, influencer_id: uuid.UUID) -> LiveStream | None:
        statement = select(LiveStream).where(LiveStream.influencer_id == influencer_id, is_active())
        return await self.session.scalar(statement)

    async def history(self, stream_id: uuid.UUID, *, limit: int) -> list[ChatMessage]:
        """The latest `limit` messages not deleted, oldest first."""
        statement = (
            select(ChatMessage)
            .where(ChatMessage.stream_id == stream_id, ChatMessage.deleted_at.is_(None))
            .order_by(ChatMessage.seq.desc())
            .limit(limit)
        )
        return list(reversed((await self.session.scalars(statement)).all()))

    async def get_message(self, message_id: uuid.UUID) -> ChatMessage | None:
        return await self.session.get(ChatMessage, message_id)

    async def serialize_identity(self, stream_id: uuid.UUID, identity: str) -> None:
        """Until the transaction ends, one post at a time per identity and stream, so its rate
        limit holds across processes (PostgreSQL: an advisory lock; SQLite writes one
        transaction at a time already)."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": f"chat:{stream_id}:{identity}"},
            )

    async def recent_sent(
        self, stream_id: uuid.UUID, identity: str, *, limit: int
    ) -> list[datetime]:
        """When the identity's latest messages in the stream were sent (newest first); none
        when it never posted there."""
        statement = (
            select(ChatMessage.sent_at)
            .where(ChatMessage.stream_id == stream_id, ChatMessage.author_identity == identity)
            .order_by(ChatMessage.sent_at.desc())
            .limit(limit)
        )
        return list((await self.session.scalars(statement)).all())

    async def count_message(self, stream_id: uuid.UUID, *, new_chatter: bool) -> int | None:
        """Counts a message on its stream and returns its number there; None when the stream
        is no longer starting or live. The stream's row stays locked until commit, so this is
        the transaction's last step before the insert."""
        statement = (
            update(LiveStream)
            .where(LiveStream.id == stream_id, is_active())
            .values(
                chat_messages=LiveStream.chat_messages + 1,
                chatters=LiveStream.chatters + (1 if new_chatter else 0),
            )
            .returning(LiveStream.chat_messages)
            .execution_options(synchronize_session=False)
        )
        return await self.session.scalar(statement)

    async def add_message(self, message: ChatMessage) -> ChatMessage:
        self.session.add(message)
        await self.session.flush()
        return message

    async def set_slow_mode(self, stream_id: uuid.UUID, seconds: int) -> None:
        statement = (
            update(LiveStream)
            .where(LiveStream.id == stream_id)
            .values(chat_slow_mode_seconds=seconds)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(statement)

    async def get_restriction(
        self, influencer_id: uuid.UUID, identity: str
    ) -> ChatRestriction | None:
        statement = select(ChatRestriction).where(
            ChatRestriction.influencer_id == influencer_id, ChatRestriction.identity == identity
        )
        return await self.session.scalar(statement)

    async def replace_restriction(self, restriction: ChatRestriction) -> ChatRestriction:
        """The identity's one restriction by this influencer becomes `restriction`."""
        await self.lift_restriction(restriction.influencer_id, restriction.identity)
        self.session.add(restriction)
        await self.session.flush()
        return restriction

    async def lift_restriction(self, influencer_id: uuid.UUID, identity: str) -> bool:
        statement = delete(ChatRestriction).where(
            ChatRestriction.influencer_id == influencer_id, ChatRestriction.identity == identity
        )
        result = await self.session.execute(statement)
        return bool(getattr(result, "rowcount", 0))

    async def last_name(self, stream_id: uuid.UUID, identity: str) -> str | None:
        """The name the identity last chatted under in the stream (a viewer's chosen name)."""
        statement = (
            select(ChatMessage.author_name)
            .where(ChatMessage.stream_id == stream_id, ChatMessage.author_identity == identity)
            .order_by(ChatMessage.sent_at.desc())
            .limit(1)
        )
        return await self.session.scalar(statement)
