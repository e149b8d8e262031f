"""Running the daemon for tests: in this process (fast) or as a subprocess (restart, kill -9)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

from syncd.daemon import Daemon
from syncd.server import DaemonServer, uvicorn_config
from syncd.settings import Settings

SECRET = "test-secret-not-for-production-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningDaemon:
    settings: Settings
    daemon: Daemon
    server: DaemonServer
    task: asyncio.Task[None]

    @property
    def port(self) -> int:
        return self.settings.port

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, doc: str, token: str | None = None) -> str:
        url = f"ws://127.0.0.1:{self.port}/v1/docs/{doc}"
        return f"{url}?token={token}" if token else url

    def token(self, sub: str, **kw: object) -> str:
        return self.daemon.access.keys.mint(sub, **kw)  # type: ignore[arg-type]

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 30)


async def start_daemon(settings: Settings) -> RunningDaemon:
    settings = replace(settings, host="127.0.0.1", port=free_port(), secret=SECRET)
    daemon = Daemon(settings)
    from syncd.app import create_app

    app = create_app(settings, daemon)
    config = uvicorn_config(replace(settings, log_level="warning"), app)
    server = DaemonServer(config, daemon)
    server.capture_signals = _no_signals  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(20):
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("server exited during startup")
            await asyncio.sleep(0.01)  # polling uvicorn's own flag: it offers no event
    return RunningDaemon(settings, daemon, server, task)


class _NoSignals:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _no_signals() -> _NoSignals:
    return _NoSignals()


class DaemonProcess:
    """``python -m syncd serve`` in a subprocess, for restarts and SIGKILL."""

    def __init__(
        self,
        data_dir: Path,
        database_url: str | None,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ):
        self.data_dir = data_dir
        self.database_url = database_url
        self.port = port or free_port()
        self.env = dict(env or {})  # extra SYNCD_* variables, e.g. SYNCD_REDIS_URL
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "daemon.log"

    def start(self) -> DaemonProcess:
        env = dict(os.environ)
        env.update(SYNCD_SECRET=SECRET, SYNCD_PORT=str(self.port), SYNCD_HOST="127.0.0.1",
                   SYNCD_DATA_DIR=str(self.data_dir), SYNCD_LOG_LEVEL="info")
        if self.database_url:
            env["SYNCD_DATABASE_URL"] = self.database_url
        else:
            env.pop("SYNCD_DATABASE_URL", None)
        env.update(self.env)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "serve"], env=env, stdout=log, stderr=log
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)  # waiting for another process's port: nothing to await
        raise TimeoutError("daemon did not become healthy")

    def ws_url(self, doc: str, token: str) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/docs/{doc}?token={token}"

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)
