"""Driving a Node.js client script from a test: one process, JSON lines in and out.

The scripts in ``tests/interop`` (``yws_client.mjs``, ``hp_client.mjs``) share one line protocol:
commands on stdin, one JSON answer per command on stdout, a ``ready`` event once started and an
``error`` event (then exit 1) on any failure. The pinned npm packages they import must be
installed first: ``npm ci --prefix tests/interop``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

import pytest

INTEROP = Path(__file__).resolve().parent.parent / "interop"
# A Node client gives up on a wait after NODE_WAIT_MS and says why; we wait a little longer for
# its answer so that its message, not ours, explains a failure.
NODE_WAIT_MS = 8000
REPLY_TIMEOUT = 12.0


def require_node(packages: Iterable[str]) -> str:
    """The ``node`` executable; fails (never skips) when it or the npm packages are missing."""
    exe = shutil.which("node")
    missing = [p for p in packages if not (INTEROP / "node_modules" / p).is_dir()]
    if exe is None or missing:
        problem = "node is not on PATH" if exe is None else f"missing npm packages {missing}"
        pytest.fail(
            f"interop tests need Node.js 20+ and the pinned npm packages ({problem}): "
            "run `npm ci --prefix tests/interop`",
            pytrace=False,
        )
    return exe


class NodeProcess:
    """One client script process answering line commands."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc
        self._stderr = bytearray()
        self._stderr_task = asyncio.create_task(self._drain_stderr())

    @classmethod
    async def spawn(
        cls, node: str, script: str, config: dict[str, Any], name: str
    ) -> tuple[Self, dict[str, Any]]:
        """Start ``script`` with ``config``; return the process and its ``ready`` event."""
        proc = await asyncio.create_subprocess_exec(
            node,
            str(INTEROP / script),
            json.dumps(config),
            cwd=INTEROP,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        client = cls(name, proc)
        try:
            ready = await client._read()
        except BaseException:
            await client.kill()
            raise
        assert ready.get("event") == "ready", ready
        return client, ready

    async def send(self, cmd: str, arg: Any = None) -> dict[str, Any]:
        """Send one command and return its answer."""
        assert self.proc.stdin is not None
        line = cmd if arg is None else f"{cmd} {json.dumps(arg)}"
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()
        reply = await self._read()
        assert reply.get("ok") and reply.get("cmd") == cmd, reply
        return reply

    async def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(REPLY_TIMEOUT):
                line = await self.proc.stdout.readline()
        except TimeoutError:
            raise AssertionError(f"{self.name}: no answer in {REPLY_TIMEOUT} s") from None
        if not line:
            rc = await self._exited()
            raise AssertionError(f"{self.name} exited ({rc}): {self.stderr}")
        message = json.loads(line)
        if message.get("event") == "error":
            await self._exited()
            raise AssertionError(f"{self.name}: {message['message']}")
        return message

    @property
    def stderr(self) -> str:
        return self._stderr.decode(errors="replace").strip()

    async def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(4096):
            self._stderr += chunk

    async def _exited(self) -> int:
        async with asyncio.timeout(REPLY_TIMEOUT):
            rc = await self.proc.wait()
            await self._stderr_task
        return rc

    async def kill(self) -> None:
        """SIGKILL: the socket drops without a close frame or a goodbye awareness update."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self._exited()

    async def close(self) -> None:
        """End of stdin: the client destroys its providers and exits."""
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await self._exited()
            except TimeoutError:
                await self.kill()
        await self._exited()
