"""Several syncd nodes sharing one Postgres schema and one Redis: the topology of DESIGN.md §1.9,
as local processes (the docker-compose one, without images).

Two kinds of node:

- in this process (:func:`start_cluster`): fast, and a test can look inside them
  (``cluster[1].daemon.rooms``);
- a ``python -m syncd serve`` subprocess (:func:`start_process_node`), for SIGKILL.

Every node signs and checks tokens with the same key (``servers.SECRET``), so a token minted by
one (:func:`mint`) is good on all, as behind a load balancer without stickiness.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pycrdt

from storage import DocKey, SqlStore
from syncd.settings import Settings
from syncd.tokens import TokenKeys
from tests.support.servers import SECRET, DaemonProcess, RunningDaemon, start_daemon

__all__ = [
    "Cluster",
    "docs_url",
    "mint",
    "running_cluster",
    "start_cluster",
    "start_process_node",
    "stored_doc",
    "sync_url",
    "wait_broker",
]


def mint(sub: str, **claims: Any) -> str:
    """A token every node accepts (they all share ``SECRET``)."""
    return TokenKeys(secret=SECRET).mint(sub, **claims)


def docs_url(port: int) -> str:
    """The y-websocket server URL of a node: ``WebsocketProvider(docs_url(port), 'alice/doc')``."""
    return f"ws://127.0.0.1:{port}/v1/docs"


def sync_url(port: int) -> str:
    """The multiplexed (Hocuspocus) endpoint of a node."""
    return f"ws://127.0.0.1:{port}/v1/sync"


@dataclass
class Cluster:
    """In-process nodes on one database and one Redis; ``cluster[i]`` is node ``i``."""

    nodes: list[RunningDaemon]
    database_url: str
    redis_url: str

    def __getitem__(self, index: int) -> RunningDaemon:
        return self.nodes[index]

    def __iter__(self) -> Iterator[RunningDaemon]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    @staticmethod
    def token(sub: str, **claims: Any) -> str:
        return mint(sub, **claims)

    def ws_url(self, node: int, doc: str, sub: str, **claims: Any) -> str:
        """``/v1/docs/{doc}`` on node ``node`` with a token for ``sub``."""
        return self.nodes[node].ws_url(doc, mint(sub, **claims))

    async def stop(self) -> None:
        """Stop every node (each commits what it holds first), in parallel."""
        nodes, self.nodes = self.nodes, []
        results = await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result


def node_settings(
    settings: Settings, data_dir: Path, database_url: str, redis_url: str
) -> Settings:
    """``settings`` as one node of the cluster: the shared database and Redis, its own data dir."""
    return replace(settings, data_dir=data_dir, database_url=database_url, redis_url=redis_url)


async def start_cluster(
    settings: Settings, database_url: str, redis_url: str, count: int = 2
) -> Cluster:
    """Start ``count`` in-process nodes together (as a deployment does: on an empty database
    they must not race to create the tables), each connected to Redis when this returns; on a
    failure, stop those that started."""

    async def start(i: int) -> RunningDaemon:
        node = node_settings(settings, settings.data_dir / f"node-{i}", database_url, redis_url)
        running = await start_daemon(node)
        try:
            await wait_broker(running.port)
        except BaseException:
            await running.stop()
            raise
        return running

    started = await asyncio.gather(*(start(i) for i in range(count)), return_exceptions=True)
    cluster = Cluster([n for n in started if isinstance(n, RunningDaemon)], database_url, redis_url)
    for result in started:
        if isinstance(result, BaseException):
            await cluster.stop()
            raise result
    return cluster


@contextlib.asynccontextmanager
async def running_cluster(
    settings: Settings, database_url: str, redis_url: str, count: int = 2
) -> AsyncIterator[Cluster]:
    """:func:`start_cluster`, stopped on the way out."""
    cluster = await start_cluster(settings, database_url, redis_url, count)
    try:
        yield cluster
    finally:
        await cluster.stop()


async def start_process_node(data_dir: Path, database_url: str, redis_url: str) -> DaemonProcess:
    """One node as a subprocess (``SYNCD_REDIS_URL`` set), healthy when this returns.

    The readiness loop of :meth:`DaemonProcess.start` blocks, so it runs in a thread: the
    in-process nodes sharing this event loop keep serving meanwhile.
    """
    proc = DaemonProcess(data_dir, database_url, env={"SYNCD_REDIS_URL": redis_url})
    await asyncio.to_thread(proc.start)
    try:
        await wait_broker(proc.port)
    except BaseException:
        proc.kill()
        raise
    return proc


async def wait_broker(port: int, state: str = "ok", timeout: float = 20) -> None:
    """Wait until the node on ``port`` reports its broker ``state`` in ``/healthz``.

    A readiness loop on another component's port (the broker connects in the background and
    offers no event a test could await).
    """
    seen = None
    async with httpx.AsyncClient(timeout=5) as http:
        try:
            async with asyncio.timeout(timeout):
                while seen != state:
                    r = await http.get(f"http://127.0.0.1:{port}/healthz")
                    seen = r.json().get("broker")
                    if seen != state:
                        await asyncio.sleep(0.02)
        except TimeoutError:
            raise TimeoutError(f"node {port}: broker {seen!r}, not {state!r}") from None


async def stored_doc(database_url: str, name: str, tenant: str = "default") -> pycrdt.Doc:
    """The document as the database holds it (Postgres is the truth), read by no node: a store
    of its own, snapshot then tail. An unknown document is an empty one."""
    store = SqlStore(database_url)
    await store.open()
    try:
        loaded = await store.load(DocKey(tenant, name))
    finally:
        await store.close()
    doc = pycrdt.Doc()
    if loaded is not None:
        for update in [loaded.snapshot, *loaded.tail]:
            if update:
                doc.apply_update(update)
    return doc
