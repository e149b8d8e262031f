"""Cold load of a long history (issue 10): open a room not in memory and answer its first client.

    python benchmarks/cold_load.py [--database-url postgresql://…] [--updates 100000]
        [--compact-every 500] [--runs 7]

Builds, on SQLite (``synchronous=FULL``, a temporary directory) unless a URL is given, one
document with the cold-load scenario's history (``benchmarks/scenarios.py``): 10 writers
writing words into the Y.Text ``body`` and setting their ``bench`` marker in the same
transaction, each update the one its transaction emitted. They are appended in batches as the
group commit does and compacted every ``--compact-every`` updates as the daemon does
(``SYNCD_COMPACT_AFTER_UPDATES``), so the store holds a compaction-written snapshot and a short
tail. Then, ``--runs`` times, with a fresh store object and a fresh Room (nothing cached):
``store.load`` + ``Room.restore`` + the answer to an empty sync step 1 (a new client), and
prints (does not assert) the median and best of each part:

- load: ``SqlStore.load`` (the rows, unsealing);
- replay: ``Room.restore`` (the strict decoder and yrs on whatever is not trusted, the apply);
- encode: the sync step 2 (``Room.sync_step2_for``: the whole state, encoded);
- for scale, what the strict check of the snapshot alone costs (``crdt.replay.check_stored``),
  and a second client's step 2 (cached while the document is unchanged).

Then the same with the served state a room leaves behind when it unloads or its node stops
(``storage/served_state.py``): ``store.load`` + ``Room.restore_later`` + the first client's step
2 (answered from it), and apart, the build of the replica behind that answer.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import pycrdt

from crdt.replay import check_stored
from storage import DocKey, GroupCommit, NewUpdate, SqlStore
from syncd.room import Room

WRITERS = 10
# Its own name each run: a rerun on the same Postgres schema must not meet the last one's
# document (deleted documents are tombstones, never created again).
KEY = DocKey("default", f"bench/cold-load-{int(time.time())}")
# What the daemon derives from its token secret (syncd/daemon.py): the same in every process.
SNAPSHOT_KEY = b"cold-load benchmark snapshot key"


def history(count: int, block: int = 1000) -> list[bytes]:
    """``count`` journal updates from ``WRITERS`` writers taking turns in blocks of ``block``."""
    docs = [pycrdt.Doc(client_id=1000 + i) for i in range(WRITERS)]
    out: list[bytes] = []
    previous: pycrdt.Doc | None = None
    for turn in range((count + block - 1) // block):
        writer = turn % WRITERS
        doc = docs[writer]
        if previous is not None:  # catch up with what the others wrote meanwhile
            doc.apply_update(previous.get_update(doc.get_state()))
        body = doc.get("body", type=pycrdt.Text)
        bench = doc.get("bench", type=pycrdt.Map)
        sub = doc.observe(lambda event: out.append(event.update))
        for n in range(turn * block, min(count, (turn + 1) * block)):
            with doc.transaction():
                body.insert(0, f" word{n}")  # at 0: the end is a walk of the whole text
                bench[f"w{writer}"] = f"{n}:{time.monotonic_ns()}"
        doc.unobserve(sub)
        previous = doc
    return out


async def build(store: SqlStore, count: int, compact_every: int) -> None:
    start = time.perf_counter()
    updates = history(count)
    print(f"  {count:,} updates generated in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    for offset in range(0, count, 250):  # group-commit batches
        await store.append(
            {
                KEY: [
                    NewUpdate(u, f"w{offset % WRITERS}", "client")
                    for u in updates[offset : offset + 250]
                ]
            }
        )
        done = offset + 250
        if done % compact_every == 0 and done < count:
            await store.compact(KEY)
    await store.compact(KEY)
    # A few more after the last compaction: the usual short tail.
    for u in history(count + 37)[count:]:
        await store.append({KEY: [NewUpdate(u, "w0", "client")]})
    print(f"  stored and compacted every {compact_every:,} in {time.perf_counter() - start:.1f} s")


async def keep_served_state(url: str, sync: str) -> None:
    """What a room does when it unloads: keep its answer to a new client."""
    store = SqlStore(url, sqlite_synchronous=sync, snapshot_key=SNAPSHOT_KEY)
    await store.open()
    try:
        loaded = await store.load(KEY)
        assert loaded is not None
        room = Room(KEY, GroupCommit(store))
        room.restore(loaded)
        served = room.served_state()
        assert served is not None
        assert await store.save_served_state(KEY, loaded.epoch, served)
    finally:
        await store.close()


async def cold_open(url: str, sync: str, *, served: bool = False) -> dict[str, float]:
    store = SqlStore(url, sqlite_synchronous=sync, snapshot_key=SNAPSHOT_KEY)
    await store.open()
    commit = GroupCommit(store)
    try:
        t0 = time.perf_counter()
        loaded = await store.load(KEY)
        assert loaded is not None
        t1 = time.perf_counter()
        room = Room(KEY, commit)
        if served:
            assert loaded.served is not None, "no current served state"
            room.restore_later(loaded, loaded.served)
        else:
            assert not room.restore(loaded)
        t2 = time.perf_counter()
        first = await room.sync_step2_for(b"\x00")
        t3 = time.perf_counter()
        await room.readable()  # served: the build behind the answer
        tb = time.perf_counter()
        await room.sync_step2_for(b"\x00")
        t4 = time.perf_counter()
        return {
            "load": t1 - t0,
            "replay": t2 - t1,
            "encode": t3 - t2,
            "total": t3 - t0,
            "build behind": tb - t3,
            "second client": t4 - tb,
            "snapshot bytes": len(loaded.snapshot or b""),
            "tail rows": len(loaded.tail),
            "step 2 bytes": len(first),
            "trusted": float(loaded.snapshot_checked),
        }
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="postgresql://… (default: SQLite in a temp dir)")
    parser.add_argument("--updates", type=int, default=100_000)
    parser.add_argument("--compact-every", type=int, default=500)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sqlite-synchronous", default="FULL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'cold.db'}"
        print(f"cold load of a {args.updates:,}-update history ({url.split(':')[0]})")
        store = SqlStore(url, sqlite_synchronous=args.sqlite_synchronous, snapshot_key=SNAPSHOT_KEY)
        await store.open()
        try:
            await build(store, args.updates, args.compact_every)
            loaded = await store.load(KEY)
            assert loaded is not None and loaded.snapshot is not None
            checks = []
            for _ in range(3):
                start = time.perf_counter()
                check_stored(loaded.snapshot)
                checks.append(time.perf_counter() - start)
        finally:
            await store.close()
        runs = [await cold_open(url, args.sqlite_synchronous) for _ in range(args.runs)]
        await keep_served_state(url, args.sqlite_synchronous)
        served = [
            await cold_open(url, args.sqlite_synchronous, served=True) for _ in range(args.runs)
        ]
    first = runs[0]
    print(
        f"  snapshot {first['snapshot bytes'] / 2**20:.2f} MiB (trusted: "
        f"{'yes' if first['trusted'] else 'no'}), tail {first['tail rows']:.0f} rows,"
        f" sync step 2 {first['step 2 bytes'] / 2**20:.2f} MiB"
    )
    for title, figures, parts in (
        ("replica first", runs, ("load", "replay", "encode", "total", "second client")),
        ("served state", served, ("load", "replay", "encode", "total", "build behind")),
    ):
        print(f"  {title}: load + restore + first step 2")
        for part in parts:
            values = [r[part] * 1000 for r in figures]
            print(
                f"  {part:>13}: median {statistics.median(values):7.1f} ms,"
                f" best {min(values):7.1f} ms ({len(values)} runs)"
            )
    print(f"  (strict check of the snapshot alone: best {min(checks) * 1000:.1f} ms of 3)")


if __name__ == "__main__":
    asyncio.run(main())
