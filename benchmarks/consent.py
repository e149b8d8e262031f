"""Consent filtering's cost per feed event (issue 12).

    python benchmarks/consent.py [--events 4000] [--page 100] [--runs 3]

Prints (does not assert), on SQLite in a temporary directory: the same feed read with and
without a purpose, from the start, in pages, through the daemon's own page path
(``syncd.feed.render_page``: strict check, consent gate, rendering, decoding for
``format=changes``, the audit record) — events per second and µs per event, best of
``--runs``. The log: canvas updates of 20 documents, alice and bob alternating (alice
consents, bob does not), so a purpose-bound read serves placeholders for half of the events.
Each run starts with an empty change-decoder cache.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import pycrdt

from crdt.schemas import Canvas
from storage import DocKey, NewUpdate
from syncd.daemon import Daemon
from syncd.feed import FeedQuery, render_page
from syncd.feed_changes import ChangeStreams
from syncd.settings import Settings
from syncd.tokens import Identity, Role


def canvas_log(count: int, docs: int) -> list[tuple[DocKey, str, bytes]]:
    """``count`` updates over ``docs`` canvases: each writer adds cards and moves them."""
    replicas = {n: Canvas(pycrdt.Doc(), author="alice") for n in range(docs)}
    cards: dict[int, list[str]] = {n: [] for n in range(docs)}
    out: list[tuple[DocKey, str, bytes]] = []
    for i in range(count):
        n = i % docs
        who = "alice" if (i // docs) % 2 == 0 else "bob"
        canvas = replicas[n]
        before = canvas.doc.get_state()
        if not cards[n]:
            canvas.init(f"board {n}")
        if len(cards[n]) < 10:
            cards[n].append(canvas.add_card("tarot", f"{who}-card-{i}", i % 700, i % 500))
        else:
            canvas.move(cards[n][i % len(cards[n])], float(i % 900), float(i % 600))
        out.append((DocKey("default", f"alice/board-{n}"), who, canvas.doc.get_update(before)))
    return out


async def read_feed(daemon: Daemon, identity: Identity, fmt: str, page: int) -> tuple[int, float]:
    daemon.changes = ChangeStreams(daemon.store)
    q = FeedQuery({"limit": str(page), "format": fmt})
    after, served = 0, 0
    start = time.perf_counter()
    while True:
        feed_page = await daemon.store.read_feed("default", after, limit=page)
        if not feed_page.events:
            return served, time.perf_counter() - start
        body = await render_page(daemon, identity, feed_page, q, binary=True)
        served += len(body["events"])
        after = feed_page.next_pos


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--page", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), secret="x" * 40)
        daemon = Daemon(settings)
        await daemon.start()
        try:
            log = canvas_log(args.events, 20)
            for i in range(0, len(log), 200):
                batch: dict[DocKey, list[NewUpdate]] = {}
                for key, who, data in log[i : i + 200]:
                    batch.setdefault(key, []).append(NewUpdate(data, who, "client"))
                await daemon.store.append(batch)
            await daemon.consents.set("default", "alice", {"analytics": True})
            await daemon.consents.set("default", "bob", {"analytics": False})
            plain = Identity("ops", "default", Role.SERVICE, time.time() + 3600)
            bound = Identity("insights", "default", Role.SERVICE, time.time() + 3600, "analytics")
            print(
                f"{args.events} events, 20 canvases, pages of {args.page}, SQLite, best of "
                f"{args.runs}"
            )
            print(f"{'format':8} {'reader':16} {'events/s':>10} {'µs/event':>10} {'added':>10}")
            readers = (("no purpose", plain), ("purpose", bound))
            for fmt in ("updates", "changes"):
                # Interleaved runs, so that the load of a shared machine drifts over both alike.
                times: dict[str, list[tuple[int, float]]] = {name: [] for name, _ in readers}
                for _ in range(args.runs):
                    for name, identity in readers:
                        times[name].append(await read_feed(daemon, identity, fmt, args.page))
                base = None
                for name, _ in readers:
                    served, seconds = min(times[name], key=lambda r: r[1])
                    per = seconds / served * 1e6
                    added = "" if base is None else f"{per - base:+.1f}"
                    base = per if base is None else base
                    print(f"{fmt:8} {name:16} {served / seconds:10.0f} {per:10.1f} {added:>10}")
        finally:
            await daemon.stop()


if __name__ == "__main__":
    asyncio.run(main())
