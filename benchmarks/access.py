"""Access control costs: per message, per connection, and how fast an access change takes effect.

    python benchmarks/access.py [--trials 40]

Prints (does not assert):
- the per-message check: a flag read on the connection (the decision is cached per connection);
- the per-connection decision: ``decide()`` alone, and ``Authorizer.authorize`` with its metadata
  query against SQLite;
- revocation: time from sending ``PUT …/access`` to the revoked client's socket closing (4401);
- upgrade: time from sending ``PUT …/access`` (viewer → editor) to the first edit the upgraded
  client makes after the answer reaching the owner.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import timeit

import httpx
import pycrdt
from daemon_process import percentile, running_daemon
from syncd_client import Client

from storage import DocKey, DocMeta, SqlStore
from syncd.access import Authorizer, decide
from syncd.docid import DocId
from syncd.tokens import TokenKeys


def micro() -> dict[str, float]:
    keys = TokenKeys(secret="s" * 32)
    identity = keys.verify(keys.mint("bob"))
    doc = DocId.parse("alice/canvas")
    meta = DocMeta(DocKey("default", "alice/canvas"), "shared", {"bob": "viewer"}, 1, 1, 0, 0)

    class Conn:
        readonly = True

    conn = Conn()
    n = 1_000_000
    flag = timeit.timeit(lambda: conn.readonly, number=n) / n
    n = 100_000
    decision = timeit.timeit(lambda: decide(identity, doc, meta), number=n) / n
    return {"per-message check (flag read)": flag, "decide() per connection": decision}


async def authorize_cost() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlStore(f"sqlite:///{tmp}/a.db")
        await store.open()
        keys = TokenKeys(secret="s" * 32)
        access = Authorizer(keys, store)
        await store.create(DocKey("default", "alice/canvas"))
        await store.set_access(DocKey("default", "alice/canvas"), "shared", {"bob": "editor"})
        token = keys.mint("bob")
        doc = DocId.parse("alice/canvas")
        n = 500
        started = time.perf_counter()
        for _ in range(n):
            await access.authorize(access.identify(token), doc)
        await store.close()
        return (time.perf_counter() - started) / n


async def live_changes(trials: int) -> tuple[list[float], list[float]]:
    revoke_ms: list[float] = []
    upgrade_ms: list[float] = []
    with running_daemon() as d:
        alice = d.token("alice")
        auth = {"authorization": f"Bearer {alice}"}
        async with httpx.AsyncClient(base_url=d.http) as http:
            for i in range(trials):
                doc = f"alice/live-{i}"
                path = f"/v1/docs/{doc}/access"
                await http.put(
                    path, json={"mode": "shared", "grants": {"bob": "viewer"}}, headers=auth
                )
                async with Client(d.ws, alice) as owner, Client(d.ws, d.token("bob")) as bob:
                    mine = owner.document(doc)
                    theirs = bob.document(doc)
                    await mine.wait_saved(10)
                    await theirs.wait_for(lambda t=theirs: t.scope == "readonly", 10)
                    started = time.perf_counter()
                    await http.put(
                        path, json={"mode": "shared", "grants": {"bob": "editor"}}, headers=auth
                    )
                    await theirs.wait_for(lambda t=theirs: t.scope == "read-write", 10)
                    theirs.doc.get("m", type=pycrdt.Map)["hello"] = i
                    seen = mine.doc.get("m", type=pycrdt.Map)
                    await mine.wait_for(lambda s=seen, i=i: s.get("hello") == i, 10)
                    upgrade_ms.append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    await http.put(path, json={"mode": "private", "grants": {}}, headers=auth)
                    await theirs.wait_for(lambda t=theirs: t.denied_reason is not None, 10)
                    revoke_ms.append((time.perf_counter() - started) * 1000)
    return revoke_ms, upgrade_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    args = parser.parse_args()
    print("| measurement | value |\n|---|---|")
    for name, seconds in micro().items():
        print(f"| {name} | {seconds * 1e9:.0f} ns |")
    per_conn = asyncio.run(authorize_cost())
    name = "Authorizer.authorize per connection (token + SQLite query)"
    print(f"| {name} | {per_conn * 1e6:.0f} µs |")
    revoke, upgrade = asyncio.run(live_changes(args.trials))
    for name, values in (
        ("revocation: PUT → socket closed for that document", revoke),
        ("upgrade: PUT → next edit at the owner", upgrade),
    ):
        print(
            f"| {name} | p50 {statistics.median(values):.1f} ms, "
            f"p95 {percentile(values, 95):.1f} ms, max {max(values):.1f} ms (n={len(values)}) |"
        )


if __name__ == "__main__":
    main()
