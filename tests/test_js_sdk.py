"""The JavaScript SDK (``client-sdk/js``) against the real daemon, and its own unit tests.

One shared fixture proves that both sides read each other's documents: the JS SDK writes a
``journal/1`` and a ``canvas/1`` document through ``/v1/sync`` and Python reads them back with
``crdt.schemas``; Python writes them with ``crdt.schemas`` and the JS SDK reads them; and a JS
client and the Python SDK edit one canvas concurrently (the Python side offline) and end equal.
The Node side is ``client-sdk/js/test/fixture.mjs``. ``npm test`` (``node --test``) runs too.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pycrdt
import pytest
from syncd_client import Client

from crdt.schemas import Canvas, Journal
from tests.support.servers import RunningDaemon

pytestmark = [pytest.mark.node]

SDK = Path(__file__).resolve().parent.parent / "client-sdk" / "js"
PACKAGES = ("yjs", "y-protocols", "y-indexeddb", "lib0", "ws", "fake-indexeddb")
TIMEOUT = 30.0


@pytest.fixture(scope="module")
def node() -> str:
    """The ``node`` executable; fails (never skips) without it or the SDK's npm packages."""
    exe = shutil.which("node")
    missing = [p for p in PACKAGES if not (SDK / "node_modules" / p).is_dir()]
    if exe is None or missing:
        problem = "node is not on PATH" if exe is None else f"missing npm packages {missing}"
        pytest.fail(
            f"the JS SDK tests need Node.js 20+ and its pinned packages ({problem}): "
            "run npm ci --prefix client-sdk/js",
            pytrace=False,
        )
    return exe


async def run_fixture(node: str, command: str, config: dict[str, Any]) -> Any:
    proc = await asyncio.create_subprocess_exec(
        node, "test/fixture.mjs", command, json.dumps(config), cwd=SDK,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(TIMEOUT):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"fixture.mjs {command} hung") from None
    assert proc.returncode == 0, f"fixture.mjs {command} failed: {err.decode()[-3000:]}"
    return json.loads(out.decode().strip().splitlines()[-1])


async def server_doc(daemon: RunningDaemon, token: str, name: str) -> pycrdt.Doc:
    async with httpx.AsyncClient(base_url=daemon.http) as http:
        r = await http.get(f"/v1/docs/{name}/state", headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
    doc = pycrdt.Doc()
    doc.apply_update(r.content)
    return doc


@pytest.mark.anyio
async def test_js_writes_python_reads(daemon, node):
    token = daemon.token("alice")
    written = await run_fixture(node, "write", {
        "url": f"ws://127.0.0.1:{daemon.port}", "token": token,
        "journal": "alice/js-journal", "canvas": "alice/js-canvas",
    })
    assert written["pending"] == [0, 0] and written["statuses"] == ["saved", "saved"]
    ids = written["ids"]

    journal = Journal(await server_doc(daemon, token, "alice/js-journal"))
    assert journal.to_json() == written["journal"]
    entries = {e["id"]: e for e in journal.entries()}
    assert entries[ids["standalone"]]["body"] == "✍️ Wrote this on the train"
    assert entries[ids["standalone"]]["tags"] == ["train", "evening"]
    session = entries[ids["session"]]
    assert (session["mode"], session["session_id"], session["prompt"]) == (
        "in-session", "session-42", "What did you notice?")
    assert session["title"] == "שלום — session 1" and session["body"] == "مرحبا بالعالم 👋"
    for entry in entries.values():
        assert len(entry["id"]) == 21
        assert entry["created_at"].endswith("Z") and len(entry["created_at"]) == 24
    # The shared types are the schema's, so the Python helpers can go on editing.
    journal.edit_body(ids["session"], 0, insert="« ")
    assert journal.entry(ids["session"])["body"] == "« مرحبا بالعالم 👋"

    canvas = Canvas(await server_doc(daemon, token, "alice/js-canvas"), author="py")
    assert canvas.to_json() == written["canvas"]
    card = canvas.element(ids["card"])
    assert (card["rotation"], card["x"], card["y"], card["z"]) == (330.0, 10.0, 20.5, 5.0)
    assert all(isinstance(card[k], float) for k in ("x", "y", "w", "h", "rotation", "z"))
    stroke = canvas.element(ids["stroke"])
    assert stroke["points"] == [0.0, 0.0, 0.5, 12.25, 3.0, 0.75, 20.0, -4.0, 1.0]
    assert (stroke["w"], stroke["h"]) == (20.0, 7.0)
    assert canvas.element(ids["text"])["text"] == "Hello, world"
    assert canvas.element(ids["connector"])["from"] == ids["card"]
    assert [e["id"] for e in canvas.elements()][-1] == ids["card"]
    canvas.extend_stroke(ids["stroke"], [1.0, 1.0, 1.0])
    canvas.edit_text(ids["text"], 0, delete=5, insert="Bye")
    assert canvas.element(ids["text"])["text"] == "Bye, world"


@pytest.mark.anyio
async def test_python_writes_js_reads(daemon, node):
    token = daemon.token("alice")
    journal = Journal.create("Dream log")
    first = journal.create_entry("Monday", "Flying again", tags=["dream", "sky"])
    journal.create_entry("نوم", "حلم طويل", mode="in-session", session_id="s-1", prompt=None)
    journal.edit_body(first, 6, insert=" high")
    journal.add_tag(first, "night")
    canvas = Canvas.create("Board", template="retro", background="#ffffff", author="py")
    card = canvas.add_card("basic", "hope", 1.5, 2.0, color="#2a9d8f")
    stroke = canvas.add_stroke(0.0, 0.0, [0.0, 0.0, 0.5, 3.0, 4.0, 0.25], width=2.5)
    note = canvas.add_text("שלום", 10.0, 10.0)
    canvas.add_connector(card, note)
    canvas.rotate(card, -45.0)
    canvas.extend_stroke(stroke, [9.0, 9.0, 1.0])
    async with httpx.AsyncClient(base_url=daemon.http) as http:
        for name, doc in (("alice/py-journal", journal.doc), ("alice/py-canvas", canvas.doc)):
            r = await http.post(
                f"/v1/docs/{name}/updates", content=doc.get_update(),
                headers={"authorization": f"Bearer {token}",
                         "content-type": "application/octet-stream"},
            )
            assert r.status_code == 200, r.text

    read = await run_fixture(node, "read", {
        "url": f"ws://127.0.0.1:{daemon.port}", "token": token,
        "docs": ["alice/py-journal", "alice/py-canvas"],
    })
    assert read["alice/py-journal"]["json"] == journal.to_json()
    assert read["alice/py-journal"]["entries"] == journal.entries()
    assert read["alice/py-journal"]["title"] == "Dream log"
    assert read["alice/py-canvas"]["json"] == canvas.to_json()
    assert read["alice/py-canvas"]["elements"] == canvas.elements()
    assert read["alice/py-canvas"]["meta"] == canvas.meta


@pytest.mark.anyio
async def test_js_and_python_sdks_edit_one_canvas_concurrently(daemon, node, tmp_path):
    token = daemon.token("alice")
    name = "alice/both"
    url = f"ws://127.0.0.1:{daemon.port}"
    async with Client(url, token, store=tmp_path / "py.db") as client:
        doc = client.document(name)
        seeded = doc.canvas(author="py")
        seeded.init("Both")
        card = seeded.add_card("basic", "hope", 0.0, 0.0)
        await client.synced(timeout=TIMEOUT)

    # Python edits offline (the client is not started): the edits wait in its outbox.
    offline = Client(url, token, store=tmp_path / "py.db")
    doc = offline.document(name)
    canvas = doc.canvas(author="py")
    canvas.move(card, 100.0, 100.0)
    shape = canvas.add_shape("rect", 5.0, 5.0, 40.0, 30.0)
    assert doc.unsynced == 2

    config = {"url": url, "token": token, "doc": name, "card": card, "expect": shape}
    proc = await asyncio.create_subprocess_exec(
        node, "test/fixture.mjs", "live", json.dumps(config), cwd=SDK,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(TIMEOUT):
            assert proc.stdout is not None
            edited = json.loads(await proc.stdout.readline() or b"null")
            assert edited and edited["event"] == "edited", (await proc.stderr.read()).decode()
            # The JS edits are stored; ours were made without seeing them: concurrent.
            offline.start()
            result = json.loads(await proc.stdout.readline())
            assert await proc.wait() == 0
            await doc.wait_for(lambda: edited["text"] in canvas.to_json()["elements"], TIMEOUT)
            await offline.synced(timeout=TIMEOUT)
        assert canvas.to_json() == result["json"]
        assert canvas.element(card)["x"] in (100.0, 300.0)  # one of the two moves won
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await offline.close()
    final = Canvas(await server_doc(daemon, token, name))
    assert final.to_json() == canvas.to_json()


def test_js_sdk_unit_tests_pass(node):
    """``npm test`` in client-sdk/js (``node --test``): helpers, client, persistence."""
    npm = shutil.which("npm")
    assert npm is not None, "npm is not on PATH"
    proc = subprocess.run(
        [npm, "test", "--prefix", str(SDK)], capture_output=True, text=True, timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout
