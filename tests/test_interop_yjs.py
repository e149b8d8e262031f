"""Interop with stock Yjs: y-websocket ``WebsocketProvider`` clients in Node next to a pycrdt one.

Each Node client is ``tests/interop/yws_client.mjs`` (line protocol documented at its top): an
unmodified provider from the pinned npm packages, driven over stdin/stdout. The pinned packages
must be installed first: ``npm ci --prefix tests/interop``.

Concurrency is made certain, not hoped for: the Node clients stop reading their sockets
(``pause``) before anyone edits, so every edit is made without having seen the others' — the
state vectors the clients report at edit time prove it.

Numbers: pycrdt returns every JS number as a float (``7`` comes back as ``7.0``); comparing the
decoded JSON values with ``==`` treats the two alike.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pycrdt
import pytest

from crdt.protocol import Decoder
from tests.support.nodeclient import NODE_WAIT_MS, NodeProcess, require_node
from tests.support.servers import RunningDaemon
from tests.support.yclient import YClient, doc_json

pytestmark = [pytest.mark.anyio, pytest.mark.node]

NODE_PACKAGES = ("yjs", "y-websocket", "ws")
ROOTS = {"map": pycrdt.Map, "text": pycrdt.Text, "array": pycrdt.Array}
WAIT = 8.0

StateVector = dict[str, int]


@pytest.fixture(scope="module")
def node() -> str:
    """The ``node`` executable; fails (never skips) when it or the npm packages are missing."""
    return require_node(NODE_PACKAGES)


class NodeClient(NodeProcess):
    """One ``yws_client.mjs`` process: a stock y-websocket provider answering line commands."""

    client_id = 0

    @classmethod
    async def start(
        cls, node: str, daemon: RunningDaemon, doc: str, name: str, principal: str | None = None
    ) -> NodeClient:
        principal = principal or doc.split("/", 1)[0]
        config = {
            "url": f"ws://127.0.0.1:{daemon.port}/v1/docs",
            "doc": doc,
            "token": daemon.token(principal),
            "name": name,
            "timeoutMs": NODE_WAIT_MS,
        }
        client, ready = await cls.spawn(node, "yws_client.mjs", config, name)
        client.client_id = ready["clientID"]
        return client

    async def dump(self) -> dict[str, Any]:
        reply = await self.send("dump")
        return {name: reply[name] for name in ROOTS}


@contextlib.asynccontextmanager
async def node_clients(
    node: str, daemon: RunningDaemon, doc: str, *names: str
) -> AsyncIterator[list[NodeClient]]:
    """Start one Node client per name (concurrently); always reaped on the way out."""
    started = await asyncio.gather(
        *(NodeClient.start(node, daemon, doc, n) for n in names), return_exceptions=True
    )
    clients = [c for c in started if isinstance(c, NodeClient)]
    try:
        for c in started:
            if isinstance(c, BaseException):
                raise c
        yield clients
    finally:
        for c in clients:
            await c.close()


def state_vector(doc: pycrdt.Doc) -> StateVector:
    """``doc``'s state vector as ``{str(clientID): clock}``, the shape the Node clients report."""
    dec = Decoder(doc.get_state())
    sv: StateVector = {}
    for _ in range(dec.read_var_uint()):
        client = dec.read_var_uint()
        sv[str(client)] = dec.read_var_uint()
    return sv


def covers(sv: StateVector, target: StateVector) -> bool:
    return all(sv.get(client, 0) >= clock for client, clock in target.items())


def union(*svs: StateVector) -> StateVector:
    out: StateVector = {}
    for sv in svs:
        for client, clock in sv.items():
            out[client] = max(out.get(client, 0), clock)
    return out


async def wait_all_have(py: YClient, nodes: list[NodeClient], target: StateVector) -> None:
    """Wait (on events, with timeouts) until every replica has seen ``target``."""
    await asyncio.gather(
        py.wait_until(lambda: covers(state_vector(py.doc), target), WAIT),
        *(n.send("wait-sv", target) for n in nodes),
    )


def edits_for(name: str) -> list[list[Any]]:
    """One client's concurrent edits: its own key, a key everyone sets, text at both ends, array
    items at both ends. JS values of every JSON kind go through ContentAny."""
    return [
        ["map.set", name, {"n": 7, "f": 1.5, "ok": True, "none": None, "list": [1, "two"]}],
        ["map.set", "winner", name],
        ["text.insert", 0, f"[{name}]"],
        ["text.insert", -1, f"<{name}>"],
        ["array.push", [name, 1]],
        ["array.insert", 0, [f"first-{name}"]],
    ]


def apply_py_edits(doc: pycrdt.Doc, name: str) -> None:
    """The same edits as :func:`edits_for`, made with pycrdt."""
    m, t, a = (doc.get(root, type=kind) for root, kind in ROOTS.items())
    with doc.transaction():
        m[name] = {"n": 7, "f": 1.5, "ok": True, "none": None, "list": [1, "two"]}
        m["winner"] = name
        t.insert(0, f"[{name}]")
        t.insert(len(t), f"<{name}>")
        a.extend([name, 1])
        a.insert(0, f"first-{name}")


def presence(seen: dict[Any, Any]) -> dict[int, Any]:
    """Awareness states by integer clientID, without the ``principal`` key the server may stamp
    on relayed states (when there, it must be the token's subject)."""
    out = {}
    for client, state in seen.items():
        if isinstance(state, dict) and "principal" in state:
            assert state["principal"] == "alice", state
            state = {k: v for k, v in state.items() if k != "principal"}
        out[int(client)] = state
    return out


def assert_all_edits_present(content: dict[str, Any], names: list[str], base: str) -> None:
    m, text, array = content["map"], content["text"], content["array"]
    assert m["winner"] in names
    for name in names:
        assert m[name] == {"n": 7, "f": 1.5, "ok": True, "none": None, "list": [1, "two"]}
        assert f"[{name}]" in text and f"<{name}>" in text
        assert array.count(name) == 1 and f"first-{name}" in array
    # Concurrent inserts interleave whole: every head insert before the base, tails after.
    head, _, tail = text.partition(base)
    assert sorted(head.replace("]", "]\n").split()) == sorted(f"[{n}]" for n in names)
    assert sorted(tail.replace(">", ">\n").split()) == sorted(f"<{n}>" for n in names)
    assert len(array) == 3 * len(names) + 1


async def assert_converged(url: str, py: YClient, nodes: list[NodeClient]) -> dict[str, Any]:
    """All replicas hold the same content, and so does a newcomer fed by the server alone."""
    mine = doc_json(py.doc, ROOTS)
    for n in nodes:
        assert await n.dump() == mine, n.name
    async with YClient(url) as fresh:
        assert doc_json(fresh.doc, ROOTS) == mine
    return mine


async def test_concurrent_map_text_array_edits_converge(any_daemon, node):
    doc = "alice/interop"
    url = any_daemon.ws_url(doc, any_daemon.token("alice"))
    async with YClient(url) as py, node_clients(node, any_daemon, doc, "node-a", "node-b") as nodes:
        a, b = nodes
        # A common starting point, seen by all.
        py.doc.get("text", type=pycrdt.Text).insert(0, "|base|")
        py.doc.get("array", type=pycrdt.Array).append("seed")
        await wait_all_have(py, nodes, state_vector(py.doc))

        # Nobody reads its socket while the three edits are made: they are truly concurrent.
        for n in nodes:
            await n.send("pause")
        apply_py_edits(py.doc, "py")
        py_sv = state_vector(py.doc)
        a_sv, b_sv = (
            r["stateVector"]
            for r in await asyncio.gather(
                a.send("edit", edits_for(a.name)), b.send("edit", edits_for(b.name))
            )
        )
        own = {
            "py": {str(py.doc.client_id): py_sv[str(py.doc.client_id)]},
            "a": {str(a.client_id): a_sv[str(a.client_id)]},
            "b": {str(b.client_id): b_sv[str(b.client_id)]},
        }
        assert not covers(py_sv, own["a"]) and not covers(py_sv, own["b"])
        assert not covers(a_sv, own["py"]) and not covers(a_sv, own["b"])
        assert not covers(b_sv, own["py"]) and not covers(b_sv, own["a"])
        for n in nodes:
            await n.send("resume")

        await wait_all_have(py, nodes, union(py_sv, a_sv, b_sv))
        content = await assert_converged(url, py, nodes)
    assert_all_edits_present(content, ["py", "node-a", "node-b"], "|base|")
    # Concurrent head inserts all land before the seed, pushes after it.
    assert content["array"][3] == "seed"


@pytest.mark.parametrize("leaving", ["destroy", "crash"])
async def test_awareness_of_a_departed_client_disappears(any_daemon, node, leaving):
    """``destroy``: the provider says goodbye (a null state) before closing. ``crash``: the
    process is killed, so only the server can tell the others (a null state for the clientIDs
    that connection announced)."""
    doc = "alice/presence"
    url = any_daemon.ws_url(doc, any_daemon.token("alice"))
    async with YClient(url) as py, node_clients(node, any_daemon, doc, "node-a", "node-b") as nodes:
        a, b = nodes
        states = {
            py.doc.client_id: {"user": "py", "cursor": [1, 2]},
            a.client_id: {"user": "node-a", "cursor": None},
            b.client_id: {"user": "node-b", "color": "#ff0"},
        }
        py.set_awareness(states[py.doc.client_id])
        for n in nodes:
            await n.send("awareness", states[n.client_id])

        # Everyone sees everyone (the pycrdt client keeps only the others' states).
        seen = await asyncio.gather(*(n.send("wait-awareness", {"present": states}) for n in nodes))
        for reply in seen:
            assert presence(reply["awareness"]) == states
        others = {k: v for k, v in states.items() if k != py.doc.client_id}
        await py.wait_until(lambda: presence(py.awareness) == others, WAIT)

        if leaving == "destroy":
            await a.send("destroy")
        else:
            await a.kill()
        del states[a.client_id], others[a.client_id]
        await py.wait_until(lambda: a.client_id not in py.awareness, WAIT)
        assert presence(py.awareness) == others
        reply = await b.send("wait-awareness", {"present": states, "absent": [a.client_id]})
        assert presence(reply["awareness"]) == states

        # A newcomer is greeted with the live states only (the greeting precedes sync step 2).
        async with YClient(url) as late:
            assert presence(late.awareness) == states


async def test_offline_edits_converge_after_reconnect(any_daemon, node):
    doc = "alice/offline"
    url = any_daemon.ws_url(doc, any_daemon.token("alice"))
    async with node_clients(node, any_daemon, doc, "node-a", "node-b") as nodes:
        a, b = nodes
        py = await YClient(url).connect()
        try:
            py.doc.get("text", type=pycrdt.Text).insert(0, "|base|")
            py.doc.get("array", type=pycrdt.Array).append("seed")
            await wait_all_have(py, nodes, state_vector(py.doc))
            await py.close()
            await b.send("disconnect")

            # While the pycrdt client and node-b are away, everyone edits.
            a_sv = (await a.send("edit", edits_for(a.name)))["stateVector"]
            b_sv = (await b.send("edit", edits_for(b.name)))["stateVector"]
            apply_py_edits(py.doc, "py")
            py_sv = state_vector(py.doc)
            # node-a's edit now lives only in node-a and the server: the returning clients must
            # get it from the server, and hand over what they made while away.
            await b.send("connect")
            py = await YClient(url, py.doc).connect()
            await wait_all_have(py, nodes, union(py_sv, a_sv, b_sv))
            content = await assert_converged(url, py, nodes)
        finally:
            await py.close()
    assert_all_edits_present(content, ["py", "node-a", "node-b"], "|base|")


async def test_stock_viewer_reads_live_but_its_edits_go_nowhere(any_daemon, node):
    """Issue 3, acceptance 3: bob's stock y-websocket client as a viewer of alice's canvas."""
    doc = "alice/canvas-1"
    alice = any_daemon.token("alice")
    auth = {"authorization": f"Bearer {alice}"}
    async with httpx.AsyncClient(base_url=any_daemon.http) as http:
        r = await http.put(
            f"/v1/docs/{doc}/access",
            json={"mode": "shared", "grants": {"bob": "viewer"}},
            headers=auth,
        )
        assert r.status_code == 200
        async with YClient(any_daemon.ws_url(doc, alice)) as py:
            bob = await NodeClient.start(node, any_daemon, doc, "bob", principal="bob")
            try:
                py.doc.get("map", type=pycrdt.Map)["from_alice"] = "live"
                await bob.send("wait-sv", state_vector(py.doc))
                assert (await bob.dump())["map"]["from_alice"] == "live"
                await bob.send("edit", [["map.set", "from_bob", "nope"]])
                # Presence goes through, and after it (same socket, in order) the edit was seen
                # and dropped by the server.
                await bob.send("awareness", {"name": "bob"})
                await py.wait_until(
                    lambda: py.awareness.get(bob.client_id, {}).get("name") == "bob"
                )
                assert py.awareness[bob.client_id]["principal"] == "bob"
                assert "from_bob" not in py.doc.get("map", type=pycrdt.Map).to_py()
            finally:
                await bob.close()
        state = await http.get(f"/v1/docs/{doc}/state", headers=auth)
        stored = pycrdt.Doc()
        stored.apply_update(state.content)
        assert stored.get("map", type=pycrdt.Map).to_py() == {"from_alice": "live"}
