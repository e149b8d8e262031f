"""A WebSocket client over a bare asyncio stream, for tests that must write a frame piece by
piece (a header announcing 64 MiB, then a little of its payload) or bind a source address."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from dataclasses import dataclass

BINARY = 0x2
CLOSE = 0x8
_MASK = b"\0\0\0\0"  # a zero masking key leaves the payload as it is (still a valid client frame)


def frame_header(length: int, *, opcode: int = BINARY, fin: bool = True) -> bytes:
    """The header of a masked client frame announcing ``length`` payload bytes."""
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        head = struct.pack("!BB", first, 0x80 | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, length)
    return head + _MASK


def frame(payload: bytes, *, opcode: int = BINARY, fin: bool = True) -> bytes:
    return frame_header(len(payload), opcode=opcode, fin=fin) + payload


@dataclass
class Received:
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        if self.opcode != CLOSE or len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]


class RawWebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls, port: int, path: str, *, host: str = "127.0.0.1", receive_buffer: int | None = None
    ) -> RawWebSocket:
        """Open a WebSocket to ``path`` and read the 101 answer (raises if it is not 101).
        ``receive_buffer`` shrinks the socket's kernel receive buffer (a client that stops
        reading then stalls the server's writes quickly)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        # A small stream limit too: asyncio stops reading once this much is buffered unread.
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            writer.close()
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def receive(self) -> Received:
        head = await self.reader.readexactly(2)
        opcode, length = head[0] & 0x0F, head[1] & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return Received(opcode, await self.reader.readexactly(length))

    async def close_code(self) -> int:
        """Read until the server's close frame; return its code (frames before it are dropped)."""
        while True:
            received = await self.receive()
            if received.opcode == CLOSE:
                return received.close_code or 1005

    def abort(self) -> None:
        self.writer.transport.abort()
