"""A TCP front for several app processes, as a reverse proxy with fail-over is (nginx's
`proxy_next_upstream`): each connection goes to the first backend that accepts it, so a page
behind it reaches the first process while it lives and the next one after it dies."""

from __future__ import annotations

import asyncio
import contextlib

from tests.support.app_process import free_port


class FailoverProxy:
    def __init__(self, backends: list[int]) -> None:
        self.backends, self.port = backends, free_port()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FailoverProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for port in self.backends:
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            pipes = [
                asyncio.create_task(_pipe(reader, upstream_writer)),
                asyncio.create_task(_pipe(upstream_reader, writer)),
            ]
            self._pipes.update(pipes)
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            for task in pipes:
                task.cancel()
                self._pipes.discard(task)
            upstream_writer.close()
            break
        writer.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
