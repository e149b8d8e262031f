"""Presence over real sockets: nothing a stock client cannot parse is relayed, and one
document's presence stays bounded, on ``/v1/docs`` and ``/v1/sync`` (issue 8).

The stock client is ``tests/interop/yws_client.mjs`` (an unmodified y-websocket provider in Node;
``npm ci --prefix tests/interop`` first). Before this was fixed, one ``NaN`` in a state made every
stock client's ``applyAwarenessUpdate`` throw, which kills a Node process and, in a browser, loses
the rest of the message: the presence of everyone in a newcomer's greeting.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest

from crdt.awareness import AwarenessEntry, encode_awareness_update
from crdt.protocol import AwarenessMessage, SyncMessage, SyncStep, encode_awareness, encode_sync
from storage import DocKey
from syncd.room import Room
from tests.support.hpclient import HpClient, HpDoc
from tests.support.nodeclient import NODE_WAIT_MS, NodeProcess, require_node
from tests.support.servers import RunningDaemon, start_daemon
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio

WAIT = 10.0

# States Python's json reads and JavaScript's JSON.parse does not (or reads as Infinity), and
# ones syncd refuses for their shape; each closes its sender with 4400.
POISON = {
    "NaN": '{"user":"evil","x":NaN}',
    "Infinity": '{"x":Infinity}',
    "-Infinity": '{"x":-Infinity}',
    "1e999": '{"x":1e999}',
    "-1e400": '{"x":-1e400}',
    "10**400": '{"x":1' + "0" * 400 + "}",
    "deep": '{"a":' * 5000 + "1" + "}" * 5000,
    "array": '[{"user":"no principal to stamp"}]',
}

# Valid, and tricky for a re-serialiser: what JavaScript reads must be what the sender wrote.
TRICKY = {
    "user": "valid",
    "name": "Zoë 🦊 名前",
    "lone": "\ud800",
    "big": 1e308,
    "tiny": 5e-324,
    "int": 2**53 + 1,
    "cursor": {"anchor": {"type": {"client": 1, "clock": 2}, "tname": None, "assoc": -1}},
}


def node_config(daemon: RunningDaemon, doc: str, name: str) -> dict[str, Any]:
    return {
        "url": f"ws://127.0.0.1:{daemon.port}/v1/docs",
        "doc": doc,
        "token": daemon.token(doc.split("/", 1)[0]),
        "name": name,
        "timeoutMs": NODE_WAIT_MS,
    }


@contextlib.asynccontextmanager
async def stock_client(node: str, daemon: RunningDaemon, doc: str, name: str):
    client, ready = await NodeProcess.spawn(
        node, "yws_client.mjs", node_config(daemon, doc, name), name
    )
    try:
        yield client, ready["clientID"]
    finally:
        await client.close()


def awareness_frame(*entries: AwarenessEntry) -> bytes:
    return encode_awareness(encode_awareness_update(list(entries)))


def room_of(daemon: RunningDaemon, doc: str) -> Room:
    room = daemon.daemon.rooms.get_loaded(DocKey("default", doc))
    assert room is not None
    return room


@pytest.mark.node
async def test_unparseable_presence_never_reaches_a_stock_client(daemon):
    node = require_node(("yjs", "y-websocket", "ws"))
    doc = "alice/presence"
    url = daemon.ws_url(doc, daemon.token("alice"))
    async with stock_client(node, daemon, doc, "node-a") as (a, a_id), YClient(url) as valid:
        await a.send("awareness", {"user": "a"})
        valid.set_awareness(TRICKY)
        # The stock client reads the relayed state to what it would have read from the sender.
        await a.send("wait-awareness", {"present": {str(valid.doc.client_id): TRICKY}})

        crafted_ids = []
        for i, text in enumerate([*POISON.values(), json.dumps({"pad": "x" * 70_000})]):
            async with YClient(url, client_id=900_000 + i) as crafted:
                crafted_ids.append(crafted.doc.client_id)
                await crafted.send_raw(awareness_frame(AwarenessEntry(900_000 + i, 1, text)))
                await crafted.wait(crafted.closed, WAIT)
                assert crafted.close_code == (4413 if "pad" in text else 4400), text[:30]

        # Relayed in order: once the stock client sees this, it has read everything before it.
        valid.set_awareness({**TRICKY, "step": 2})
        await a.send("wait-awareness", {
            "present": {str(valid.doc.client_id): {"step": 2}, str(a_id): {"user": "a"}},
            "absent": crafted_ids,
        })
        # A newcomer's greeting holds everyone present, and nothing it cannot parse.
        async with stock_client(node, daemon, doc, "node-b") as (b, b_id):
            reply = await b.send("wait-awareness", {
                "present": {str(valid.doc.client_id): {**TRICKY, "step": 2},
                            str(a_id): {"user": "a"}, str(b_id): None},
                "absent": crafted_ids,
            })
            assert len(reply["awareness"]) == 3
        seen = (await a.send("dump"))["awareness"]
        assert set(seen) == {str(a_id), str(valid.doc.client_id)}
        assert a.proc.returncode is None and "Error" not in a.stderr
    assert not set(crafted_ids) & {e.client_id for e in room_of(daemon, doc).awareness.live()}


# -- one presence client on either endpoint -------------------------------------------------


class Presence:
    """A connection to one document on ``/v1/docs`` or ``/v1/sync`` that sends raw awareness."""

    def __init__(self, endpoint: str, conn: YClient | HpClient, hp: HpDoc | None) -> None:
        self.endpoint = endpoint
        self.conn = conn
        self.hp = hp

    @property
    def awareness(self) -> dict[int, Any]:
        return self.hp.awareness if self.hp is not None else self.conn.awareness  # type: ignore[union-attr]

    @property
    def close_code(self) -> int | None:
        return self.conn.close_code

    async def send(self, *entries: AwarenessEntry) -> None:
        update = encode_awareness_update(list(entries))
        if self.hp is not None:
            assert isinstance(self.conn, HpClient)
            self.conn.send_frame(self.hp.address, AwarenessMessage(update))
        else:
            assert isinstance(self.conn, YClient)
            await self.conn.send_raw(encode_awareness(update))

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        await self.conn.wait_until(predicate, WAIT)

    async def barrier(self) -> None:
        """Return once the server has handled everything this connection sent before: a sync
        step 1 is answered (with a step 2) in order with the rest."""
        if self.hp is not None:
            hp = self.hp
            hp.synced = False
            hp.send(SyncMessage(SyncStep.STEP1, hp.doc.get_state()))
            await self.conn.wait_until(lambda: hp.synced, WAIT)
        else:
            assert isinstance(self.conn, YClient)
            self.conn.synced.clear()
            await self.conn.send_raw(encode_sync(SyncStep.STEP1, self.conn.doc.get_state()))
            await self.conn.wait(self.conn.synced, WAIT)

    async def wait_closed(self) -> int | None:
        await self.conn.wait_until(self.conn.closed.is_set, WAIT)
        return self.close_code


@contextlib.asynccontextmanager
async def presence(daemon: RunningDaemon, endpoint: str, doc: str) -> AsyncIterator[Presence]:
    token = daemon.token(doc.split("/", 1)[0])
    if endpoint == "docs":
        async with YClient(daemon.ws_url(doc, token)) as y:
            yield Presence(endpoint, y, None)
        return
    async with HpClient(f"ws://127.0.0.1:{daemon.port}/v1/sync") as client:
        hp = client.open(doc, token)
        await client.wait_until(lambda: hp.scope is not None and hp.synced, WAIT)
        yield Presence(endpoint, client, hp)


def state(n: int, **fields: Any) -> str:
    return json.dumps({"n": n, **fields})


@pytest.mark.parametrize("endpoint", ["docs", "sync"])
async def test_ten_thousand_ids_from_one_connection_are_refused(daemon, endpoint):
    doc = f"alice/crowd-{endpoint}"
    bound = daemon.settings.max_awareness_ids_per_connection
    async with presence(daemon, "docs", doc) as observer:
        # All at once: the message is refused whole, nothing of it is kept or relayed.
        async with presence(daemon, endpoint, doc) as crafted:
            await crafted.send(*(AwarenessEntry(i, 1, state(i)) for i in range(1, 10_001)))
            assert await crafted.wait_closed() == 4400
        # One by one: the first `bound` are presence as usual, the next closes the connection.
        async with presence(daemon, endpoint, doc) as crafted:
            for i in range(1, bound + 1):
                await crafted.send(AwarenessEntry(20_000 + i, 1, state(i)))
            await observer.wait_until(lambda: len(observer.awareness) == bound)
            await crafted.send(AwarenessEntry(20_000 + bound + 1, 1, state(bound + 1)))
            assert await crafted.wait_closed() == 4400
        await observer.wait_until(lambda: not observer.awareness)  # its ids left with it
        room = room_of(daemon, doc)
        assert len(room.awareness) == 0
        async with presence(daemon, endpoint, doc) as newcomer:
            await newcomer.send(AwarenessEntry(7, 1, state(7)))
            await observer.wait_until(lambda: 7 in observer.awareness)
            assert len(room.awareness) == 1
            assert len(room.awareness_message() or b"") < 100  # the greeting stays small


async def test_one_id_repeated_ten_thousand_times_is_one_state(daemon):
    doc = "alice/repeat"
    async with presence(daemon, "docs", doc) as observer, presence(daemon, "docs", doc) as tab:
        await tab.send(*(AwarenessEntry(5, c, state(c)) for c in range(1, 10_001)))
        await observer.wait_until(lambda: 5 in observer.awareness)
        assert observer.awareness[5] == {"n": 10_000, "principal": "alice"}
        assert room_of(daemon, doc).awareness.get(5).clock == 10_000
        await tab.barrier()
        assert tab.close_code is None


@pytest.fixture
async def small_daemon(settings) -> AsyncIterator[RunningDaemon]:
    running = await start_daemon(
        replace(settings, max_awareness_clients=20, max_awareness_document_bytes=4096)
    )
    try:
        yield running
    finally:
        await running.stop()


@pytest.mark.parametrize("endpoint", ["docs", "sync"])
async def test_a_full_document_drops_new_presence_and_keeps_updating_the_present(
    small_daemon, endpoint
):
    daemon, doc = small_daemon, f"alice/full-{endpoint}"
    refused = daemon.daemon.metrics.awareness_refused
    async with contextlib.AsyncExitStack() as stack:
        observer = await stack.enter_async_context(presence(daemon, "docs", doc))
        tabs = [await stack.enter_async_context(presence(daemon, endpoint, doc)) for _ in "abc"]
        for t, tab in enumerate(tabs):  # 3 x 10 ids for a bound of 20
            await tab.send(*(AwarenessEntry(100 * t + i, 1, state(i)) for i in range(10)))
            await tab.barrier()
        expected = {i for i in range(10)} | {100 + i for i in range(10)}
        await observer.wait_until(lambda: set(observer.awareness) == expected)
        room = room_of(daemon, doc)
        assert len(room.awareness) == 20 and refused.labels("clients")._value.get() == 10
        assert all(tab.close_code is None for tab in tabs)  # dropped, not closed

        # Present clients still update, within the document's bytes...
        await tabs[0].send(AwarenessEntry(3, 2, state(3, moved=True)))
        await observer.wait_until(lambda: observer.awareness[3].get("moved") is True)
        # ...but not past them: this update is dropped, the old state stays.
        await tabs[1].send(AwarenessEntry(105, 2, state(5, pad="x" * 4000)))
        await tabs[1].barrier()
        assert "pad" not in observer.awareness[105] and "pad" not in room.awareness.get(105).state
        assert refused.labels("bytes")._value.get() == 1
        assert room.awareness.live_bytes <= 4096

        # A departure makes room for the ones that were dropped.
        await tabs[0].conn.close()
        await observer.wait_until(lambda: all(i not in observer.awareness for i in range(10)))
        await tabs[2].send(*(AwarenessEntry(200 + i, 2, state(i)) for i in range(10)))
        await observer.wait_until(lambda: all(200 + i in observer.awareness for i in range(10)))
        assert len(room.awareness) == 20


async def test_sync_echo_carries_only_what_the_room_validated(daemon):
    doc = "alice/echo"
    async with presence(daemon, "sync", doc) as tab, presence(daemon, "docs", doc) as observer:
        assert tab.hp is not None
        # A forged principal comes back stamped, as the others see it.
        await tab.send(AwarenessEntry(41, 1, state(1, principal="admin")))
        await tab.wait_until(lambda: 41 in tab.awareness)
        assert tab.awareness[41] == observer.awareness[41] == {"n": 1, "principal": "alice"}
        # A stale state that meets the server's removal is answered with that removal.
        await tab.send(AwarenessEntry(41, 2, "null"))
        await observer.wait_until(lambda: 41 not in observer.awareness)
        tab.awareness[41] = "stale"
        await tab.send(AwarenessEntry(41, 1, state(1)))
        await tab.wait_until(lambda: 41 not in tab.awareness)
        # A state JavaScript cannot parse is not echoed: the socket closes with 4400.
        await tab.send(AwarenessEntry(42, 1, '{"x":NaN}'))
        assert await tab.wait_closed() == 4400
        echoed = [m.update for m in tab.hp.received if isinstance(m, AwarenessMessage)]
        assert not any(b"NaN" in u for u in echoed)
        assert 42 not in observer.awareness


async def test_sync_state_over_the_bound_closes_that_document_with_its_reason(daemon):
    limit = daemon.settings.max_awareness_state_bytes
    token = daemon.token("alice")
    async with HpClient(f"ws://127.0.0.1:{daemon.port}/v1/sync") as client:
        big, other = client.open("alice/big", token), client.open("alice/other", token)
        await client.wait_until(lambda: big.synced and other.synced, WAIT)
        padded = json.dumps({"pad": "x" * limit})
        client.send_frame(big.address, AwarenessMessage(
            encode_awareness_update([AwarenessEntry(5, 1, padded)])
        ))
        await client.wait_until(lambda: big.closed is not None, WAIT)
        assert big.denied == big.closed and f"over {limit} bytes" in big.closed
        assert daemon.daemon.metrics.closes.labels("4413")._value.get() == 1
        # The socket and its other documents go on.
        other.set_awareness({"still": "here"})
        await client.wait_until(lambda: 5 not in other.awareness and other.doc.client_id
                                in other.awareness, WAIT)
        assert not client.closed.is_set()
