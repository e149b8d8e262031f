"""Property (hypothesis; issue 9, acceptance 4): three nodes on one Postgres and one Redis.

Replicas are placed on random nodes and edit (online or offline), disconnect, reconnect to other
nodes, while Redis is killed, restarted or flushed in between. However that goes, once Redis is
back and every replica is connected, all replicas, what every node serves a newcomer, and the
document Postgres holds end identical, with every edit anyone made.

One cluster serves every example (starting three nodes per example would cost more than the
examples); each example has a document of its own, and ends with Redis running.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pycrdt
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crdt.updates import decode_state_vector
from tests.support.cluster import Cluster, running_cluster, stored_doc
from tests.support.redis_server import (  # noqa: F401 - fixtures
    RedisServer,
    redis_server_fixture,
    redis_url_fixture,
)
from tests.support.yclient import YClient, doc_json

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.slow]

NODES = 3
REPLICAS = 3
ROOTS = {"map": pycrdt.Map, "text": pycrdt.Text, "array": pycrdt.Array}
WAIT = 20.0  # bounds a failure only: after a Redis restart, nodes reconnect within seconds
_docs = itertools.count()


@pytest.fixture
async def cluster(settings, postgres_url, redis_url) -> AsyncIterator[Cluster]:
    async with running_cluster(settings, postgres_url, redis_url, NODES) as nodes:
        yield nodes


def own_clock(doc: pycrdt.Doc) -> int:
    return decode_state_vector(doc.get_state()).get(doc.client_id, 0)


def covers(doc: pycrdt.Doc, target: dict[int, int]) -> bool:
    sv = decode_state_vector(doc.get_state())
    return all(sv.get(client, 0) >= clock for client, clock in target.items())


class Replica:
    """A pycrdt replica that keeps its document across connections, to any node."""

    def __init__(self, index: int, doc: str) -> None:
        self.name = f"r{index}"
        self.docname = doc
        self.doc = pycrdt.Doc()
        self.client: YClient | None = None
        self.node: int | None = None
        self.edits = 0
        self.map_keys: set[str] = set()
        self.array_items: list[str] = []
        self.text_marks: list[str] = []

    async def connect(self, cluster: Cluster, node: int) -> None:
        await self.disconnect()
        self.client = await YClient(cluster.ws_url(node, self.docname, "alice"), self.doc).connect()
        self.node = node

    async def disconnect(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client, self.node = None, None

    def edit(self, kind: str) -> None:
        """One edit, made whether connected or not (offline edits sync on reconnect)."""
        self.edits += 1
        mark = f"{self.name}.{self.edits}"
        if kind == "map":
            self.doc.get("map", type=pycrdt.Map)[mark] = self.edits
            self.map_keys.add(mark)
        elif kind == "text":
            text = self.doc.get("text", type=pycrdt.Text)
            text.insert(0 if self.edits % 2 else len(text), f"<{mark}>")
            self.text_marks.append(f"<{mark}>")
        else:
            self.doc.get("array", type=pycrdt.Array).append(mark)
            self.array_items.append(mark)


replica = st.integers(0, REPLICAS - 1)
node = st.integers(0, NODES - 1)
step = st.one_of(
    st.tuples(st.just("edit"), replica, st.sampled_from(["map", "text", "array"])),
    st.tuples(st.just("edit"), replica, st.sampled_from(["map", "text", "array"])),
    st.tuples(st.just("connect"), replica, node),  # to that node, from wherever it was
    st.tuples(st.just("disconnect"), replica),
    st.tuples(st.just("redis"), st.sampled_from(["kill", "restart", "flushall"])),
)


placement = st.lists(node, min_size=REPLICAS, max_size=REPLICAS)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    start=placement,
    steps=st.lists(step, min_size=4, max_size=24),
    final=placement,
)
# Everyone on a node of their own editing through a kill, a restart and a flush, then moving.
@example(
    start=[0, 1, 2],
    steps=[
        ("edit", 0, "map"),
        ("edit", 1, "text"),
        ("redis", "kill"),
        ("edit", 0, "array"),
        ("edit", 1, "map"),
        ("edit", 2, "text"),
        ("redis", "restart"),
        ("edit", 2, "map"),
        ("redis", "flushall"),
        ("edit", 1, "array"),
        ("connect", 0, 2),
        ("edit", 0, "text"),
    ],
    final=[1, 2, 0],
)
async def test_replicas_and_the_store_converge_whatever_the_placement_and_faults(
    cluster: Cluster,
    redis_server: RedisServer,
    start: list[int],
    steps: list[tuple[Any, ...]],
    final: list[int],
) -> None:
    doc = f"alice/cluster-{next(_docs)}"
    replicas = [Replica(i, doc) for i in range(REPLICAS)]
    try:
        for r, where in zip(replicas, start, strict=True):
            await r.connect(cluster, where)
        for op, *args in steps:
            if op == "edit":
                replicas[args[0]].edit(args[1])
            elif op == "connect":
                await replicas[args[0]].connect(cluster, args[1])
            elif op == "disconnect":
                await replicas[args[0]].disconnect()
            elif args[0] == "kill":
                redis_server.kill()
            elif args[0] == "restart":
                redis_server.restart()
            elif redis_server.running:
                redis_server.flushall()
        if not redis_server.running:
            redis_server.start()
        for r, where in zip(replicas, final, strict=True):
            if r.node != where:
                await r.connect(cluster, where)

        target = {r.doc.client_id: own_clock(r.doc) for r in replicas}
        for r in replicas:
            assert r.client is not None
            await r.client.wait_until(lambda r=r: covers(r.doc, target), WAIT)
        content = doc_json(replicas[0].doc, ROOTS)
        for r in replicas[1:]:
            assert doc_json(r.doc, ROOTS) == content, r.name
        # Every edit anyone made is there, once.
        assert set(content["map"]) == set().union(*(r.map_keys for r in replicas))
        assert sorted(content["array"]) == sorted(i for r in replicas for i in r.array_items)
        for mark in (m for r in replicas for m in r.text_marks):
            assert content["text"].count(mark) == 1, mark
        # What each node serves a newcomer (once it has caught up) and what Postgres holds.
        for index in range(NODES):
            async with YClient(cluster.ws_url(index, doc, "alice")) as fresh:
                await fresh.wait_until(lambda f=fresh: covers(f.doc, target), WAIT)
                assert doc_json(fresh.doc, ROOTS) == content, f"node {index}"
        assert doc_json(await stored_doc(cluster.database_url, doc), ROOTS) == content
    finally:
        for r in replicas:
            await r.disconnect()
        if not redis_server.running:
            redis_server.start()
