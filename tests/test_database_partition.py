"""A silent network partition from Postgres (issue 8, acceptance test 9): nothing hangs.

The proxy black-holes the database: it forwards nothing either way and keeps every socket
open, so no error ever comes by itself. Writers must still be closed with 1011 within the
database deadline, /healthz must answer 503 within seconds, and once the network is back new
writes succeed and nothing the server acknowledged is lost.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

import httpx
import pycrdt
import pytest
from sqlalchemy import text

from storage import DocKey, NewUpdate, SqlStore, StoreUnavailable
from storage.sql import PING_TIMEOUT
from tests.support.hpclient import HpClient, HpDoc
from tests.support.servers import RunningDaemon, start_daemon
from tests.support.tcp_proxy import TcpProxy
from tests.support.yclient import YClient

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

TIMEOUT = 2.0  # SYNCD_DATABASE_TIMEOUT_SECONDS for this daemon
# A writer's update may arrive while another commit round is already waiting on the dead
# database: it then waits for that round and for its own, two deadlines. The margin is for a
# busy 2-core machine; without deadlines the wait was 80 s and more.
CLOSE_BOUND = 2 * TIMEOUT + 4.0
HEALTH_BOUND = PING_TIMEOUT + 3.0


class Writer:
    """One ``/v1/sync`` socket writing one document; remembers what the server acknowledged."""

    def __init__(self, client: HpClient, hp: HpDoc) -> None:
        self.client = client
        self.hp = hp
        self.sent: list[str] = []  # map keys, in the order their updates were sent

    @classmethod
    async def open(
        cls, daemon: RunningDaemon, name: str, doc: pycrdt.Doc | None = None
    ) -> Writer:
        client = await HpClient(f"ws://127.0.0.1:{daemon.port}/v1/sync").connect()
        hp = client.open(name, daemon.token("alice"), doc)
        # Opening ends with our step 2 (the answer to the server's step 1) being acknowledged:
        # from then on the n-th SyncStatus answers the n-th key written.
        await client.wait_until(lambda: hp.synced and len(hp.statuses) == 1)
        assert hp.statuses == [True]
        return cls(client, hp)

    def write(self, key: str) -> None:
        self.hp.doc.get("m", type=pycrdt.Map)[key] = len(self.sent)
        self.sent.append(key)

    @property
    def acknowledged(self) -> set[str]:
        # Writes still unanswered have no status yet: zip stops at the shorter list.
        return {key for key, ok in zip(self.sent, self.hp.statuses[1:], strict=False) if ok}

    async def wait_acknowledged(self) -> None:
        await self.client.wait_until(lambda: self.acknowledged == set(self.sent))


async def test_black_holed_postgres_fails_fast_and_loses_nothing_acknowledged(
    settings, postgres_url
):
    parts = urlsplit(postgres_url)
    proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    via_proxy = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    running = await start_daemon(
        replace(settings, database_url=via_proxy, database_timeout_seconds=TIMEOUT)
    )
    names = [f"alice/partition-{i}" for i in range(3)]
    acknowledged: dict[str, set[str]] = {name: set() for name in names}
    replicas: dict[str, pycrdt.Doc] = {}
    loop = asyncio.get_running_loop()
    try:
        async with httpx.AsyncClient(base_url=running.http, timeout=60) as http:
            writers = [await Writer.open(running, name) for name in names]
            y_url = running.ws_url("alice/partition-y", running.token("alice"))
            plain = await YClient(y_url).connect()
            for w in writers:
                w.write("before-1")
                w.write("before-2")
            for w in writers:
                await w.wait_acknowledged()
            assert (await http.get("/healthz")).status_code == 200

            proxy.black_hole()
            started = loop.time()
            for w in writers:
                w.write("during")
            plain.doc.get("m", type=pycrdt.Map)["during"] = 1

            async def health_answer() -> tuple[int, float]:
                asked = loop.time()
                r = await http.get("/healthz")
                return r.status_code, loop.time() - asked

            health = asyncio.create_task(health_answer())
            async with asyncio.timeout(CLOSE_BOUND):
                await asyncio.gather(*(w.client.closed.wait() for w in writers))
                await plain.closed.wait()
            closed_after = loop.time() - started
            assert [w.client.close_code for w in writers] == [1011] * len(writers)
            assert plain.close_code == 1011
            status, took = await health
            assert status == 503 and took < HEALTH_BOUND, (status, took)
            assert closed_after < CLOSE_BOUND
            for w in writers:
                acknowledged[w.hp.address] |= w.acknowledged
                replicas[w.hp.address] = w.hp.doc
                await w.client.close()
            y_replica = plain.doc
            await plain.close()

            proxy.restore()
            assert (await http.get("/healthz")).status_code == 200
            # Each writer comes back with its replica, as a provider does: what the partition
            # swallowed is sent again, and a new write is acknowledged.
            for name in names:
                again = await Writer.open(running, name, replicas[name])
                again.write("after")
                await again.wait_acknowledged()
                acknowledged[name] |= again.acknowledged
                await again.client.close()
            async with YClient(y_url, y_replica), YClient(y_url) as fresh:
                # What a fresh client sees has been committed (broadcasts follow the commit).
                await fresh.wait_until(lambda: "during" in fresh.doc.get("m", type=pycrdt.Map))
    finally:
        proxy.restore()
        await running.stop()
        await proxy.stop()

    # The truth is the database itself, read without the proxy or the daemon.
    store = SqlStore(postgres_url)
    await store.open()
    try:
        for name in names:
            stored = _keys(await store.load(DocKey("default", name)))
            assert {"before-1", "before-2", "after"} <= acknowledged[name] <= stored
            assert stored == {"before-1", "before-2", "during", "after"}
        assert _keys(await store.load(DocKey("default", "alice/partition-y"))) == {"during"}
    finally:
        await store.close()


class LoopLag:
    """The longest the event loop went without running a ready callback, while it runs."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)  # measuring the loop, not waiting for anything
            self.worst = max(self.worst, loop.time() - before - 0.01)

    def __enter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def test_store_operations_against_a_silent_database_end_at_their_deadline(postgres_url):
    timeout = 1.0
    parts = urlsplit(postgres_url)
    proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    via_proxy = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    store = SqlStore(via_proxy, timeout_seconds=timeout)
    await store.open()
    key = DocKey("default", "alice/silent")
    ups = _map_updates(3)
    loop = asyncio.get_running_loop()
    try:
        assert (await store.append({key: [NewUpdate(ups[0], "alice", "client")]}))[key] == [1]
        with LoopLag() as lag:
            # Silent in the middle of a transaction: its rollback must not wait on the socket.
            started = loop.time()
            with pytest.raises(StoreUnavailable):
                async with asyncio.timeout(30), store._begin() as conn:
                    await conn.execute(
                        text("UPDATE syncd_feed_position SET pos = pos + 100 WHERE id = 1")
                    )
                    proxy.black_hole()
                    await conn.execute(text("SELECT 1"))
            assert loop.time() - started < timeout + 3.0
            assert store._engine.pool.checkedout() == 0  # discarded, not held half-way
            # Silent from the start: the pool's pre-ping, then a new connection, both bounded.
            for attempt in (
                store.append({key: [NewUpdate(ups[1], "alice", "client")]}),
                store.load(key),
                store.ping(),
            ):
                started = loop.time()
                with pytest.raises(StoreUnavailable):
                    async with asyncio.timeout(30):
                        await attempt
                assert loop.time() - started < timeout + 3.0
        # Nothing waited by blocking the loop (psycopg's cancel dance, a blocking rollback).
        assert lag.worst < 0.5, lag.worst
        proxy.restore()
        # Nothing half-done was committed, and the store works again.
        assert (await store.append({key: [NewUpdate(ups[1], "alice", "client")]}))[key] == [2]
        page = await store.read_feed("default", 0)
        assert [e.pos for e in page.events] == [1, 2]  # the +100 never committed
    finally:
        proxy.restore()
        await store.close()
        await proxy.stop()


def _map_updates(n: int) -> list[bytes]:
    doc = pycrdt.Doc()
    out: list[bytes] = []
    doc.observe(lambda e: out.append(e.update))
    for i in range(n):
        doc.get("m", type=pycrdt.Map)[f"k{i}"] = i
    return out


def _keys(loaded) -> set[str]:  # type: ignore[no-untyped-def]
    doc = pycrdt.Doc()
    if loaded.snapshot:
        doc.apply_update(loaded.snapshot)
    for update in loaded.tail:
        doc.apply_update(update)
    return set(doc.get("m", type=pycrdt.Map).keys())
