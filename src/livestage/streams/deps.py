"""Dependencies of the streams routes: the parts of the app's state streams own, built once by
the lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, cast

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from livestage.audit.service import Actor
from livestage.models import Influencer, LiveStream, User
from livestage.providers.base import StreamingProvider
from livestage.streams.broker import LiveBroker
from livestage.streams.joins import Viewing
from livestage.streams.service import GoLiveConfig
from livestage.streams.service import stream as stream_service
from livestage.streams.updates import announce
from livestage.web.deps import DbSession, Now, ProviderDep


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
    """Ending a stream, for its influencer or for an admin, from a page or the API: the service
    call, then open pages are told once it is committed."""

    session: AsyncSession
    broker: LiveBroker
    provider: StreamingProvider | None
    now: datetime

    async def own(self, user: User) -> LiveStream:
        ended = await stream_service.end_own(
            self.session, user, provider=self.provider, now=self.now
        )
        announce(self.session, self.broker, ended)
        return ended

    async def by_admin(self, actor: Actor, influencer: Influencer) -> LiveStream:
        ended = await stream_service.end_by_admin(
            self.session, actor, influencer, provider=self.provider, now=self.now
        )
        announce(self.session, self.broker, ended)
        return ended


async def get_stream_ending(
    session: DbSession, broker: BrokerDep, provider: ProviderDep, now: Now
) -> StreamEnding:
    return StreamEnding(session, broker, provider, now)


EndingDep = Annotated[StreamEnding, Depends(get_stream_ending)]
