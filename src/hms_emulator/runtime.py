"""The running emulator: state, faults, background work and the webhook sender in one place."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

from starlette.requests import Request

from hms_emulator.config import EmulatorConfig
from hms_emulator.faults import FaultQueue
from hms_emulator.state import EmulatorState, Room, Template
from hms_emulator.webhooks import TaskSet, WebhookSender


def _role(name: str, *, publish: list[str], max_peers: int, host: bool) -> dict[str, Any]:
    return {
        "name": name,
        "publishParams": {"allowed": publish},
        "subscribeParams": {"subscribeToRoles": ["broadcaster"], "maxSubsBitRate": 3200},
        "permissions": {
            "endRoom": host,
            "removeOthers": host,
            "mute": host,
            "unmute": host,
            "changeRole": host,
            "sendRoomState": False,
            "pollRead": False,
            "pollWrite": False,
            "browserRecording": host,
            "rtmpStreaming": host,
            "hlsStreaming": host,
        },
        "priority": 1,
        "maxPeerCount": max_peers,
    }


def default_template(config: EmulatorConfig, now: datetime) -> Template:
    roles = {
        "broadcaster": _role(
            "broadcaster", publish=["audio", "video", "screen"], max_peers=1, host=True
        ),
        "viewer": _role("viewer", publish=[], max_peers=0, host=False),
    }
    return Template(
        id=config.default_template_id,
        name=config.default_template_name,
        customer_id=config.customer_id,
        roles=roles,
        settings={"region": "in"},
        destinations={"hlsDestinations": {"hls": {"name": "hls", "playlistType": "live"}}},
        created_at=now,
        updated_at=now,
        subdomain="livestage-emulator",
        app_id=config.app_id,
    )


class Emulator:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.state = EmulatorState()
        self.faults = FaultQueue()
        self.tasks = TaskSet()
        self._frozen: datetime | None = None
        self.webhooks = WebhookSender(config, self.state, self.tasks, clock=self.now)
        self._fill_defaults()

    def now(self) -> datetime:
        return self._frozen if self._frozen is not None else self.config.clock()

    @contextmanager
    def frozen_at(self, moment: datetime) -> Iterator[None]:
        """Make `now()` answer `moment` (scripted peers stamp their own times). Only for
        synchronous work: a task that awaits inside would leak the time into others."""
        previous, self._frozen = self._frozen, moment
        try:
            yield
        finally:
            self._frozen = previous

    def emit(self, room: Room, event_type: str, data: dict[str, Any]) -> None:
        self.webhooks.emit(room, event_type, data)

    def after(self, seconds: float, action: Callable[[], None]) -> None:
        async def run() -> None:
            await asyncio.sleep(seconds)
            action()

        self.tasks.spawn(run())

    async def reset(self) -> None:
        """Forget everything (including in-flight deliveries) but keep ids and credentials."""
        await self.tasks.cancel()
        self.state = EmulatorState()
        self.webhooks.reset(self.state)
        self.faults.clear()
        self._fill_defaults()

    async def aclose(self) -> None:
        await self.tasks.cancel()
        await self.webhooks.aclose()

    def _fill_defaults(self) -> None:
        template = default_template(self.config, self.now())
        self.state.templates[template.id] = template


def emulator_of(request: Request) -> Emulator:
    return cast(Emulator, request.app.state.emulator)
