"""Marking a stream live and ending it: End Stream ends the stream in a short transaction, then
the provider closes its room with no session open."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from livestage.audit.service import Actor, audit
from livestage.db import Database, transaction
from livestage.errors import Forbidden, NotFound
from livestage.influencers.repository import InfluencerRepository
from livestage.influencers.service import influencer as influencer_service
from livestage.kit import deadlines
from livestage.models import LiveStream, StreamStatus, StreamStrategy, User
from livestage.providers.base import ProviderError, StreamingProvider
from livestage.streams import lifecycle
from livestage.streams.repository import StreamRepository
from livestage.streams.service.errors import NoActiveStream, StillSettingUp
from livestage.streams.service.shared import BACKSTOP_SECONDS, being_set_up

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class Ending:
    """A stream End Stream has just ended, and the provider room it must still close."""

    stream: LiveStream
    room_id: str | None


class EndService:
    """The influencer's open stream: marked live when the broadcaster joins, ended by them or
    an admin."""

    async def current(self, session: AsyncSession, user: User) -> LiveStream | None:
        influencer = await InfluencerRepository(session).get_by_user(user)
        if influencer is None:
            raise Forbidden("Only influencers stream.")
        return await StreamRepository(session).get_active(influencer.id)

    async def mark_live(self, session: AsyncSession, user: User, *, now: datetime) -> LiveStream:
        """The broadcaster's page joined the room. Provider events confirm it independently."""
        stream = await self.current(session, user)
        if stream is None:
            raise NoActiveStream()
        if being_set_up(stream):
            raise StillSettingUp()
        if stream.status == StreamStatus.starting:
            stream.status = lifecycle.check_transition(stream.status, StreamStatus.live)
            stream.started_at = now
        return stream

    async def end_own(self, database: Database, user: User, *, now: datetime) -> Ending:
        """End Stream's first step: the stream is over for livestage once this commits."""
        async with transaction(database.sessionmaker) as session:
            stream = await self.current(session, user)
            if stream is None:
                raise NoActiveStream()
            return await self._mark_ended(
                session, Actor(user, None), stream, reason="broadcaster", now=now
            )

    async def end_by_admin(
        self, database: Database, actor: Actor, influencer_id: uuid.UUID, *, now: datetime
    ) -> Ending:
        async with transaction(database.sessionmaker) as session:
            influencer = await influencer_service.get(session, influencer_id)
            stream = await StreamRepository(session).get_active(influencer.id)
            if stream is None:
                raise NotFound(f"@{influencer.handle} is not live.")
            return await self._mark_ended(session, actor, stream, reason="admin", now=now)

    async def _mark_ended(
        self, session: AsyncSession, actor: Actor, stream: LiveStream, *, reason: str, now: datetime
    ) -> Ending:
        """Ended, audited, and (for a room livestage made) the room marked to close: it stays
        marked until 100ms confirms, so the reconciler retries whatever happens next."""
        if stream.status in (StreamStatus.ended, StreamStatus.failed):
            return Ending(stream, None)
        stream.status = lifecycle.check_transition(stream.status, StreamStatus.ended)
        stream.ended_at, stream.end_reason = now, reason
        stream.duration_seconds = lifecycle.duration_seconds(stream.started_at, now)
        room = stream.room_id if stream.strategy == StreamStrategy.automatic else None
        if room is not None:
            stream.room_close_pending_since = now
        await session.flush()
        await audit.record(
            session,
            actor,
            "stream.end",
            now=now,
            target_type="stream",
            target_id=stream.id,
            handle=stream.influencer.handle,
            reason=reason,
        )
        return Ending(stream, room)

    async def close_room(
        self,
        database: Database,
        ending: Ending,
        *,
        provider: StreamingProvider | None,
        deadline_seconds: float,
    ) -> LiveStream:
        """End Stream's second step, with no session open: 100ms ends the room's session within
        the deadline, and a third short transaction records it. On failure the room stays
        marked and the reconciler retries until 100ms confirms (viewers still connected, still
        billed)."""
        stream = ending.stream
        if ending.room_id is None or provider is None or stream.provider != provider.name:
            return stream
        reason = f"ended by {stream.end_reason}"
        with deadlines.within(deadline_seconds):
            try:
                async with asyncio.timeout(deadline_seconds + BACKSTOP_SECONDS):
                    await provider.end_room(ending.room_id, reason=reason)
            except (ProviderError, TimeoutError) as error:
                message = error.message if isinstance(error, ProviderError) else "deadline"
                log.warning("streams.end_room_failed", stream_id=str(stream.id), error=message)
                return stream
        async with transaction(database.sessionmaker) as session:
            pending = stream.room_close_pending_since
            assert pending is not None
            await StreamRepository(session).room_closed(stream.id, pending)
        stream.room_close_pending_since = None
        return stream
