"""Load generator process: the clients of one worker and the commands that drive them.

`run.py` (through `pool.LoadGen`) starts `worker_main` in N processes and drives them over a
pipe with the small command set handled by `Worker.handle` (connect, run, quiesce, snapshot,
stats, close). Each client is a `yclient.YClient`; the counters they share are a
`stats.Stats`. The same `YClient` also serves one-off probes (`probe.fetch`).

Every wait here is bounded by a timeout; every loop is bounded by a count or a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections import Counter
from typing import Any

from stats import Stats
from yclient import ClientClosed, ClientSpec, YClient
from yprotocol import create_update_message, doc_digest


class Worker:
    """The clients of one load-generator process and the commands that drive them."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.stats = Stats()
        self.clients: list[YClient] = []
        self.connect_ms: list[float] = []
        self._lag_task: asyncio.Task[None] | None = None

    async def handle(self, cmd: dict[str, Any]) -> dict[str, Any]:
        op = cmd["op"]
        if op == "connect":
            return await self.connect(cmd)
        if op == "run":
            return await self.run(cmd)
        if op == "quiesce":
            return await self.quiesce(cmd)
        if op == "snapshot":
            return self.snapshot()
        if op == "stats":
            return self.export_stats()
        if op == "close":
            return await self.close()
        raise ValueError(f"unknown op {op!r}")

    async def connect(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Open ``cmd["specs"]`` clients, at most ``concurrency`` handshakes at a time."""
        specs: list[ClientSpec] = cmd["specs"]
        timeout: float = cmd.get("timeout", 20.0)
        sem = asyncio.Semaphore(cmd.get("concurrency", 64))
        failures: Counter = Counter()
        durations: list[float] = []
        no_step1 = 0

        async def one(spec: ClientSpec) -> None:
            nonlocal no_step1
            async with sem:
                client = YClient(spec, self.stats)
                try:
                    await client.open(timeout)
                except (ClientClosed, TimeoutError, OSError) as exc:
                    failures[type(exc).__name__] += 1
                    self.stats.error(f"{spec.doc} client {spec.cid}: open failed: {exc}")
                    client.close()
                    return
                durations.append((client.t_synced_ns - client.t_start_ns) / 1e6)
                self.clients.append(client)

        started = time.monotonic()
        await asyncio.gather(*(one(s) for s in specs))
        # Server step 1 normally arrives with (or right before) step 2; bounded grace.
        for _ in range(50):
            if all(c.got_server_step1 for c in self.clients):
                break
            await asyncio.sleep(0.02)
        no_step1 = sum(1 for c in self.clients if not c.got_server_step1)
        self.connect_ms.extend(durations)
        return {
            "connected": len(durations),
            "failed": dict(failures),
            "elapsed_s": time.monotonic() - started,
            "connect_ms": durations,
            "no_server_step1": no_step1,
        }

    async def run(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Writers write from ``start_at`` for ``duration`` s at ``rate`` updates/s each.

        ``rate`` None means as fast as the socket takes them; ``max_updates`` bounds each
        writer's count for this run. Stats are reset first.
        """
        self.stats.reset()
        start_at: float = cmd["start_at"]
        duration: float = cmd["duration"]
        rate: float | None = cmd.get("rate")
        max_updates: int | None = cmd.get("max_updates")
        kind: str = cmd.get("kind", "canvas")
        writers = [c for c in self.clients if c.spec.writer]
        late = 0
        max_lag = 0.0
        first_seq = {c.wkey: c.seq for c in writers}

        async def write(client: YClient) -> None:
            nonlocal late, max_lag
            interval = 1.0 / rate if rate else 0.0
            next_t = start_at + random.uniform(0, interval)  # de-synchronise the writers
            deadline = start_at + duration
            count = 0
            delay = start_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            while client.is_open:
                now = time.monotonic()
                if max_updates is not None and count >= max_updates:
                    break
                if now >= deadline or (rate and next_t >= deadline):
                    break  # a schedule, not a loop: duration x rate updates on average
                if rate:
                    if next_t > now:
                        await asyncio.sleep(next_t - now)
                    else:
                        lag = now - next_t
                        max_lag = max(max_lag, lag)
                        if lag > 0.25:  # open loop, but never a burst of more than 250 ms
                            late += 1
                            next_t = now
                    next_t += interval
                elif count % 16 == 15:
                    await asyncio.sleep(0)  # let the replicas' callbacks run
                count += 1
                update = client.make_update(client.seq + 1, kind)
                try:
                    await client.send_drain(create_update_message(update))
                except (ClientClosed, TimeoutError) as exc:
                    self.stats.error(f"{client.spec.doc} writer {client.spec.cid}: {exc}")
                    break
                client.seq += 1

        t0 = time.monotonic()
        self._start_lag_monitor()
        await asyncio.gather(*(write(c) for c in writers))
        t1 = time.monotonic()
        last_seq: dict[str, dict[str, int]] = {}
        for c in writers:
            last_seq.setdefault(c.spec.doc, {})[c.wkey] = c.seq
        return {
            "sent": sum(c.seq - first_seq[c.wkey] for c in writers),
            "last_seq": last_seq,
            "late": late,
            "max_lag_s": max_lag,
            "write_s": t1 - max(t0, start_at),
            "writers_closed": sum(1 for c in writers if not c.is_open),
        }

    def _start_lag_monitor(self) -> None:
        """Measure this process's event-loop lag: if it is high, latencies are ours."""

        async def monitor() -> None:
            lags = self.stats.loop_lag_ns
            for _ in range(100_000):  # bounded: ~17 min at 10 ms
                t = time.monotonic_ns()
                await asyncio.sleep(0.01)
                lags.append(time.monotonic_ns() - t - 10_000_000)

        self._lag_task = asyncio.get_running_loop().create_task(monitor())

    async def _stop_lag_monitor(self) -> None:
        task, self._lag_task = self._lag_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def quiesce(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Wait until every replica here holds every writer's last seq (bounded)."""
        expect: dict[str, dict[str, int]] = cmd["expect"]
        deadline = time.monotonic() + cmd.get("timeout", 10.0)

        def missing() -> int:
            n = 0
            for c in self.clients:
                if c.spec.sink or not c.is_open:
                    continue
                for wkey, seq in expect.get(c.spec.doc, {}).items():
                    if wkey != c.wkey and c.seen.get(wkey, 0) < seq:
                        n += 1
                        break
            return n

        stall: float | None = cmd.get("stall")  # give up after this long without any update
        started_ns = time.monotonic_ns()
        stalled = False
        left = missing()
        while left and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            left = missing()
            quiet_ns = time.monotonic_ns() - max(self.stats.last_recv_ns, started_ns)
            if left and stall is not None and quiet_ns > stall * 1e9:
                stalled = True
                break
        await self._stop_lag_monitor()
        result = self.export_stats()
        result["incomplete_replicas"] = left
        result["stalled"] = stalled
        return result

    def snapshot(self) -> dict[str, Any]:
        digests: dict[str, Counter] = {}
        for c in self.clients:
            if c.spec.sink:
                continue
            digests.setdefault(c.spec.doc, Counter())[doc_digest(c.doc_json())] += 1
        return {"digests": {doc: dict(cnt) for doc, cnt in digests.items()}}

    def export_stats(self) -> dict[str, Any]:
        result = self.stats.export()
        result["open_clients"] = sum(1 for c in self.clients if c.is_open)
        result["open_by_doc"] = dict(
            Counter(c.spec.doc for c in self.clients if c.is_open and not c.spec.sink)
        )
        result["clients"] = len(self.clients)
        return result

    async def close(self) -> dict[str, Any]:
        for c in self.clients:
            c.close()
        await asyncio.gather(*(c.wait_closed(3.0) for c in self.clients))
        return {"closed": len(self.clients)}


async def _serve(conn: Any, index: int) -> None:
    loop = asyncio.get_running_loop()
    worker = Worker(index)
    while True:
        try:
            cmd = await loop.run_in_executor(None, conn.recv)
        except (EOFError, OSError):
            return  # the orchestrator went away: exit, the sockets close with us
        try:
            reply = await worker.handle(cmd)
        except Exception as exc:  # report to the orchestrator, which prints it
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return
        if cmd["op"] == "close":
            return


def worker_main(conn: Any, index: int) -> None:
    """Entry point of a load-generator process (started by run.py)."""
    # Ctrl-C goes to the whole process group: the orchestrator handles it and closes us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(conn, index))
    else:
        uvloop.run(_serve(conn, index))
