"""Dependencies of the streams routes: the parts of the app's state streams own, built once by
the lifespan."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, cast

from fastapi import Depends
from starlette.requests import HTTPConnection, Request

from livestage.accounts.auth import NotSignedIn, signed_in_session
from livestage.audit.service import Actor
from livestage.db import Database
from livestage.errors import Forbidden
from livestage.models import LiveStream, User, UserRole
from livestage.providers.base import StreamingProvider
from livestage.streams.broker import LiveBroker
from livestage.streams.joins import Viewing
from livestage.streams.service import Ending, GoLiveConfig, GoLiveResult
from livestage.streams.service import stream as stream_service
from livestage.streams.updates import live_update
from livestage.web.deps import DatabaseDep, Now, ReadSessions


def go_live_config_of(connection: HTTPConnection) -> GoLiveConfig:
    return cast(GoLiveConfig, connection.app.state.livestage.go_live)


def viewing_of(connection: HTTPConnection) -> Viewing:
    return cast(Viewing, connection.app.state.livestage.viewing)


async def get_go_live_config(connection: HTTPConnection) -> GoLiveConfig:
    return go_live_config_of(connection)


async def get_broker(connection: HTTPConnection) -> LiveBroker:
    return cast(LiveBroker, connection.app.state.livestage.broker)


GoLiveDep = Annotated[GoLiveConfig, Depends(get_go_live_config)]
BrokerDep = Annotated[LiveBroker, Depends(get_broker)]


@dataclass(frozen=True, slots=True)
class StreamEnding:
    """Ending a stream, for its influencer or for an admin, from a page or the API. The stream
    is ended in a short transaction and open pages are told at once; then 100ms closes the
    room with no session open (within the go-live deadline), and a second short transaction
    records it. The routes hold no request transaction (see `get_starting_influencer`)."""

    database: Database
    broker: LiveBroker
    provider: StreamingProvider | None
    deadline_seconds: float
    now: datetime

    async def own(self, user: User) -> LiveStream:
        ending = await stream_service.end_own(self.database, user, now=self.now)
        return await self._room_closed(ending)

    async def by_admin(self, actor: Actor, influencer_id: uuid.UUID) -> LiveStream:
        ending = await stream_service.end_by_admin(
            self.database, actor, influencer_id, now=self.now
        )
        return await self._room_closed(ending)

    async def _room_closed(self, ending: Ending) -> LiveStream:
        update = live_update(ending.stream)
        self.broker.publish(update["handle"], update)
        return await stream_service.close_room(
            self.database, ending, provider=self.provider, deadline_seconds=self.deadline_seconds
        )


async def get_stream_ending(
    database: DatabaseDep, broker: BrokerDep, config: GoLiveDep, now: Now
) -> StreamEnding:
    return StreamEnding(database, broker, config.provider, config.deadline_seconds, now)


EndingDep = Annotated[StreamEnding, Depends(get_stream_ending)]


async def get_starting_influencer(request: Request, reads: ReadSessions, now: Now) -> User:
    """The signed-in influencer, read in a read-only session of its own: go-live and End
    Stream open their own short transactions, and no request transaction may stay open across
    their provider calls."""
    record = await signed_in_session(request, reads, now)
    if record is None:
        raise NotSignedIn(UserRole.influencer)
    if record.user.role != UserRole.influencer:
        raise Forbidden(f"This page is for {UserRole.influencer.value}s only.")
    return record.user


@dataclass(frozen=True, slots=True)
class GoingLive:
    """Start Streaming for the signed-in influencer: the service call (it commits through its
    own short transactions), then open pages are told."""

    database: Database
    config: GoLiveConfig
    broker: LiveBroker
    user: User
    now: datetime

    async def automatic(self, title: str, description: str, *, hls: bool = False) -> GoLiveResult:
        result = await stream_service.go_live(
            self.database,
            self.user,
            title=title,
            description=description,
            config=self.config,
            now=self.now,
            hls=hls,
        )
        return self._told(result)

    async def with_room_code(self, code: str, title: str, description: str) -> GoLiveResult:
        result = await stream_service.go_live_with_room_code(
            self.database,
            self.user,
            code=code,
            title=title,
            description=description,
            config=self.config,
            now=self.now,
        )
        return self._told(result)

    def _told(self, result: GoLiveResult) -> GoLiveResult:
        update = live_update(result.stream)
        self.broker.publish(update["handle"], update)
        return result


async def get_going_live(
    database: DatabaseDep,
    config: GoLiveDep,
    broker: BrokerDep,
    user: Annotated[User, Depends(get_starting_influencer)],
    now: Now,
) -> GoingLive:
    return GoingLive(database, config, broker, user, now)


GoingLiveDep = Annotated[GoingLive, Depends(get_going_live)]
ReadInfluencer = Annotated[User, Depends(get_starting_influencer)]
