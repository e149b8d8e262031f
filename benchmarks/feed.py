"""Change feed throughput and latency, as a service sees it.

    python benchmarks/feed.py [--writers 8] [--docs 20] [--updates 300] [--rate 50]
                              [--database-url URL]

Writers (SDK clients over /v1/sync) stream small edits to many documents while one subscriber
follows ``ws://…/v1/feed`` (push). Prints (does not assert):
- events/s delivered to the subscriber while the writers run, and the backlog drain rate of a
  subscriber that starts from the oldest cursor after they stopped;
- latency from commit to subscriber: the time an event is received minus its ``at`` (taken by
  the store when the commit starts, on the same machine clock), p50/p95/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import time

import msgpack
import pycrdt
import websockets
from daemon_process import percentile, running_daemon
from syncd_client import Client


def _at(event: dict) -> float:
    return dt.datetime.fromisoformat(event["at"].replace("Z", "+00:00")).timestamp()


async def follow(url: str, expected: int, out: list[tuple[float, dict]]) -> None:
    async with websockets.connect(url, max_size=None) as ws:
        while len(out) < expected:
            page = msgpack.unpackb(await ws.recv())
            now = time.time()
            out.extend((now, e) for e in page["events"])


async def run(writers: int, docs: int, updates: int, rate: float, database_url: str | None) -> None:
    with running_daemon(database_url) as d:
        owner = d.token("owner")
        svc = d.token("analytics", role="service")
        names = [f"owner/doc-{i}" for i in range(docs)]
        clients = [Client(d.ws, owner) for _ in range(writers)]
        for c in clients:
            c.start()
        handles = [
            [c.document(n) for n in names[i::writers] or names[:1]] for i, c in enumerate(clients)
        ]
        for hs in handles:
            for h in hs:
                await h.wait_saved(30)
        total = writers * updates
        live: list[tuple[float, dict]] = []
        base = f"{d.ws}/v1/feed?token={svc}&limit=500"
        follower = asyncio.create_task(follow(f"{base}", total, live))

        async def write(i: int) -> None:
            hs = handles[i]
            start = time.perf_counter()
            for n in range(updates):
                hs[n % len(hs)].doc.get("m", type=pycrdt.Map)[f"w{i}"] = n
                # Paced: each writer makes `rate` edits per second.
                await asyncio.sleep(max(0.0, start + (n + 1) / rate - time.perf_counter()))

        started = time.perf_counter()
        await asyncio.gather(*(write(i) for i in range(writers)))
        for c in clients:
            await c.synced(120)
        await asyncio.wait_for(follower, 120)
        elapsed = time.perf_counter() - started
        for c in clients:
            await c.close()
        latencies = [(received - _at(e)) * 1000 for received, e in live]
        backlog: list[tuple[float, dict]] = []
        drain_started = time.perf_counter()
        await asyncio.wait_for(follow(base, len(live), backlog), 120)
        drain = time.perf_counter() - drain_started
    print("| figure | value |\n|---|---|")
    print(
        f"| writers x documents x updates per writer (each at {rate:g}/s) "
        f"| {writers} x {docs} x {updates} |"
    )
    print(
        f"| events delivered live | {len(live)} in {elapsed:.2f} s = {len(live) / elapsed:,.0f}/s |"
    )
    print(
        f"| commit → subscriber latency | p50 {statistics.median(latencies):.1f} ms, "
        f"p95 {percentile(latencies, 95):.1f} ms, p99 {percentile(latencies, 99):.1f} ms |"
    )
    print(f"| backlog drain from the oldest cursor | {len(backlog) / drain:,.0f} events/s |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--docs", type=int, default=20)
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--rate", type=float, default=50.0, help="edits per second per writer")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(run(args.writers, args.docs, args.updates, args.rate, args.database_url))


if __name__ == "__main__":
    main()
