"""History costs (issue 11): rollback, version rebuild, version creation, storage of history.

    python benchmarks/history.py [--database-url postgresql://…] [--quick]

Prints (does not assert), on SQLite in a temporary directory unless a URL is given:
- rollback of one principal over a 10,000-update canvas history (alice and bob alternate; bob's
  last 1,000 updates are the window): the pure computation (``crdt/rollback.py``: replay into a
  ``Doc(skip_gc=True)`` plus undo) and the store read before it, p50/p95 over repeated runs;
- rebuilding a version of a 100,000-update document: a version above the last snapshot (the
  snapshot plus the rows after it), a version compaction gave its own state, and, for scale, the
  fold of the whole log with no snapshot at all;
- creating a version (a pointer: one insert), p50/p95;
- the storage 10,000 canvas moves add: the log rows history retention keeps, against the one
  snapshot that remains with no retention, and what a version state costs once compaction passed
  it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pycrdt
from sqlalchemy import func, select

from crdt.restore import root_kinds
from crdt.rollback import rollback_edit
from storage import DocKey, NewUpdate, SqlStore
from storage.history import NAMED, SqlHistory
from storage.schema import snapshots, updates, versions


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def canvas_moves(count: int, cards: int = 20, seed: int = 7) -> list[tuple[str, bytes]]:
    """``count`` canvas updates: ``cards`` cards created, then moves; alice and bob alternate."""
    rng = random.Random(seed)
    doc = pycrdt.Doc()
    elements = doc.get("elements", type=pycrdt.Map)
    out: list[tuple[str, bytes]] = []
    for n in range(count):
        who = "alice" if n % 2 == 0 else "bob"
        before = doc.get_state()
        if n < cards:
            elements[f"card-{n}"] = pycrdt.Map({"kind": "card", "x": 0.0, "y": 0.0, "by": who})
        else:
            card = elements[f"card-{rng.randrange(cards)}"]
            with doc.transaction():
                card["x"] = float(rng.randrange(2000))
                card["y"] = float(rng.randrange(2000))
        out.append((who, doc.get_update(before)))
    return out


async def timed(call: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await call()
        times.append((time.perf_counter() - start) * 1000)
    return times


def report(label: str, times: list[float]) -> None:
    print(
        f"  {label}: p50 {statistics.median(times):.1f} ms, p95 {percentile(times, 0.95):.1f} ms"
        f" ({len(times)} runs)"
    )


async def append_all(store: SqlStore, key: DocKey, log: list[tuple[str, bytes]]) -> None:
    for start in range(0, len(log), 1000):
        chunk = log[start : start + 1000]
        await store.append({key: [NewUpdate(u, who, "client") for who, u in chunk]})


async def rollback_bench(store: SqlStore, runs: int) -> None:
    print("rollback of bob over a 10,000-update history (window: bob's last 1,000 updates)")
    log = canvas_moves(10_000)
    history = SqlHistory(store)
    window_start = 10_000 - 2_000 + 1  # seqs of the window; bob writes every second one
    undone = {s for s in range(window_start, 10_001) if log[s - 1][0] == "bob"}
    for label, versioned in (("whole log replayed", False), ("from a version's state", True)):
        key = DocKey("default", f"bench/rollback-{versioned}")
        await append_all(store, key, log)
        if versioned:  # an automatic version before the window, compaction gave it its state
            await history.create_version(key, "auto", NAMED, "bench", seq=window_start - 1)
            await store.compact(key)
        found = await history.history_from(key, min(undone) - 1)
        assert found is not None
        base, _ = found
        doc = pycrdt.Doc()
        for _, u in log:
            doc.apply_update(u)
        roots = root_kinds(doc.get_update())
        entries = [(e.data, e.seq in undone) for e in base.log]
        print(f"  {label}: base at seq {base.seq}, {len(entries):,} updates replayed")

        async def read(key: DocKey = key) -> object:
            return await history.history_from(key, min(undone) - 1)

        async def compute(base=base, entries=entries, roots=roots) -> object:  # type: ignore[no-untyped-def]
            return rollback_edit(base.state, entries, roots)

        reads, computes = await timed(read, runs), await timed(compute, runs)
        report("    store read (base and the log after it)", reads)
        report("    replay + undo (crdt/rollback.py)", computes)
        report("    total", [a + b for a, b in zip(reads, computes, strict=True)])


async def rebuild_bench(
    store: SqlStore, size: int, runs: int, *, unfolded: bool, cards: int = 20
) -> None:
    print(f"rebuilding a version of a {size:,}-update document ({cards} cards moved at random)")
    key = DocKey("default", f"bench/big-{cards}")
    log = canvas_moves(size + 400, cards=cards)
    history = SqlHistory(store)
    start = time.perf_counter()
    for offset in range(0, size, 10_000):
        await append_all(store, key, log[offset : offset + 10_000])
        if offset + 10_000 < size:
            await store.compact(key)  # as the daemon does, every few hundred updates or MiB
    print(f"  (built in {time.perf_counter() - start:.0f} s)")
    kept = await history.create_version(key, "folded past", NAMED, "bench")
    await store.compact(key)  # gives ``kept`` its own state
    await append_all(store, key, log[size:])  # 400 more moves of the same cards
    above = await history.create_version(key, "above the snapshot", NAMED, "bench")
    report(
        "version with its own state", await timed(lambda: history.version_state(key, kept.id), runs)
    )
    report(
        "version above the snapshot (snapshot + 400 rows)",
        await timed(lambda: history.version_state(key, above.id), runs),
    )
    if unfolded:  # superlinear in pycrdt (long chains of overwritten map values): small only
        loose = DocKey("default", "bench/big-unfolded")
        await append_all(store, loose, log[:size])
        whole = await history.create_version(loose, "no snapshot", NAMED, "bench")
        report(
            f"fold of all {size:,} rows (no snapshot ever)",
            await timed(lambda: history.version_state(loose, whole.id), 2),
        )


async def create_bench(store: SqlStore, runs: int) -> None:
    print("creating a version (one insert under the document's row lock)")
    key = DocKey("default", "bench/versions")
    await append_all(store, key, canvas_moves(100))
    history = SqlHistory(store)
    report("create", await timed(lambda: history.create_version(key, "v", NAMED, "bench"), runs))


async def storage_bench(url_for: Callable[[str], str]) -> None:
    print("storage added by 10,000 canvas moves")
    log = canvas_moves(10_020)
    sizes = {}
    for label, retention in (
        ("history kept (30-day retention)", 30 * 24 * 3600.0),
        ("no retention", 0.0),
    ):
        store = SqlStore(
            url_for(label.split()[0]), retention_seconds=retention, sqlite_synchronous="OFF"
        )
        await store.open()
        key = DocKey("default", "bench/storage")
        history = SqlHistory(store)
        for offset in range(0, len(log), 500):
            await append_all(store, key, log[offset : offset + 500])
            await store.compact(key)  # every 500 updates, as the daemon's default
        version = await history.create_version(key, "v", NAMED, "bench")
        await append_all(store, key, canvas_moves(10, seed=3))
        await store.compact(key)
        async with store._begin(write=False) as conn:
            log_bytes = (
                await conn.execute(select(func.coalesce(func.sum(func.length(updates.c.data)), 0)))
            ).scalar_one()
            snap_bytes = (
                await conn.execute(
                    select(func.coalesce(func.sum(func.length(snapshots.c.state)), 0))
                )
            ).scalar_one()
            version_bytes = (
                await conn.execute(
                    select(func.length(versions.c.state)).where(versions.c.id == version.id)
                )
            ).scalar_one()
        sizes[label] = (log_bytes, snap_bytes, version_bytes)
        await store.close()
    for label, (log_bytes, snap_bytes, version_bytes) in sizes.items():
        print(
            f"  {label}: log rows {log_bytes:,} B, snapshot {snap_bytes:,} B,"
            f" one version state {version_bytes:,} B"
        )
    kept = sizes["history kept (30-day retention)"][0] - sizes["no retention"][0]
    print(f"  => retention adds {kept:,} B per 10,000 moves ({kept / 10_000:.1f} B a move)")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--quick", action="store_true", help="10,000 instead of 100,000 updates")
    parser.add_argument("--only", choices=["create", "rollback", "rebuild", "storage"])
    parser.add_argument("--cards", type=int, default=20, help="cards the rebuilt canvas moves")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:

        def url_for(name: str) -> str:
            return args.database_url or f"sqlite:///{Path(tmp) / name}.db"

        store = SqlStore(url_for("main"), retention_seconds=None)
        await store.open()
        try:
            if args.only in (None, "create"):
                await create_bench(store, 200)
            if args.only in (None, "rollback"):
                await rollback_bench(store, 20)
            if args.only in (None, "rebuild"):
                size = 10_000 if args.quick else 100_000
                await rebuild_bench(store, size, 10, unfolded=args.quick, cards=args.cards)
        finally:
            await store.close()
        if args.database_url is None and args.only in (None, "storage"):
            await storage_bench(url_for)


if __name__ == "__main__":
    asyncio.run(main())
