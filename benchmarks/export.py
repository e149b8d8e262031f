"""Export throughput (issue 12): ``GET /v1/principals/{sub}/export`` for a participant with
1,000 journal entries.

    python benchmarks/export.py [--database-url postgresql://…] [--entries 1000] [--runs 5]

Prints (does not assert), on SQLite in a temporary directory unless a URL is given. A daemon
runs in this process on a loopback port and is asked over real HTTP, so the figures include
reading the store, the JSON views, compression and the streamed response. Two shapes of the
same participant, each ``--entries`` journal entries written one stored update each (title,
a ~300-character body, two tags; ``crdt/schemas/journal.py``):

- **own** (``alice``): the entries are in her own journal (``documents/journal.json`` and
  ``.yjs``: one document, read whole);
- **activity** (``dana``): the entries are written in a facilitator's shared journal, so the
  export decodes every one of them into ``activity.json`` (the feed's change decoder over the
  log).

For each: p50 and max over ``--runs`` exports of the time to the last byte, the zip's size,
entries per second, and the peak memory Python allocated during one export (``tracemalloc``,
measured in a run of its own since tracing slows everything down).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import tempfile
import time
import tracemalloc
import zipfile
from dataclasses import replace
from pathlib import Path

import httpx
import pycrdt

from crdt.schemas import Journal
from storage import DocKey, NewUpdate
from syncd.daemon import Daemon
from syncd.server import DaemonServer, uvicorn_config
from syncd.settings import Settings

SECRET = "benchmark-secret-not-for-production-0123456789"
BODY = (
    "Today the session was about listening without planning the answer. I noticed how often "
    "I rehearse a reply while the other person is still talking, and tried to stop. It felt "
    "slow, then easier; the questions I asked afterwards were shorter and better."
)


def journal_updates(count: int, title: str) -> list[bytes]:
    """``count`` journal updates: the journal's creation, then one entry per update."""
    doc = pycrdt.Doc()
    journal = Journal(doc)
    before = doc.get_state()
    journal.init(title)
    out = [doc.get_update(before)]
    for n in range(count):
        before = doc.get_state()
        journal.create_entry(f"Entry {n}", BODY, tags=["listening", f"week-{n // 50}"])
        out.append(doc.get_update(before))
    return out


async def seed(daemon: Daemon, entries: int) -> None:
    store = daemon.store
    own = journal_updates(entries, "Alice's journal")
    shared = journal_updates(entries, "Group journal")
    # Stored one update per entry, as clients write them (a batch per 100, for speed).
    for name, writer, items in (
        ("alice/journal", "alice", own),
        ("coach/group", "dana", shared),
    ):
        key = DocKey("default", name)
        await store.create(key)
        for i in range(0, len(items), 100):
            await store.append({key: [NewUpdate(u, writer, "client") for u in items[i : i + 100]]})
    # dana wrote the group journal (its creation too: the facilitator only owns it).
    await store.set_access(DocKey("default", "coach/group"), "shared", {"dana": "editor"})


async def export_once(http: httpx.AsyncClient, sub: str, token: str) -> tuple[float, bytes]:
    start = time.perf_counter()
    chunks: list[bytes] = []
    async with http.stream(
        "GET", f"/v1/principals/{sub}/export", headers={"authorization": f"Bearer {token}"}
    ) as r:
        assert r.status_code == 200, r.status_code
        async for chunk in r.aiter_raw():
            chunks.append(chunk)
    return time.perf_counter() - start, b"".join(chunks)


def contents(archive: bytes) -> str:
    """What the zip holds, from its manifest (so a figure is never of an empty export)."""
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(archive)).read("manifest.json"))
    docs = len(manifest["documents"])
    return f"{docs} documents, {manifest['activity']['entries']} activity entries"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            host="127.0.0.1",
            port=0,
            secret=SECRET,
            log_level="warning",
        )
        if args.database_url:
            settings = replace(settings, database_url=args.database_url)
        await run(settings, args.entries, args.runs)


async def run(settings: Settings, entries: int, runs: int) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = replace(settings, port=port)
    daemon = Daemon(settings)
    from syncd.app import create_app

    server = DaemonServer(uvicorn_config(settings, create_app(settings, daemon)), daemon)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn's own flag: it offers no event
        await asyncio.sleep(0.01)
    try:
        started = time.perf_counter()
        await seed(daemon, entries)
        seeded = time.perf_counter() - started
        print(f"seeded {entries} entries for each participant in {seeded:.1f} s")
        shapes = {"own": "alice", "activity": "dana"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            for shape, sub in shapes.items():
                token = daemon.access.keys.mint(sub)
                await export_once(http, sub, token)  # warm: rooms, caches, imports
                times, archive = [], b""
                for _ in range(runs):
                    seconds, archive = await export_once(http, sub, token)
                    times.append(seconds)
                size = len(archive)
                tracemalloc.start()
                await export_once(http, sub, token)
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                p50 = statistics.median(times)
                total = entries
                print(
                    f"{shape} ({sub}): {total} entries ({contents(archive)}), "
                    f"zip {size / 1e6:.2f} MB; time to last byte p50 {p50 * 1000:.0f} ms, "
                    f"max {max(times) * 1000:.0f} ms over {runs} runs; "
                    f"{total / p50:.0f} entries/s, {size / p50 / 1e6:.2f} MB/s; "
                    f"peak Python allocation during one export {peak / 1e6:.1f} MB"
                )
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


if __name__ == "__main__":
    asyncio.run(main())
