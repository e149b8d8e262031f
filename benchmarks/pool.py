"""The load-generator pool (Node processes of real Yjs replicas) and the resource sampler.

Each worker is ``node benchmarks/node/loadgen.mjs``, driven over stdin/stdout with one JSON
command per line and one JSON reply per line (the commands are listed in that file). The
orchestrator spreads the clients round-robin over the workers and sends every worker the same
command for each phase, so the writers of all workers start on one schedule.
``BENCH_LOADGEN_NODE_ARGS`` adds options to their ``node`` command line (e.g. ``--cpu-prof``).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shlex
import subprocess
import threading
import time
from collections import Counter
from dataclasses import asdict
from typing import Any

import psutil
from server_process import ClientSpec, ServerProcess, cpu_seconds, die_with_parent
from servers import NODE_DIR

LOADGEN = NODE_DIR / "loadgen.mjs"


class LoadGen:
    """N Node worker processes (`benchmarks/node/loadgen.mjs`); commands go over their stdin."""

    def __init__(self, n: int) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.replies: list[queue.Queue[bytes]] = []
        for _ in range(n):
            proc = subprocess.Popen(
                ["node", *shlex.split(os.environ.get("BENCH_LOADGEN_NODE_ARGS", "")), str(LOADGEN)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=NODE_DIR,
                start_new_session=True,  # a Ctrl-C reaches the orchestrator, which closes us
                preexec_fn=die_with_parent,
            )
            replies: queue.Queue[bytes] = queue.Queue()
            threading.Thread(target=self._read, args=(proc, replies), daemon=True).start()
            self.procs.append(proc)
            self.replies.append(replies)
        self._ps = [psutil.Process(p.pid) for p in self.procs]

    @staticmethod
    def _read(proc: subprocess.Popen[bytes], replies: queue.Queue[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            replies.put(line)
        replies.put(b"")  # end of output: the worker exited

    @property
    def n(self) -> int:
        return len(self.procs)

    def call(self, cmds: list[dict[str, Any]], timeout: float) -> list[dict[str, Any]]:
        """Send one command to each worker; wait (bounded) for every reply."""
        for i, (proc, cmd) in enumerate(zip(self.procs, cmds, strict=True)):
            assert proc.stdin is not None
            try:
                proc.stdin.write(json.dumps(cmd, default=_plain).encode() + b"\n")
                proc.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                raise RuntimeError(f"load-generator worker {i} is gone ({exc})") from exc
        deadline = time.monotonic() + timeout
        out = []
        for i, replies in enumerate(self.replies):
            try:
                line = replies.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                op = cmds[i]["op"]
                raise TimeoutError(f"load-generator worker {i}: no reply to {op}") from None
            if not line:
                raise RuntimeError(f"load-generator worker {i} exited ({self.procs[i].poll()})")
            reply = json.loads(line)
            if "error" in reply:
                raise RuntimeError(f"load-generator worker {i}: {reply['error']}")
            out.append(reply)
        return out

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
        return cpu_seconds(self._ps)

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self.broadcast({"op": "close"}, timeout=10.0)
        for proc in self.procs:
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(3)


def _plain(value: object) -> object:
    if isinstance(value, ClientSpec):
        return asdict(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def fetch(specs: list[ClientSpec], timeout: float) -> list[dict[str, Any]]:
    """Fresh one-off clients, in a worker of their own: each syncs and reports what it got."""
    lg = LoadGen(1)
    try:
        reply = lg.call([{"op": "fetch", "specs": specs, "timeout": timeout}], timeout + 30)
    finally:
        lg.shutdown()
    return reply[0]["results"]


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
