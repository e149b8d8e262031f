"""A ``redis-server`` of a test's own: a free loopback port, no persistence, killable.

The cluster tests must never touch the machine's shared Redis (6379): every test that needs
Redis starts one here, on a port nobody else uses, and can SIGKILL it, restart it on the same
port (so the nodes' configured URL stays valid) or ``FLUSHALL`` it, which are the faults the
broker must survive (DESIGN.md §1.9).

Usage: import the fixtures into a test module (their pytest names are ``redis_server`` and
``redis_url``; the ``_fixture`` suffix keeps the import from clashing with the parameters)::

    from tests.support.redis_server import redis_server_fixture, redis_url_fixture  # noqa: F401

    async def test_x(redis_server):      # or ``redis_url`` when the server itself is not needed
        redis_server.kill()
        redis_server.restart()
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import free_port

__all__ = ["RedisServer", "redis_server_fixture", "redis_url_fixture"]

START_TIMEOUT = 10.0


class RedisServer:
    """One ``redis-server`` process on ``127.0.0.1:port``, with its own directory."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and return once it answers PING."""
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [
                exe,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                "--protected-mode", "no",
            ],
            stdout=log,
            stderr=log,
            cwd=self.directory,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if self.command("PING") == b"+PONG":
                    return self
            except OSError:
                pass
            time.sleep(0.02)  # waiting for another process's port: nothing to await
        raise TimeoutError(f"redis-server on port {self.port} did not answer PING")

    def command(self, *args: str) -> bytes:
        """Send one command (RESP) and return the first line of the reply, e.g. ``b"+OK"``."""
        request = f"*{len(args)}\r\n".encode()
        for arg in args:
            data = arg.encode()
            request += b"$%d\r\n%s\r\n" % (len(data), data)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
            conn.sendall(request)
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    raise ConnectionError("redis closed the connection")
                reply += chunk
        return reply.split(b"\r\n", 1)[0]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: every connection drops at once, nothing is saved (no persistence anyway)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self) -> RedisServer:
        """Kill (if running) and start again on the same port, empty."""
        self.kill()
        return self.start()

    def flushall(self) -> None:
        """Drop every key (streams, counters); connections and subscriptions stay."""
        reply = self.command("FLUSHALL")
        if reply != b"+OK":
            raise RuntimeError(f"FLUSHALL answered {reply!r}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture(name="redis_server")
def redis_server_fixture(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh ``redis-server`` for this test only, stopped afterwards."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="redis_url")
def redis_url_fixture(redis_server: RedisServer) -> str:
    """The URL of this test's own ``redis-server`` (``redis://127.0.0.1:PORT/0``)."""
    return redis_server.url
