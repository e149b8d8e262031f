"""Many nodes (issue 9, acceptance 1, 2, 3 and 5; DESIGN.md §1.9).

Every test runs nodes on one fresh Postgres schema with a ``redis-server`` of its own between
them (``tests/support/redis_server.py``; never the machine's shared Redis). The stock clients
are unmodified y-websocket providers in Node (``tests/interop/yws_client.mjs``); the Python ones
are pycrdt replicas (``YClient``), whose arrivals can be checked one by one.

Causal order is checked, not assumed: every update an observer received is replayed, in arrival
order, into a fresh replica, and each must continue what that replica already holds (no clock
gap for any client). An update that did not would sit pending in yrs, and pycrdt can lose map
entries when updates arrive out of causal order (docs/architecture.md, "Causal order").

Two tests guard races found while writing these: presence announced before a node loaded the
document reaches that node's newcomers, and a revoke committed while a node loads the document
for a connecting client still takes effect there (the node re-reads seq and access once its
subscription is active).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgpack
import pycrdt
import pytest
import websockets

from crdt.update_format import decode_update
from crdt.updates import decode_state_vector
from tests.support.cluster import (
    Cluster,
    docs_url,
    mint,
    running_cluster,
    start_process_node,
    stored_doc,
    sync_url,
)
from tests.support.hpclient import HpClient
from tests.support.nodeclient import NODE_WAIT_MS, NodeProcess, require_node
from tests.support.redis_server import (  # noqa: F401 - fixtures
    RedisServer,
    redis_server_fixture,
    redis_url_fixture,
)
from tests.support.yclient import YClient, doc_json

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.slow]

ROOTS = {"map": pycrdt.Map, "text": pycrdt.Text, "array": pycrdt.Array}
STREAM_UPDATES = 1000
STREAM_RATE = 200.0  # updates per second
WAIT = 10.0  # every wait on a client; generous, it only bounds a failure

StateVector = dict[str, int]


@pytest.fixture
async def cluster(settings, postgres_url, redis_url) -> AsyncIterator[Cluster]:
    """Two in-process nodes on one Postgres schema and this test's Redis."""
    async with running_cluster(settings, postgres_url, redis_url, 2) as nodes:
        yield nodes


@pytest.fixture(scope="module")
def node() -> str:
    """The ``node`` executable; fails (never skips) when it or the npm packages are missing."""
    return require_node(("yjs", "y-websocket", "ws"))


class StockClient(NodeProcess):
    """One ``yws_client.mjs`` process: a stock ``WebsocketProvider`` connected to one node."""

    client_id = 0

    @classmethod
    async def start(cls, node: str, port: int, doc: str, principal: str, name: str) -> StockClient:
        config = {
            "url": docs_url(port),
            "doc": doc,
            "token": mint(principal),
            "name": name,
            "timeoutMs": NODE_WAIT_MS,
        }
        client, ready = await cls.spawn(node, "yws_client.mjs", config, name)
        client.client_id = ready["clientID"]
        return client

    async def content(self) -> dict[str, Any]:
        reply = await self.send("dump")
        return {root: reply[root] for root in ROOTS}

    async def refused(self) -> str:
        """Wait until the server closes this provider for good (a 44xx close makes the script
        report ``server closed the connection: CODE REASON`` and exit); return that report."""
        try:
            message = await self._read()
        except AssertionError as exc:
            return str(exc)
        raise AssertionError(f"{self.name} is still connected; it said {message}")


@contextlib.asynccontextmanager
async def stock_clients(node: str, *specs: tuple[int, str, str, str]) -> AsyncIterator[list]:
    """Stock clients ``(port, doc, principal, name)``, started together, always reaped."""
    started = await asyncio.gather(
        *(StockClient.start(node, *spec) for spec in specs), return_exceptions=True
    )
    clients = [c for c in started if isinstance(c, StockClient)]
    try:
        for c in started:
            if isinstance(c, BaseException):
                raise c
        yield clients
    finally:
        for c in clients:
            await c.close()


def auth(sub: str, **claims: Any) -> dict[str, str]:
    return {"authorization": f"Bearer {mint(sub, **claims)}"}


async def share(http: httpx.AsyncClient, base: str, doc: str, grants: dict[str, str]) -> None:
    """Alice sets her document's grants through the node at ``base``."""
    r = await http.put(
        f"{base}/v1/docs/{doc}/access",
        json={"mode": "shared", "grants": grants},
        headers=auth("alice"),
    )
    assert r.status_code == 200, r.text


def state_vector(doc: pycrdt.Doc) -> StateVector:
    """``doc``'s state vector as ``{str(clientID): clock}``, the shape the stock clients use."""
    return {str(c): clock for c, clock in decode_state_vector(doc.get_state()).items()}


def union(*svs: StateVector) -> StateVector:
    out: StateVector = {}
    for sv in svs:
        for client, clock in sv.items():
            out[client] = max(out.get(client, 0), clock)
    return out


def numbers(doc: pycrdt.Doc) -> list[int]:
    return [int(x) for x in doc.get("n", type=pycrdt.Array).to_py()]


def replay_checking_causal_order(updates: list[bytes]) -> pycrdt.Doc:
    """Apply ``updates`` in arrival order to a fresh replica, asserting that each continues what
    the replica holds: per client, its structs start at or below the replica's clock."""
    replica = pycrdt.Doc()
    for i, update in enumerate(updates):
        known = decode_state_vector(replica.get_state())
        for client, (first, _end) in decode_update(update).clients.items():
            have = known.get(client, 0)
            assert first <= have, f"arrival {i}: client {client} from clock {first}, had {have}"
        replica.apply_update(update)
    return replica


class Stream:
    """A writer appending 0, 1, 2, … to the array ``n`` of ``doc``, one update per number, at
    about ``rate`` per second, until ``total`` or until ``stop()`` says so."""

    def __init__(self, doc: pycrdt.Doc) -> None:
        self.array = doc.get("n", type=pycrdt.Array)
        self.sent = 0
        self._progress = asyncio.Event()

    async def run(self, total: int, rate: float, stop: Callable[[], bool] = lambda: False) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        while self.sent < total and not stop():
            self.array.append(self.sent)
            self.sent += 1
            self._progress.set()
            # Pacing, not synchronisation: the next number is due at started + sent / rate.
            await asyncio.sleep(max(0.0, started + self.sent / rate - loop.time()))

    async def reached(self, count: int) -> None:
        while self.sent < count:
            self._progress.clear()
            await self._progress.wait()


def edits_for(name: str) -> list[list[Any]]:
    return [
        ["map.set", name, {"n": 7, "list": [1, "two"]}],
        ["map.set", "winner", name],
        ["text.insert", 0, f"[{name}]"],
        ["array.push", [name]],
    ]


# -- Acceptance 1: stock clients on two nodes --------------------------------------------------


@pytest.mark.node
async def test_stock_providers_on_two_nodes_converge_and_see_each_others_presence(cluster, node):
    doc = "alice/two-nodes"
    a, b = cluster
    specs = [(a.port, doc, "alice", "on-a"), (b.port, doc, "alice", "on-b")]
    specs.append((a.port, doc, "alice", "crashes-on-a"))
    async with stock_clients(node, *specs) as (on_a, on_b, crashing):
        # Truly concurrent: neither reads its socket while both edit.
        for c in (on_a, on_b):
            await c.send("pause")
        sv_a = (await on_a.send("edit", edits_for(on_a.name)))["stateVector"]
        sv_b = (await on_b.send("edit", edits_for(on_b.name)))["stateVector"]
        assert str(on_b.client_id) not in sv_a and str(on_a.client_id) not in sv_b
        for c in (on_a, on_b):
            await c.send("resume")
        target = union(sv_a, sv_b)
        await asyncio.gather(*(c.send("wait-sv", target) for c in (on_a, on_b, crashing)))
        content = await on_a.content()
        assert await on_b.content() == content == await crashing.content()
        assert content["map"]["on-a"] == content["map"]["on-b"] == {"n": 7, "list": [1, "two"]}
        assert sorted(content["array"]) == ["on-a", "on-b"]
        # What each node serves a newcomer, and what Postgres holds, is that same document.
        for n in cluster:
            async with YClient(n.ws_url(doc, mint("alice"))) as fresh:
                assert doc_json(fresh.doc, ROOTS) == content
        assert doc_json(await stored_doc(cluster.database_url, doc), ROOTS) == content

        # Presence crosses both ways.
        states = {c.client_id: {"user": c.name} for c in (on_a, on_b, crashing)}
        for c in (on_a, on_b, crashing):
            await c.send("awareness", states[c.client_id])
        await asyncio.gather(
            *(c.send("wait-awareness", {"present": states}) for c in (on_a, on_b, crashing))
        )
        # Departures cross too: a goodbye the client sends, and one node A says for a client
        # that vanished (SIGKILL: no goodbye, only the server knows).
        await on_a.send("destroy")
        await crashing.kill()
        gone = [on_a.client_id, crashing.client_id]
        spec = {"present": {on_b.client_id: states[on_b.client_id]}, "absent": gone}
        await on_b.send("wait-awareness", spec)


@pytest.mark.node
async def test_a_revoke_through_node_a_closes_the_client_on_node_b_within_a_second(cluster, node):
    doc = "alice/revoke"
    a, b = cluster
    async with httpx.AsyncClient(timeout=WAIT) as http, contextlib.AsyncExitStack() as stack:
        await share(http, a.http, doc, {"bob": "editor"})
        alice = await stack.enter_async_context(YClient(a.ws_url(doc, mint("alice"))))
        bob = await stack.enter_async_context(YClient(b.ws_url(doc, mint("bob"))))
        stock = await stack.enter_async_context(stock_clients(node, (b.port, doc, "bob", "bob")))
        # Bob writes through node B and alice sees it on node A: a live editor on B.
        await stock[0].send("edit", [["map.set", "from_bob", "stored"]])
        seen = alice.doc.get("map", type=pycrdt.Map)
        await alice.wait_until(lambda: seen.get("from_bob") == "stored", WAIT)

        async with asyncio.timeout(1.0):  # issue 9, acceptance 1: within 1 s of the revoke
            await share(http, a.http, doc, {})
            await bob.closed.wait()
        assert bob.close_code == 4401, (bob.close_code, bob.close_reason)
        assert "server closed the connection: 4401" in await stock[0].refused()
        # And bob does not get back in through either node.
        for n in cluster:
            again = YClient(n.ws_url(doc, mint("bob")))
            await again.connect(wait_synced=False)
            await again.wait(again.closed, WAIT)
            assert again.close_code == 4403, n.port
        assert "from_bob" in seen and alice.close_code is None


@pytest.mark.node
async def test_a_delete_through_node_b_closes_clients_on_node_a_with_4404(cluster, node):
    doc = "alice/deleted"
    a, b = cluster
    async with (
        httpx.AsyncClient(timeout=WAIT) as http,
        YClient(a.ws_url(doc, mint("alice"))) as py,
        stock_clients(node, (a.port, doc, "alice", "stock-on-a")) as (stock,),
    ):
        py.doc.get("map", type=pycrdt.Map)["doomed"] = True
        await stock.send("wait-sv", state_vector(py.doc))
        r = await http.delete(f"{b.http}/v1/docs/{doc}", headers=auth("alice"))
        assert r.status_code == 204, r.text
        await py.wait(py.closed, WAIT)
        assert py.close_code == 4404, (py.close_code, py.close_reason)
        assert "server closed the connection: 4404" in await stock.refused()
        for n in cluster:
            again = YClient(n.ws_url(doc, mint("alice")))
            await again.connect(wait_synced=False)
            await again.wait(again.closed, WAIT)
            assert again.close_code == 4404, n.port
            meta = await http.get(f"{n.http}/v1/docs/{doc}", headers=auth("alice"))
            assert meta.status_code == 404, n.port


@pytest.mark.node
async def test_a_downgrade_and_upgrade_through_node_a_take_effect_on_node_b(cluster, node):
    doc = "alice/downgrade"
    a, b = cluster
    async with httpx.AsyncClient(timeout=WAIT) as http, contextlib.AsyncExitStack() as stack:
        await share(http, a.http, doc, {"carol": "editor"})
        alice = await stack.enter_async_context(YClient(a.ws_url(doc, mint("alice"))))
        mine = alice.doc.get("map", type=pycrdt.Map)
        (stock,) = await stack.enter_async_context(
            stock_clients(node, (b.port, doc, "carol", "carol"))
        )
        # Carol is on node B twice: the stock provider, and a /v1/sync socket whose scope
        # announcements say when node B has taken the change in.
        hp_client = await stack.enter_async_context(HpClient(sync_url(b.port)))
        hp = hp_client.open(doc, mint("carol"))
        await hp_client.wait_until(lambda: hp.synced and hp.scope == "read-write", WAIT)
        await stock.send("edit", [["map.set", "before", "carol"]])
        await alice.wait_until(lambda: mine.get("before") == "carol", WAIT)

        await share(http, a.http, doc, {"carol": "viewer"})
        # Alice goes on editing through node A; node B announces carol's new scope before the
        # first of those edits it forwards after taking the downgrade in.
        seen = hp.doc.get("map", type=pycrdt.Map)
        async with asyncio.timeout(WAIT):
            probe = 0
            while hp.scope != "readonly":
                probe += 1
                mine[f"probe-{probe}"] = probe
                await hp_client.wait_until(lambda p=probe: seen.get(f"probe-{p}") == p, WAIT)

        # Node B drops carol's edits now: /v1/sync says so ...
        statuses = len(hp.statuses)
        seen["from_carol_sync"] = "dropped"
        await hp_client.wait_until(lambda: len(hp.statuses) > statuses, WAIT)
        assert hp.statuses[statuses] is False
        # ... and the stock provider's edit goes nowhere; its presence, sent after it on the
        # same socket, still reaches alice on node A, and so do alice's later edits to carol.
        await stock.send("edit", [["map.set", "from_carol", "dropped"]])
        await stock.send("awareness", {"name": "carol"})
        await alice.wait_until(
            lambda: alice.awareness.get(stock.client_id, {}).get("name") == "carol", WAIT
        )
        mine["after"] = "downgrade"
        await stock.send("wait-sv", state_vector(alice.doc))
        assert (await stock.content())["map"]["after"] == "downgrade"
        assert "from_carol" not in mine and "from_carol_sync" not in mine
        stored = await stored_doc(cluster.database_url, doc)
        kept = stored.get("map", type=pycrdt.Map).to_py()
        assert kept["before"] == "carol" and kept["after"] == "downgrade"
        assert "from_carol" not in kept and "from_carol_sync" not in kept

        # Upgraded again through node A: node B asks both of carol's clients for what it
        # lacks (DESIGN.md §1.4), so the edits it dropped come in now, written as an editor.
        await share(http, a.http, doc, {"carol": "editor"})
        await alice.wait_until(
            lambda: mine.get("from_carol") == mine.get("from_carol_sync") == "dropped", WAIT
        )


async def test_a_newcomer_on_node_b_sees_presence_announced_earlier_on_node_a(cluster):
    a, b = cluster
    doc = "alice/presence-before"
    async with (
        YClient(a.ws_url(doc, mint("alice"))) as present,
        YClient(a.ws_url(doc, mint("alice"))) as witness,
    ):
        present.set_awareness({"user": "here first"})
        await witness.wait_until(lambda: present.doc.client_id in witness.awareness, WAIT)
        # Node B loads the document only now. Less than the 15 s in which stock clients
        # renew their state: a newcomer must not wait for that.
        async with YClient(b.ws_url(doc, mint("alice"))) as newcomer:
            await newcomer.wait_until(lambda: present.doc.client_id in newcomer.awareness, 5)


async def test_a_revoke_racing_a_first_connection_on_node_b_still_takes_effect(cluster):
    a, b = cluster
    async with httpx.AsyncClient(timeout=WAIT) as http:
        # The race is lost about half the time; twenty tries make a miss vanishingly rare.
        for attempt in range(20):
            doc = f"alice/revoke-race-{attempt}"
            await share(http, a.http, doc, {"bob": "editor"})
            bob = YClient(b.ws_url(doc, mint("bob")))
            await asyncio.gather(bob.connect(wait_synced=False), share(http, a.http, doc, {}))
            try:
                # Refused (4403: the revoke came first) or closed (4401), within 1 s.
                await bob.wait(bob.closed, 1.0)
                assert bob.close_code in (4401, 4403), (attempt, bob.close_code)
            finally:
                await bob.close()


# -- Acceptance 2: a stream across Redis faults ------------------------------------------------


@pytest.mark.parametrize("fault", ["kill-and-restart", "flushall"])
async def test_an_observer_on_node_b_gets_every_update_in_order_across_a_redis_fault(
    cluster, redis_server: RedisServer, fault
):
    doc = f"alice/stream-{fault}"
    a, b = cluster
    async with (
        YClient(a.ws_url(doc, mint("alice"))) as writer,
        YClient(b.ws_url(doc, mint("alice"))) as observer,
    ):
        stream = Stream(writer.doc)
        streaming = asyncio.create_task(stream.run(STREAM_UPDATES, STREAM_RATE))
        try:
            await observer.wait_until(lambda: len(numbers(observer.doc)) >= 300, 30)
            if fault == "kill-and-restart":
                redis_server.kill()
                # The writer goes on while Redis is away: node B hears nothing of these.
                await stream.reached(stream.sent + 100)
                redis_server.restart()
            else:
                redis_server.flushall()
            await asyncio.wait_for(asyncio.shield(streaming), 30)
        finally:
            streaming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await streaming
        everything = list(range(STREAM_UPDATES))
        await observer.wait_until(lambda: numbers(observer.doc) == everything, 30)
        assert numbers(writer.doc) == everything
    # Every arrival continued what the observer held: never out of causal order.
    assert numbers(replay_checking_causal_order(observer.received_updates)) == everything
    for n in cluster:
        async with YClient(n.ws_url(doc, mint("alice"))) as fresh:
            assert numbers(fresh.doc) == everything, n.port
    assert numbers(await stored_doc(cluster.database_url, doc)) == everything


# -- Acceptance 3: SIGKILL of a node -----------------------------------------------------------


async def test_sigkill_of_node_a_loses_nothing_anyone_saw(
    settings, tmp_path, postgres_url, redis_url
):
    doc = "alice/node-crash"
    node_a = await start_process_node(tmp_path / "node-a", postgres_url, redis_url)
    try:
        async with running_cluster(settings, postgres_url, redis_url, 1) as rest:
            node_b = rest[0]
            url_a, url_b = node_a.ws_url(doc, mint("alice")), node_b.ws_url(doc, mint("alice"))
            writer = await YClient(url_a).connect()
            on_a = await YClient(url_a).connect()
            on_b = await YClient(url_b).connect()
            seen: set[int] = set()
            # Kept: an observer lives as long as its shared type object. (pycrdt passes a
            # callback as many arguments as it takes: one here, the event.)
            arrays = [o.doc.get("n", type=pycrdt.Array) for o in (on_a, on_b)]
            for array in arrays:
                array.observe(lambda event: seen.update(int(x) for x in event.target.to_py()))
            stream = Stream(writer.doc)
            streaming = asyncio.create_task(
                stream.run(100_000, STREAM_RATE, stop=writer.closed.is_set)
            )
            writer_id = writer.doc.client_id
            try:
                # Node B is subscribed once the stream reaches on_b live; from then on, the
                # writer's presence, announced on node A, is seen on node B.
                await on_b.wait_until(lambda: len(numbers(on_b.doc)) >= 10, 30)
                writer.set_awareness({"user": "writer"})
                await on_b.wait_until(lambda: writer_id in on_b.awareness, WAIT)
                await on_b.wait_until(lambda: len(numbers(on_b.doc)) >= 200, 30)
                node_a.kill()  # SIGKILL mid-stream
                await writer.wait(writer.closed, WAIT)
                await on_a.wait(on_a.closed, WAIT)
                await asyncio.wait_for(asyncio.shield(streaming), WAIT)
            finally:
                streaming.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await streaming
            await writer.close()
            await on_a.close()

            # Everything anyone saw is in Postgres (the writer's edits form one chain, so the
            # stored ones are a prefix of what it wrote).
            stored = numbers(await stored_doc(postgres_url, doc))
            assert stored == list(range(len(stored)))
            assert seen and seen <= set(stored)

            # Node A died without a word: node B drops its clients' presence once A's
            # heartbeats stop (issue 9 §2: "the 30 s awareness timeout at worst").
            await on_b.wait_until(lambda: writer_id not in on_b.awareness, 30)

            # The clients of node A reconnect to node B, which now gets what A never stored.
            written = numbers(writer.doc)
            assert written == list(range(stream.sent))
            async with YClient(url_b, writer.doc) as w, YClient(url_b, on_a.doc) as o:
                for client in (w, o, on_b):
                    await client.wait_until(lambda c=client: numbers(c.doc) == written, WAIT)
            await on_b.close()
            assert numbers(await stored_doc(postgres_url, doc)) == written
    finally:
        node_a.kill()


# -- Acceptance 5: the feed across nodes -------------------------------------------------------


async def test_a_feed_subscriber_on_node_b_gets_updates_committed_on_node_a(cluster):
    a, b = cluster
    doc = "alice/fed"
    service = mint("indexer", role="service")
    headers = {"authorization": f"Bearer {service}", "accept": "application/json"}

    def long_poll(after: str) -> asyncio.Task[httpx.Response]:
        params = {"after": after, "wait": 20}
        return asyncio.create_task(http.get("/v1/feed", params=params, headers=headers))

    async with (
        httpx.AsyncClient(base_url=b.http, timeout=30) as http,
        YClient(a.ws_url(doc, mint("alice"))) as writer,
    ):
        start = (await http.get("/v1/feed", headers=headers)).json()["next"]
        poll = long_poll(start)
        push = await websockets.connect(
            f"ws://127.0.0.1:{b.port}/v1/feed?after={start}&token={service}"
        )
        try:
            writer.doc.get("map", type=pycrdt.Map)["first"] = "from node A"
            # The bounds only catch a wake-up that never comes (the long-poll waits 20 s).
            page = (await asyncio.wait_for(poll, 10)).json()
            pushed = [msgpack.unpackb(await asyncio.wait_for(push.recv(), 10))]

            # The wake-up itself crosses: node B, which commits nothing in this test, has its
            # feed readers woken by node A's commit (not by their 1 s safety poll).
            woken = b.daemon.commits.mark()
            poll = long_poll(page["next"])
            writer.doc.get("map", type=pycrdt.Map)["second"] = "from node A"
            await asyncio.wait_for(woken.wait(), 5)
            second = (await asyncio.wait_for(poll, 10)).json()
            pushed.append(msgpack.unpackb(await asyncio.wait_for(push.recv(), 10)))
        finally:
            await push.close()
    events = page["events"] + second["events"]
    assert [(e["doc"], e["seq"], e["principal"]) for e in events] == [
        (doc, 1, "alice"),
        (doc, 2, "alice"),
    ]
    assert [p["events"][0]["cursor"] for p in pushed] == [e["cursor"] for e in events]
    replica = pycrdt.Doc()
    for p in pushed:
        replica.apply_update(p["events"][0]["update"])
    assert replica.get("map", type=pycrdt.Map).to_py() == {
        "first": "from node A",
        "second": "from node A",
    }
