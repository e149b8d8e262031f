"""Start ``syncd serve`` in a subprocess for the access and feed benchmarks (loopback only)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

SECRET = "benchmark-secret-not-for-production-000000"


@dataclass
class Daemon:
    port: int
    data_dir: str

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def token(self, sub: str, role: str = "user") -> str:
        from syncd.tokens import TokenKeys

        return TokenKeys(secret=SECRET).mint(sub, role=role, ttl=3600)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_daemon(database_url: str | None = None) -> Iterator[Daemon]:
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as data_dir:
        env = dict(os.environ, SYNCD_SECRET=SECRET, SYNCD_LOG_LEVEL="warning")
        if database_url:
            env["SYNCD_DATABASE_URL"] = database_url
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "serve", "--port", str(port), "--data-dir", data_dir],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("syncd did not start") from None
                    time.sleep(0.05)
            yield Daemon(port, data_dir)
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]
