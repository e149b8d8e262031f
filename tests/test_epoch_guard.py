"""The epoch guard (DESIGN.md §1.10, issue 11 acceptance 5) against the real daemon.

``/v1/sync`` sends the document's epoch right after ``Authenticated``; a stock Hocuspocus
provider ignores it. The Python SDK and the JS SDK (real Node, ``client-sdk/js/test/
epoch-fixture.mjs``, IndexedDB persistence) each make 50 edits offline while their document is
purged (``DELETE …?purge=true``) and created again (``PUT``, then written): nothing of the old
lineage reaches the server, nothing is duplicated, and the 50 edits are in the client's
recovered copy. With the epoch unchanged, 50 offline edits
under a fresh client id merge normally. SQLite and Postgres.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pycrdt
import pytest
from syncd_client import Client, DocumentState, RecoveredCopy

from crdt.hocuspocus import Authenticated, Stateless
from crdt.protocol import SyncMessage, SyncStep
from crdt.schemas import Canvas
from tests.support.hpclient import HpClient
from tests.support.nodeclient import NODE_WAIT_MS, NodeProcess, require_node
from tests.support.servers import RunningDaemon

pytestmark = pytest.mark.anyio

SDK = Path(__file__).resolve().parent.parent / "client-sdk" / "js"
SDK_PACKAGES = ("yjs", "y-protocols", "y-indexeddb", "lib0", "ws", "fake-indexeddb")
TIMEOUT = 30.0
EDITS = 50
OFFLINE = sorted(f"offline {i:02d}" for i in range(EDITS))


def epoch_payload(epoch: str) -> str:
    return json.dumps({"syncd": "epoch", "epoch": epoch}, separators=(",", ":"))


def base(daemon: RunningDaemon) -> str:
    return f"ws://127.0.0.1:{daemon.port}"


def texts(doc: pycrdt.Doc) -> list[str]:
    return sorted(e["text"] for e in Canvas(doc).elements() if e["kind"] == "text")


def auth(daemon: RunningDaemon, sub: str = "alice") -> dict[str, str]:
    return {"authorization": f"Bearer {daemon.token(sub)}"}


async def metadata(daemon: RunningDaemon, name: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=daemon.http) as http:
        r = await http.get(f"/v1/docs/{name}", headers=auth(daemon))
    assert r.status_code == 200, r.text
    return r.json()


async def server_doc(daemon: RunningDaemon, name: str) -> pycrdt.Doc:
    async with httpx.AsyncClient(base_url=daemon.http) as http:
        r = await http.get(f"/v1/docs/{name}/state", headers=auth(daemon))
    assert r.status_code == 200, r.text
    doc = pycrdt.Doc()
    doc.apply_update(r.content)
    return doc


async def write(daemon: RunningDaemon, name: str, update: bytes) -> None:
    async with httpx.AsyncClient(base_url=daemon.http) as http:
        r = await http.post(
            f"/v1/docs/{name}/updates",
            content=update,
            headers={**auth(daemon), "content-type": "application/octet-stream"},
        )
    assert r.status_code == 200, r.text


async def purge(daemon: RunningDaemon, name: str) -> None:
    """Erase the document and its history for good (``DELETE …?purge=true``), then create the
    id again (``PUT /v1/docs/{id}``): a new lineage, with a new epoch."""
    async with httpx.AsyncClient(base_url=daemon.http) as http:
        r = await http.delete(f"/v1/docs/{name}", params={"purge": "true"}, headers=auth(daemon))
        assert r.status_code == 204, r.text
        r = await http.get(f"/v1/docs/{name}/state", headers=auth(daemon))
        assert r.status_code == 404, r.text
        r = await http.put(f"/v1/docs/{name}", headers=auth(daemon))
        assert r.status_code == 201, r.text


async def purge_and_create_again(daemon: RunningDaemon, name: str) -> pycrdt.Doc:
    """Purge ``name``, then create it again (another device of alice) with a "New board"
    holding one text, "fresh"; returns that content."""
    old_epoch = (await metadata(daemon, name))["epoch"]
    await purge(daemon, name)
    fresh = Canvas.create("New board", author="alice-tablet")
    fresh.add_text("fresh", 5.0, 5.0)
    await write(daemon, name, fresh.doc.get_update())
    new_epoch = (await metadata(daemon, name))["epoch"]
    assert new_epoch != old_epoch
    return fresh.doc


# -- the server's message -----------------------------------------------------------------------


async def test_the_epoch_follows_authenticated_before_anything_of_the_document(any_daemon):
    seeded = Canvas.create("Seeded", author="alice")
    await write(any_daemon, "alice/existing", seeded.doc.get_update())
    url = f"{base(any_daemon)}/v1/sync"
    async with HpClient(url) as client:
        created = client.open("alice/created-now", any_daemon.token("alice"))
        existing = client.open("alice/existing", any_daemon.token("alice"))
        await client.wait_until(lambda: created.synced and existing.synced, TIMEOUT)
    for hp, name in ((created, "alice/created-now"), (existing, "alice/existing")):
        epoch = (await metadata(any_daemon, name))["epoch"]
        assert len(epoch) == 32
        first = hp.received[:3]
        assert first[0] == Authenticated("read-write")
        assert first[1] == Stateless(
            json.dumps({"syncd": "epoch", "epoch": epoch}, separators=(",", ":"))
        )
        assert isinstance(first[2], SyncMessage) and first[2].step is SyncStep.STEP1
        assert sum(isinstance(m, Stateless) for m in hp.received) == 1


@pytest.mark.node
async def test_a_stock_hocuspocus_provider_ignores_the_epoch_message(daemon):
    node = require_node(("yjs", "ws", "lib0", "y-protocols", "@hocuspocus/provider"))
    config = {
        "url": f"{base(daemon)}/v1/sync",
        "name": "hocuspocus",
        "timeoutMs": NODE_WAIT_MS,
        "docs": [{"name": "alice/stock", "token": daemon.token("alice")}],
    }
    hp, ready = await NodeProcess.spawn(node, "hp_client.mjs", config, "hocuspocus")
    try:
        assert ready["docs"]["alice/stock"]["auth"] == {"scope": "read-write"}
        await hp.send("edit", {"doc": "alice/stock", "ops": [["map.set", "k", "v"]]})
        done = await hp.send("wait-unsynced", {"doc": "alice/stock", "n": 0})
        epoch = (await metadata(daemon, "alice/stock"))["epoch"]
        kinds = [entry[0] for entry in done["timeline"]]
        assert [
            "stateless",
            json.dumps({"syncd": "epoch", "epoch": epoch}, separators=(",", ":")),
        ] in done["timeline"]
        assert kinds.index("authenticated") < kinds.index("stateless") < kinds.index("synced")
    finally:
        await hp.close()
    stored = await server_doc(daemon, "alice/stock")
    assert stored.get("map", type=pycrdt.Map).to_py() == {"k": "v"}


# -- the Python SDK -----------------------------------------------------------------------------


async def test_python_sdk_offline_edits_meet_a_purged_and_recreated_document(any_daemon, tmp_path):
    name, store = "alice/reborn-py", tmp_path / "py.db"
    async with Client(base(any_daemon), any_daemon.token("alice"), store=store) as client:
        doc = client.document(name)
        canvas = doc.canvas(author="py")
        canvas.init("Old board")
        canvas.add_text("old and acknowledged", 0.0, 0.0)
        await client.synced(timeout=TIMEOUT)
        old_epoch = doc.epoch
    assert old_epoch == (await metadata(any_daemon, name))["epoch"]

    recovered: list[RecoveredCopy] = []
    offline = Client(
        base(any_daemon), any_daemon.token("alice"), store=store, on_recovered=recovered.append
    )
    try:
        doc = offline.document(name)
        canvas = doc.canvas(author="py")
        for text in OFFLINE:
            canvas.add_text(text, 0.0, 0.0)
        assert doc.unsynced == EDITS
        fresh = await purge_and_create_again(any_daemon, name)
        offline.start()
        await offline.synced(timeout=TIMEOUT)
        new_epoch = (await metadata(any_daemon, name))["epoch"]
        assert doc.epoch == new_epoch and doc.resets == 1 and doc.unsynced == 0
        assert doc.state is DocumentState.SAVED
        # The server holds exactly the new lineage: no old content, no offline edit, nothing twice.
        server = await server_doc(any_daemon, name)
        assert Canvas(server).to_json() == Canvas(fresh).to_json()
        assert texts(server) == ["fresh"]
        assert Canvas(doc.doc).to_json() == Canvas(server).to_json()
        # The 50 edits are in the recovered copy, with the replica they were made on.
        [copy] = offline.recovered
        assert recovered == [copy]
        assert (copy.doc, copy.epoch, copy.server_epoch) == (name, old_epoch, new_epoch)
        assert len(copy.updates) == EDITS
        assert texts(copy.replica()) == sorted([*OFFLINE, "old and acknowledged"])
    finally:
        await offline.close()

    # A restart: no second reset, the copy is still there until discarded.
    async with Client(base(any_daemon), any_daemon.token("alice"), store=store) as again:
        doc = again.document(name)
        assert doc.epoch == new_epoch
        await again.synced(timeout=TIMEOUT)
        assert doc.resets == 0 and texts(doc.doc) == ["fresh"]
        assert [c.id for c in again.recovered] == [copy.id]
        assert again.discard_recovered(copy) and again.recovered == []


async def test_python_sdk_offline_edits_under_a_fresh_client_id_merge_when_the_epoch_holds(
    any_daemon, tmp_path
):
    name, store = "alice/same-py", tmp_path / "py.db"
    async with Client(base(any_daemon), any_daemon.token("alice"), store=store) as client:
        doc = client.document(name)
        doc.canvas(author="py").init("Same board")
        await client.synced(timeout=TIMEOUT)
        first_id = doc.doc.client_id
        epoch = doc.epoch

    offline = Client(base(any_daemon), any_daemon.token("alice"), store=store)
    try:
        doc = offline.document(name)
        assert doc.doc.client_id != first_id  # a new process, a new Yjs client id
        canvas = doc.canvas(author="py")
        for text in OFFLINE:
            canvas.add_text(text, 0.0, 0.0)
        assert doc.unsynced == EDITS
        # Someone else edits meanwhile: the server moved on, in the same lineage.
        other = await server_doc(any_daemon, name)
        before = other.get_state()
        Canvas(other, author="bob").add_text("meanwhile", 1.0, 1.0)
        await write(any_daemon, name, other.get_update(before))
        offline.start()
        await offline.synced(timeout=TIMEOUT)
        assert doc.resets == 0 and offline.recovered == [] and doc.epoch == epoch
        server = await server_doc(any_daemon, name)
        assert texts(server) == sorted([*OFFLINE, "meanwhile"])
        assert Canvas(doc.doc).to_json() == Canvas(server).to_json()
    finally:
        await offline.close()


# -- the JS SDK ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node() -> str:
    """``node`` with the JS SDK's packages; fails (never skips) without them."""
    exe = shutil.which("node")
    missing = [p for p in SDK_PACKAGES if not (SDK / "node_modules" / p).is_dir()]
    if exe is None or missing:
        problem = "node is not on PATH" if exe is None else f"missing npm packages {missing}"
        pytest.fail(
            f"the JS SDK tests need Node.js 20+ ({problem}): npm ci --prefix client-sdk/js",
            pytrace=False,
        )
    return exe


class EpochFixture:
    """``client-sdk/js/test/epoch-fixture.mjs``: one JSON line per step, a line to go on."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def spawn(cls, node: str, config: dict[str, Any]) -> EpochFixture:
        proc = await asyncio.create_subprocess_exec(
            node,
            "test/epoch-fixture.mjs",
            json.dumps(config),
            cwd=SDK,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def event(self, kind: str) -> dict[str, Any]:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        async with asyncio.timeout(TIMEOUT):
            line = await self.proc.stdout.readline()
        if not line:
            async with asyncio.timeout(TIMEOUT):
                err = await self.proc.stderr.read()
            raise AssertionError(f"epoch-fixture.mjs ended: {err.decode()[-3000:]}")
        message = json.loads(line)
        assert message["event"] == kind, message
        return message

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


@pytest.mark.node
async def test_js_sdk_offline_edits_meet_a_purged_and_recreated_document(any_daemon, node):
    name = "alice/reborn-js"
    js = await EpochFixture.spawn(
        node,
        {
            "url": base(any_daemon),
            "token": any_daemon.token("alice"),
            "doc": name,
            "mode": "purged",
            "edits": EDITS,
            "timeoutMs": int(TIMEOUT * 1000),
        },
    )
    try:
        synced = await js.event("synced")
        old_epoch = synced["epoch"]
        assert old_epoch == (await metadata(any_daemon, name))["epoch"]
        assert (await js.event("offline"))["pending"] == EDITS
        fresh = await purge_and_create_again(any_daemon, name)
        js.go()
        result = await js.event("result")
        assert await js.proc.wait() == 0
    finally:
        await js.close()
    new_epoch = (await metadata(any_daemon, name))["epoch"]
    server = await server_doc(any_daemon, name)
    assert Canvas(server).to_json() == Canvas(fresh).to_json()
    assert texts(server) == ["fresh"]
    assert result["events"] == ["reset", "recovered"]
    assert (result["epoch"], result["resets"], result["pending"]) == (new_epoch, 1, 0)
    assert result["json"] == Canvas(server).to_json()
    assert result["recovered"] == [
        {
            "epoch": old_epoch,
            "serverEpoch": new_epoch,
            "updates": EDITS,
            "texts": sorted([*OFFLINE, "old and acknowledged"]),
        }
    ]
    # Reloaded from IndexedDB: the new epoch, the copy, the new content, an empty outbox.
    assert result["reloaded"] == {
        "epoch": new_epoch,
        "recovered": [EDITS],
        "texts": ["fresh"],
        "pending": 0,
    }


@pytest.mark.node
async def test_js_sdk_offline_edits_under_a_fresh_client_id_merge_when_the_epoch_holds(
    any_daemon, node
):
    name = "alice/same-js"
    js = await EpochFixture.spawn(
        node,
        {
            "url": base(any_daemon),
            "token": any_daemon.token("alice"),
            "doc": name,
            "mode": "same",
            "edits": EDITS,
            "timeoutMs": int(TIMEOUT * 1000),
        },
    )
    try:
        synced = await js.event("synced")
        offline = await js.event("offline")
        assert offline["pending"] == EDITS and offline["clientID"] != synced["clientID"]
        other = await server_doc(any_daemon, name)
        before = other.get_state()
        Canvas(other, author="bob").add_text("meanwhile", 1.0, 1.0)
        await write(any_daemon, name, other.get_update(before))
        js.go()
        result = await js.event("result")
        assert await js.proc.wait() == 0
    finally:
        await js.close()
    server = await server_doc(any_daemon, name)
    assert texts(server) == sorted([*OFFLINE, "meanwhile"])
    assert result["events"] == [] and result["recovered"] == [] and result["resets"] == 0
    assert result["epoch"] == synced["epoch"] == (await metadata(any_daemon, name))["epoch"]
    assert result["json"] == Canvas(server).to_json()
    assert result["reloaded"]["recovered"] == [] and result["reloaded"]["pending"] == 0
