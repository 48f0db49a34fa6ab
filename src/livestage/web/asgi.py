"""Small pieces for pure ASGI middleware."""

from __future__ import annotations

from starlette.types import Message, Send


class WatchedSend:
    """`send`, noting whether the response has started: after that, an error can no longer be
    answered with a response of its own."""

    def __init__(self, send: Send) -> None:
        self._send, self.started = send, False

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)
