"""A loopback TCP proxy that a test can cut, black-hole and restore: a database that goes away,
for real.

Two ways to lose the database:

- :meth:`TcpProxy.disconnect` resets every connection and refuses new ones (a crashed server:
  the client learns at once);
- :meth:`TcpProxy.black_hole` stops forwarding in both directions but keeps every socket open,
  and new connections are accepted and then left unanswered (a silent network partition:
  nothing fails, every wait is for an answer that never comes).

:meth:`TcpProxy.restore` ends either: forwarding resumes, with what was sent meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.cut = False
        self._flowing = asyncio.Event()  # clear while black-holed
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.disconnect()
        self._flowing.set()  # let black-holed pipes see their aborted sockets and end
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def disconnect(self) -> None:
        """Cut every connection and refuse new ones until :meth:`restore`."""
        self.cut = True
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    def black_hole(self) -> None:
        """Forward nothing either way until :meth:`restore`; keep every socket open."""
        self._flowing.clear()

    def restore(self) -> None:
        self.cut = False
        self._flowing.set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._flowing.wait()  # black-holed: accepted, never answered
        if self.cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while True:
                    # Not even read while black-holed: the kernel's buffers fill and the
                    # sender's TCP stalls, as behind a partition.
                    await self._flowing.wait()
                    data = await src.read(65536)
                    if not data:
                        break
                    await self._flowing.wait()  # a read that was under way when it began
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.discard(writer)
        self._writers.discard(up_writer)
