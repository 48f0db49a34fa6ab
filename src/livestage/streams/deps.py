"""Dependencies of the streams routes: the parts of the app's state streams own, built once by
the lifespan."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends
from starlette.requests import HTTPConnection

from livestage.streams.broker import LiveBroker
from livestage.streams.joins import Viewing
from livestage.streams.service import GoLiveConfig


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
