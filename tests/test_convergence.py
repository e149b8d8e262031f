"""Convergence through the daemon (hypothesis): random edits to journal/canvas documents by
several replicas that go offline and come back in random order all end identical, and equal to
what the server stored."""

from __future__ import annotations

import asyncio
import itertools
import random

import pycrdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crdt.schemas import Canvas, Journal
from crdt.updates import decode_state_vector
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio

_docs = itertools.count()


class Replica:
    """A document kept across connections: offline it edits locally, online it syncs."""

    def __init__(self, url: str, client_id: int, schema: str) -> None:
        self.url = url
        self.doc = pycrdt.Doc(client_id=client_id)
        self.view = Journal(self.doc) if schema == "journal" else Canvas(self.doc, author="r")
        self.client: YClient | None = None

    async def online(self) -> None:
        if self.client is None:
            self.client = await YClient(self.url, self.doc).connect()

    async def offline(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    def edit(self, rnd: random.Random) -> None:
        if isinstance(self.view, Journal):
            _edit_journal(self.view, rnd)
        else:
            _edit_canvas(self.view, rnd)

    def json(self) -> dict:
        return self.view.to_json()


def _edit_journal(j: Journal, rnd: random.Random) -> None:
    ids = [e["id"] for e in j.entries()]
    op = rnd.choice(["create", "type", "tag", "title", "delete"] if ids else ["create"])
    if op == "create":
        j.create_entry(f"t{rnd.randrange(100)}", "body", tags=["a"] if rnd.random() < 0.5 else [])
        return
    entry = rnd.choice(ids)
    if op == "type":
        body_len = len(j.entry(entry)["body"])
        j.edit_body(entry, rnd.randint(0, body_len), insert=rnd.choice(["x", "yz", " ", "é"]))
    elif op == "tag":
        j.add_tag(entry, rnd.choice(["a", "b", "c"]))
    elif op == "title":
        j.set_title(entry, f"title {rnd.randrange(1000)}")
    else:
        j.delete_entry(entry)


def _edit_canvas(c: Canvas, rnd: random.Random) -> None:
    els = c.elements()
    ids = [e["id"] for e in els]
    op = rnd.choice(["card", "stroke", "move", "extend", "color", "delete"] if ids else ["card"])
    if op == "card":
        c.add_card("values", f"c{rnd.randrange(50)}", rnd.uniform(0, 500), rnd.uniform(0, 500))
    elif op == "stroke":
        c.add_stroke(rnd.uniform(0, 500), rnd.uniform(0, 500), [0, 0, 0.5, 3, 4, 0.6])
    elif op == "move":
        c.move(rnd.choice(ids), rnd.uniform(0, 500), rnd.uniform(0, 500))
    elif op == "extend":
        strokes = [e["id"] for e in els if e["kind"] == "stroke"]
        if strokes:
            c.extend_stroke(rnd.choice(strokes), [rnd.uniform(0, 9), rnd.uniform(0, 9), 0.5])
    elif op == "color":
        c.set_color(rnd.choice(ids), rnd.choice(["#f00", "#0f0", "#00f"]))
    else:
        c.delete(rnd.choice(ids))


async def _until_all_equal(replicas: list[Replica], timeout: float = 20) -> None:
    clients = [r.client for r in replicas if r.client is not None]

    def equal() -> bool:
        states = {repr(sorted(decode_state_vector(r.doc.get_state()).items())) for r in replicas}
        return len(states) == 1 and len({repr(r.json()) for r in replicas}) == 1

    async with asyncio.timeout(timeout):
        while not equal():
            for c in clients:
                c.changed.clear()
            if equal():
                break
            waits = [asyncio.ensure_future(c.changed.wait()) for c in clients]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()


actions = st.lists(
    st.tuples(
        st.sampled_from(["edit", "edit", "edit", "offline", "online"]),
        st.integers(min_value=0, max_value=3),
    ),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    schema=st.sampled_from(["journal", "canvas"]),
    n=st.integers(min_value=2, max_value=4),
    steps=actions,
    seed=st.integers(0, 2**32 - 1),
)
async def test_replicas_converge_through_the_daemon(daemon, schema, n, steps, seed):
    rnd = random.Random(seed)
    doc_name = f"alice/prop-{next(_docs)}"
    url = daemon.ws_url(doc_name, daemon.token("alice"))
    replicas = [Replica(url, 1000 + i, schema) for i in range(n)]
    try:
        for r in replicas:
            await r.online()
        if isinstance(replicas[0].view, Journal):
            replicas[0].view.init("shared")
        for action, who in steps:
            r = replicas[who % n]
            if action == "edit":
                r.edit(rnd)
            elif action == "offline":
                await r.offline()
            else:
                await r.online()
            if rnd.random() < 0.3:
                await asyncio.sleep(0)  # let some messages cross, others stay in flight
        # Everyone comes back, in random order.
        for r in rnd.sample(replicas, len(replicas)):
            await r.online()
        await _until_all_equal(replicas)
        async with YClient(url) as fresh:
            stored = Journal(fresh.doc) if schema == "journal" else Canvas(fresh.doc)
            assert stored.to_json() == replicas[0].json()
            assert decode_state_vector(fresh.doc.get_state()) == decode_state_vector(
                replicas[0].doc.get_state()
            )
    finally:
        for r in replicas:
            await r.offline()
