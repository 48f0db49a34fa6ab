"""Watching: who is live, a handle's live state, and the viewer join."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from livestage.errors import NotFound, ServiceUnavailable
from livestage.influencers.service import influencer as influencer_service
from livestage.models import Influencer, LiveStream, StreamStatus
from livestage.providers.base import browser_signalling
from livestage.streams.intents import JoinIntent
from livestage.streams.joins import Viewing, Watchable
from livestage.streams.repository import StreamRepository
from livestage.streams.schemas import VIEWER_NAME, TokenJoin
from livestage.streams.service.errors import Banned, StreamFull
from livestage.streams.service.shared import GoLiveConfig, claim_unset, provider_fields
from livestage.streams.updates import live_update

# Out-of-date handles a watch-cache refill reads besides its own (one IN list).
REFILL_BATCH = 500


class WatchService:
    """What viewers and public pages see, and the viewer join."""

    async def list_live(self, session: AsyncSession) -> list[LiveStream]:
        return await StreamRepository(session).list_live()

    async def watch(
        self, session: AsyncSession, handle: str
    ) -> tuple[Influencer, LiveStream | None]:
        """The influencer and their open stream, else their latest one."""
        influencer = await influencer_service.get_by_handle(session, handle)
        repository = StreamRepository(session)
        stream = await repository.get_active(influencer.id)
        return influencer, stream or await repository.get_latest(influencer.id)

    async def live_state(self, session: AsyncSession, handle: str) -> dict[str, Any]:
        """What a page watching `handle` shows right now (the first message of its updates)."""
        influencer, latest = await self.watch(session, handle)
        if latest is None:
            return {"handle": influencer.handle, "status": "offline", "viewers": 0, "peak": 0}
        return live_update(latest)

    async def viewer_join(
        self,
        viewing: Viewing,
        handle: str,
        *,
        viewer_id: str,
        config: GoLiveConfig,
        now: datetime,
        new_viewer: bool = False,
    ) -> TokenJoin:
        """Check the stream is live and may be watched, mint a token for the viewer's identity
        (streams/viewers.py: the same across reloads and tabs), record the intent.

        `new_viewer`: the identity was made for this request, so no ban can name it and the
        ban is not read (in a flash crowd that is every join, and the read was most of its
        cost: bench/results/2026-12-01-honest.md)."""
        watchable = viewing.cache.fresh(handle) or await viewing.cache.get(
            handle, partial(self._watchable, viewing, handle)
        )
        if not watchable.live or watchable.stream_id is None:
            raise NotFound(f"@{watchable.handle} is not live right now.")
        if not new_viewer:
            async with viewing.reads() as session:
                if await StreamRepository(session).is_banned(watchable.stream_id, viewer_id):
                    raise Banned()
        provider = config.provider
        if watchable.setting_up:
            raise ServiceUnavailable(
                f"@{watchable.handle} is starting the stream; try again in a moment."
            )
        if provider is None or watchable.room_id is None:
            raise ServiceUnavailable(
                "This stream can only be watched where the server has 100ms credentials."
            )
        if watchable.provider != provider.name:
            raise ServiceUnavailable(
                f"This stream runs on the {watchable.provider!r} provider, which this server "
                "is not using any more."
            )
        if (signalling := browser_signalling(provider)) is not None:
            if await signalling.connected_viewers(watchable.room_id) >= signalling.viewer_cap:
                raise StreamFull(signalling.viewer_cap)
        token = provider.mint_join_token(
            room_id=watchable.room_id, role=config.viewer_role, user_id=viewer_id
        )
        viewing.joins.record(JoinIntent(watchable.stream_id, viewer_id, now))
        fields = provider_fields(provider, watchable.room_id)
        return TokenJoin(token.token, token.role, watchable.room_id, viewer_id, VIEWER_NAME, fields)

    async def _watchable(self, viewing: Viewing, handle: str) -> Watchable:
        """Read-only, in a session of its own (the join path holds no request session), with
        every other handle the cache holds out of date (`WatchCache.start_refill`)."""
        key, cache = handle.lower(), viewing.cache
        refill = cache.start_refill(key, limit=REFILL_BATCH)
        found: dict[str, Any] = {}
        try:
            async with viewing.reads() as session:
                found = await StreamRepository(session).watchables([key, *refill.others])
        finally:
            states = {other: _watchable(found[other]) for other in refill.others if other in found}
            cache.finish_refill(refill, states)
        if key not in found:
            raise NotFound(f"No influencer with the handle @{handle[:40]}.")
        return _watchable(found[key])


def _watchable(found: Any) -> Watchable:
    """A `StreamRepository.watchables` row as the join reads it."""
    if found.id is None:
        return Watchable(found.handle, None, False, None, None)
    live = found.status in (StreamStatus.starting, StreamStatus.live)
    setting_up = claim_unset(found.status, found.strategy, found.room_id)
    return Watchable(
        found.handle, found.id, live, found.room_id, found.provider, setting_up=setting_up
    )
