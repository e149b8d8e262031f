"""The load-generator pool (worker processes driven over pipes) and the resource sampler."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import threading
import time
from collections import Counter
from typing import Any

import psutil
from loadgen import worker_main
from servers import ServerProcess
from yclient import ClientSpec


class LoadGen:
    """N worker processes, each running `loadgen.Worker`; commands go over pipes."""

    def __init__(self, n: int) -> None:
        ctx = mp.get_context("spawn")
        self.conns = []
        self.procs = []
        for i in range(n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child, i), daemon=True)
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)
        self._ps = [psutil.Process(p.pid) for p in self.procs]

    @property
    def n(self) -> int:
        return len(self.procs)

    def call(self, cmds: list[dict[str, Any]], timeout: float) -> list[dict[str, Any]]:
        """Send one command to each worker; wait (bounded) for every reply."""
        for conn, cmd in zip(self.conns, cmds, strict=True):
            conn.send(cmd)
        deadline = time.monotonic() + timeout
        replies = []
        for i, conn in enumerate(self.conns):
            left = deadline - time.monotonic()
            if not conn.poll(max(left, 0.0)):
                raise TimeoutError(f"load-generator worker {i}: no reply to {cmds[i]['op']}")
            reply = conn.recv()
            if "error" in reply:
                raise RuntimeError(f"load-generator worker {i}: {reply['error']}")
            replies.append(reply)
        return replies

    def broadcast(self, cmd: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
        return self.call([cmd] * self.n, timeout)

    def connect(self, specs: list[ClientSpec], timeout: float = 60.0) -> dict[str, Any]:
        """Spread ``specs`` round-robin over the workers and open them all."""
        parts = [specs[i :: self.n] for i in range(self.n)]
        replies = self.call(
            [{"op": "connect", "specs": p, "timeout": 20.0, "concurrency": 64} for p in parts],
            timeout,
        )
        failed: Counter = Counter()
        for r in replies:
            failed.update(r["failed"])
        return {
            "connected": sum(r["connected"] for r in replies),
            "failed": dict(failed),
            "elapsed_s": max(r["elapsed_s"] for r in replies),
            "connect_ms": [ms for r in replies for ms in r["connect_ms"]],
            "no_server_step1": sum(r["no_server_step1"] for r in replies),
        }

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self._ps:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self.broadcast({"op": "close"}, timeout=10.0)
        for proc in self.procs:
            proc.join(3)
            if proc.is_alive():
                proc.terminate()
                proc.join(3)
            if proc.is_alive():
                proc.kill()
                proc.join(1)
        for conn in self.conns:
            conn.close()


class Sampler:
    """Samples the server's RSS every 200 ms in a thread; CPU from process times."""

    def __init__(self, server: ServerProcess, lg: LoadGen | None) -> None:
        self.server = server
        self.lg = lg
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Sampler:
        self.t0 = time.monotonic()
        self.cpu0 = self.server.cpu_seconds()
        self.lg_cpu0 = self.lg.cpu_seconds() if self.lg else 0.0
        self.busy0 = machine_busy_seconds()
        self.self0 = own_cpu_seconds()
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_rss = max(self.peak_rss, self.server.rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self.peak_rss = max(self.peak_rss, self.server.rss())
        self.wall = time.monotonic() - self.t0
        self.cpu = self.server.cpu_seconds() - self.cpu0
        self.lg_cpu = (self.lg.cpu_seconds() - self.lg_cpu0) if self.lg else 0.0
        busy = machine_busy_seconds() - self.busy0
        self.others = max(0.0, busy - self.cpu - self.lg_cpu - (own_cpu_seconds() - self.self0))

    @property
    def server_cpu_pct(self) -> float:
        return 100.0 * self.cpu / self.wall if self.wall else 0.0

    @property
    def lg_cpu_pct(self) -> float:
        return 100.0 * self.lg_cpu / self.wall if self.wall else 0.0

    @property
    def others_pct(self) -> float:
        return 100.0 * self.others / self.wall if self.wall else 0.0


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle, summed over cores."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def own_cpu_seconds() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system
