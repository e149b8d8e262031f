"""Encryption at rest (issue 12): what sealing adds to each stored update.

    python benchmarks/encryption.py [--database-url postgresql://…] [--appends 2000]

With ``--database-url`` (Postgres), two fresh schemas are made there and dropped afterwards.

Prints (does not assert), side by side in one run:
- the seal itself (``storage/sealing.py``: associated data, random nonce, AES-256-GCM) and its
  open, per update, for a realistic small update (~120 bytes: a canvas move or a few typed
  characters) and a 4 KB one; p50/p95 in µs;
- ``SqlStore.append`` of one update per transaction, sealing on and off, interleaved (on, off,
  on, off, …) on the same database so both see the same disk and load: wall time p50/p95 and
  the process CPU time per append (which leaves out the fsync wait that dominates the wall
  time on SQLite with ``synchronous=FULL``). Without ``--database-url``: SQLite in a
  temporary directory.

The issue's target: at most 50 µs p95 added per write.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator

import pycrdt
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storage import DocKey, NewUpdate, SqlStore
from storage.key_ring import KeyRing
from storage.sealing import Kind, associated_data, open_sealed, seal


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def realistic_updates() -> dict[str, bytes]:
    """A canvas card drag (~100 bytes as yjs encodes it) and a 4 KB pasted text."""
    doc = pycrdt.Doc()
    elements = doc.get("elements", type=pycrdt.Map)
    with doc.transaction():
        elements["card-V1StGXR8_Z5jdHi6B-myT"] = pycrdt.Map(
            {"kind": "card", "x": 10.0, "y": 20.0, "w": 120.0, "h": 180.0, "z": 1.0}
        )
    card = elements["card-V1StGXR8_Z5jdHi6B-myT"]
    before = doc.get_state()
    with doc.transaction():  # a card dragged: position, rotation, z, and who moved it
        card["x"] = 311.5
        card["y"] = 207.25
        card["rotation"] = 4.5
        card["z"] = 12.0
        card["author"] = "participant-7"
    small = doc.get_update(before)
    before = doc.get_state()
    text = doc.get("t", type=pycrdt.Text)
    text += "lorem ipsum dolor sit amet " * 152  # 4,104 characters
    large = doc.get_update(before)
    return {f"{len(small)} B": small, f"{len(large)} B": large}


def seal_costs(update: bytes, rounds: int) -> tuple[list[float], list[float]]:
    aead = AESGCM(AESGCM.generate_key(256))
    seal_us, open_us = [], []
    for seq in range(1, rounds + 1):
        t0 = time.perf_counter_ns()
        where = associated_data("acme", "alice/board", Kind.UPDATE, seq)
        sealed = seal(aead, 1, where, update)
        t1 = time.perf_counter_ns()
        open_sealed(aead, sealed, associated_data("acme", "alice/board", Kind.UPDATE, seq))
        t2 = time.perf_counter_ns()
        seal_us.append((t1 - t0) / 1000)
        open_us.append((t2 - t1) / 1000)
    return seal_us, open_us


async def added_work(url: str, master: bytes, update: bytes, rounds: int) -> list[float]:
    """Exactly what sealing adds to an append of one update: the sealer (the tenant's cached
    key) and one seal, in µs (no database: what the append paths run on top)."""
    store = SqlStore(url, key_ring=KeyRing(master))
    await store.open()
    key = DocKey("acme", "alice/board")
    out = []
    try:
        await store.sealing.sealer(store._begin, {key.tenant})  # the key made, then cached
        for seq in range(1, rounds + 1):
            t0 = time.perf_counter_ns()
            sealer = await store.sealing.sealer(store._begin, {key.tenant})
            assert sealer is not None
            sealer(key, seq, update)
            out.append((time.perf_counter_ns() - t0) / 1000)
    finally:
        await store.close()
    return out


async def append_costs(
    urls: dict[str, str], master: bytes, update: bytes, appends: int
) -> dict[str, tuple[list[float], list[float]]]:
    """(wall µs, CPU µs) per append for sealing on and off, interleaved; two databases side by
    side (a sealed database refuses a store without its key)."""
    stores = {
        "off": SqlStore(urls["off"]),
        "on": SqlStore(urls["on"], key_ring=KeyRing(master)),
    }
    for store in stores.values():
        await store.open()
    keys = {mode: DocKey(f"bench-{mode}", "alice/board") for mode in stores}
    out: dict[str, tuple[list[float], list[float]]] = {mode: ([], []) for mode in stores}
    try:
        for mode, store in stores.items():  # warm up: documents created, keys made, cached
            await store.append({keys[mode]: [NewUpdate(update, "alice", "client")]})
        for _ in range(appends):
            for mode, store in stores.items():
                batch = {keys[mode]: [NewUpdate(update, "alice", "client")]}
                w0, c0 = time.perf_counter_ns(), time.process_time_ns()
                await store.append(batch)
                c1, w1 = time.process_time_ns(), time.perf_counter_ns()
                out[mode][0].append((w1 - w0) / 1000)
                out[mode][1].append((c1 - c0) / 1000)
    finally:
        for store in stores.values():
            await store.close()
    return out


@contextlib.contextmanager
def databases(postgres_url: str | None, tmp: str) -> Iterator[dict[str, str]]:
    """Two empty databases, sealing off and on: SQLite files in ``tmp``, or two fresh schemas
    of ``postgres_url`` (dropped afterwards)."""
    if postgres_url is None:
        yield {mode: f"sqlite:///{tmp}/{mode}.db" for mode in ("off", "on")}
        return
    import psycopg

    schemas = {mode: f"bench_sealing_{mode}_{uuid.uuid4().hex[:8]}" for mode in ("off", "on")}
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for schema in schemas.values():
            conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in postgres_url else "?"
    try:
        yield {m: f"{postgres_url}{sep}options=-csearch_path%3D{s}" for m, s in schemas.items()}
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            for schema in schemas.values():
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="postgresql://… (default: SQLite in a temp dir)")
    parser.add_argument("--appends", type=int, default=2000, help="per mode and size")
    parser.add_argument("--seals", type=int, default=20000, help="seal/open rounds per size")
    args = parser.parse_args()
    sizes = realistic_updates()

    print("seal / open per update (µs)")
    print(f"  {'update':>8}  {'seal p50':>9} {'seal p95':>9}  {'open p50':>9} {'open p95':>9}")
    for label, update in sizes.items():
        sealed, opened = seal_costs(update, args.seals)
        print(
            f"  {label:>8}  {percentile(sealed, 0.5):9.1f} {percentile(sealed, 0.95):9.1f}"
            f"  {percentile(opened, 0.5):9.1f} {percentile(opened, 0.95):9.1f}"
        )

    print("\nwhat sealing adds to one append (sealer + seal, µs)")
    for label, update in sizes.items():
        with tempfile.TemporaryDirectory() as tmp:
            added = await added_work(f"sqlite:///{tmp}/k.db", os.urandom(32), update, args.seals)
        p50, p95 = percentile(added, 0.5), percentile(added, 0.95)
        print(f"  {label:>8}  p50 {p50:6.1f}  p95 {p95:6.1f}")

    with tempfile.TemporaryDirectory() as tmp, databases(args.database_url, tmp) as urls:
        master = os.urandom(32)  # one per database: it wraps the data keys made there
        backend = "Postgres" if args.database_url else "SQLite (synchronous=FULL)"
        print(f"\nappend of one update per transaction, {backend}, {args.appends} each (µs)")
        print(
            f"  {'update':>8} {'sealing':>7}  {'wall p50':>9} {'wall p95':>9}"
            f"  {'CPU mean':>9} {'CPU p95':>9}"
        )
        for label, update in sizes.items():
            costs = await append_costs(urls, master, update, args.appends)
            for mode in ("off", "on"):
                wall, cpu = costs[mode]
                print(
                    f"  {label:>8} {mode:>7}  {percentile(wall, 0.5):9.0f}"
                    f" {percentile(wall, 0.95):9.0f}  {statistics.fmean(cpu):9.0f}"
                    f" {percentile(cpu, 0.95):9.0f}"
                )
            added = percentile(costs["on"][1], 0.95) - percentile(costs["off"][1], 0.95)
            print(f"  {label:>8} added CPU p95: {added:+.0f} µs")


if __name__ == "__main__":
    asyncio.run(main())
