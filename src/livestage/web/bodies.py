"""Request bodies read with a bound: refused unread when their declared length is too long,
and never read past `limit` when the length is not declared or lies."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request


async def read_within(request: Request, limit: int, too_large: Callable[[], Exception]) -> bytes:
    """The whole body, or `too_large()` raised as soon as it is known to pass `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)
