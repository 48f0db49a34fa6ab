"""A lean server-sent-events response, for thousands of long-lived connections per worker.

Starlette's `StreamingResponse` runs each stream in an anyio task group with a second task
listening for the disconnect, and the endpoint's generator wrapped `queue.get()` in
`asyncio.wait_for`, a new task per wait. With 5,000 open pages that was most of the server's
memory and of the time a change took to reach them all (bench/). Here a connection is the
request's own coroutine reading a queue of frames encoded once by the publisher (keep-alives
included: the publisher sends them to everyone on one timer, so no wait here needs a timeout),
plus one small task that turns the client's disconnect into an end-of-stream marker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from livestage.web.metrics import SSE_CONNECTIONS

_END = b""

Frames = asyncio.Queue[bytes]


class EventStream(Response):
    """Send `first`, then each frame from the queue `subscribe()` yields; end when the client
    goes, or at the first frame after `lifetime` seconds (the publisher's keep-alives make
    sure one comes)."""

    media_type = "text/event-stream"

    def __init__(
        self,
        first: bytes,
        subscribe: Callable[[], AbstractAsyncContextManager[Frames]],
        *,
        lifetime: float,
    ) -> None:
        self.first, self.subscribe = first, subscribe
        self.lifetime = lifetime
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with SSE_CONNECTIONS.track_inprogress():
            await self._serve(receive, send)

    async def _serve(self, receive: Receive, send: Send) -> None:
        async with self.subscribe() as frames:
            watcher = asyncio.get_running_loop().create_task(_end_on_disconnect(receive, frames))
            try:
                await send(
                    {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
                )
                await self._send_frames(frames, send)
            except OSError:
                pass  # the client went away mid-write
            finally:
                watcher.cancel()

    async def _send_frames(self, frames: Frames, send: Send) -> None:
        loop = asyncio.get_running_loop()
        closes_at = loop.time() + self.lifetime
        frame = self.first
        while frame != _END:
            await send({"type": "http.response.body", "body": frame, "more_body": True})
            if loop.time() >= closes_at:
                break
            frame = _with_queued(frames, await frames.get())
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _with_queued(frames: Frames, frame: bytes) -> bytes:
    """`frame` and the frames already queued behind it, as one write: a page that fell behind
    (a busy chat) catches up in one send, not one per event. An end of stream among them is put
    back, to end the stream once they are sent."""
    if frame == _END or frames.empty():
        return frame
    parts = [frame]
    while not frames.empty():
        queued = frames.get_nowait()
        if queued == _END:
            frames.put_nowait(_END)
            break
        parts.append(queued)
    return b"".join(parts)


async def _end_on_disconnect(receive: Receive, frames: Frames) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    if frames.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            frames.get_nowait()
    frames.put_nowait(_END)
