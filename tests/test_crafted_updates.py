"""Acceptance 1 of issue 8: a crafted update costs its sender the connection, nothing more.

Every shape goes through every way in (``/v1/docs`` as update and as sync step 2, ``/v1/sync``
as editor and as viewer, ``POST …/updates``) against a daemon in a subprocess, so that a crash
would show as a dead process instead of taking pytest with it. Each time: the sender is refused
(close 4400 / HTTP 400), the daemon answers ``/healthz``, a bystander on the same document and a
writer on another one carry on, the document holds exactly what it held, and after a restart
every document still loads.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pycrdt
import pytest

from crdt.protocol import SyncMessage, SyncStep, encode_sync
from syncd.tokens import TokenKeys
from tests.support.crafted import deep_any, string_parent, text_item, zero_length
from tests.support.hpclient import HpClient
from tests.support.servers import SECRET, DaemonProcess
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio

KEYS = TokenKeys(secret=SECRET)
ALICE, BOB = KEYS.mint("alice"), KEYS.mint("bob")
CLIENT = 4242  # the crafted updates' client id
_names = itertools.count(1)

# shape -> (precursor the sender writes first, the crafted update)
SHAPES = {
    "deep_any": (None, deep_any(CLIENT)),
    "zero_length": (None, zero_length(CLIENT)),
    "string_parent": (text_item(CLIENT), string_parent(CLIENT)),
}
PATHS = ["docs_update", "docs_step2", "sync_editor", "sync_viewer", "http"]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    proc = DaemonProcess(Path(tmp_path_factory.mktemp("crafted")), None).start()
    try:
        yield proc
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.terminate()


# Documents written by the tests, with the text each must hold (checked again after a restart).
EXPECTED: dict[str, str] = {}


def _text(doc: pycrdt.Doc) -> str:
    return str(doc.get("t", type=pycrdt.Text))


async def _state_text(http: httpx.AsyncClient, doc: str) -> str:
    r = await http.get(f"/v1/docs/{doc}/state", headers={"authorization": f"Bearer {ALICE}"})
    assert r.status_code == 200, r.text
    replica = pycrdt.Doc()
    replica.apply_update(r.content)
    return _text(replica)


async def _send_as_editor_on_docs(daemon: DaemonProcess, doc: str, precursor, bad, step):
    async with YClient(daemon.ws_url(doc, ALICE), client_id=CLIENT + 1) as sender:
        if precursor is not None:
            await sender.send_raw(encode_sync(SyncStep.UPDATE, precursor))
        await sender.send_raw(encode_sync(step, bad))
        await sender.wait(sender.closed)
        return sender.close_code


@contextlib.asynccontextmanager
async def _send_on_sync(daemon: DaemonProcess, doc: str, token: str, precursor, bad):
    async with HpClient(f"ws://127.0.0.1:{daemon.port}/v1/sync") as client:
        mine = client.open(doc, token)
        other = client.open(f"bob/other-{next(_names)}", BOB)
        # Every step 2 so far acknowledged: the statuses that follow are for what we send.
        await client.wait_until(
            lambda: mine.synced and other.synced and len(mine.statuses) == mine.updates_sent
        )
        if precursor is not None:
            mine.send(SyncMessage(SyncStep.UPDATE, precursor))
            await client.wait_until(lambda: len(mine.statuses) == mine.updates_sent)
            assert mine.statuses[-1] is True
        mine.send(SyncMessage(SyncStep.STEP2, bad))
        await client.wait_until(
            lambda: client.closed.is_set()
            or mine.closed is not None
            or len(mine.statuses) == mine.updates_sent
        )
        yield client, mine, other


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shape", list(SHAPES))
async def test_crafted_update_costs_only_its_sender(daemon, shape, path):
    precursor, bad = SHAPES[shape]
    doc = f"alice/{shape}-{path}"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.port}") as http:
        r = await http.put(
            f"/v1/docs/{doc}/access",
            json={"mode": "shared", "grants": {"bob": "viewer"}},
            headers={"authorization": f"Bearer {ALICE}"},
        )
        assert r.status_code == 200, r.text
        elsewhere_doc = f"alice/elsewhere-{next(_names)}"
        async with (
            YClient(daemon.ws_url(doc, ALICE)) as bystander,
            YClient(daemon.ws_url(elsewhere_doc, ALICE)) as elsewhere,
        ):
            bystander.doc.get("t", type=pycrdt.Text).insert(0, "ok ")

            if path in ("docs_update", "docs_step2"):
                step = SyncStep.UPDATE if path == "docs_update" else SyncStep.STEP2
                assert await _send_as_editor_on_docs(daemon, doc, precursor, bad, step) == 4400
            elif path == "sync_editor":
                async with _send_on_sync(daemon, doc, ALICE, precursor, bad) as (
                    client, mine, other
                ):
                    if shape == "string_parent":
                        # Only the document could judge it: that document is closed, the
                        # socket and its other documents go on.
                        assert mine.closed is not None
                        assert not client.closed.is_set()
                        other.doc.get("t", type=pycrdt.Text).insert(0, "fine")
                        await client.wait_until(lambda: other.unsynced == 0)
                    else:
                        assert client.close_code == 4400
            elif path == "sync_viewer":
                # A viewer's edit is never applied; one that does not decode costs its socket.
                async with _send_on_sync(daemon, doc, BOB, None, bad) as (client, mine, _):
                    if shape == "string_parent":
                        assert mine.statuses[-1] is False and not client.closed.is_set()
                    else:
                        assert client.close_code == 4400
            else:
                if precursor is not None:
                    r = await http.post(
                        f"/v1/docs/{doc}/updates",
                        content=precursor,
                        headers={"authorization": f"Bearer {ALICE}"},
                    )
                    assert r.status_code == 200, r.text
                r = await http.post(
                    f"/v1/docs/{doc}/updates",
                    content=bad,
                    headers={"authorization": f"Bearer {ALICE}"},
                )
                assert r.status_code == 400, r.text
                assert r.json()["error"] == "bad_request"

            assert (await http.get("/healthz")).status_code == 200
            # The bystander and the other document's writer carry on. The precursor is a valid
            # edit (it stays); the crafted update's content ("x") is nowhere.
            text = bystander.doc.get("t", type=pycrdt.Text)
            if precursor is not None and path != "sync_viewer":
                await bystander.wait_until(lambda: "ab" in _text(bystander.doc))
            text.insert(0, "still ")
            expected = _text(bystander.doc)
            assert "x" not in expected and "ok " in expected
            elsewhere.doc.get("t", type=pycrdt.Text).insert(0, "unaffected")
            async with YClient(daemon.ws_url(doc, ALICE)) as fresh:
                await fresh.wait_until(lambda: _text(fresh.doc) == expected)
            async with YClient(daemon.ws_url(elsewhere_doc, ALICE)) as fresh:
                await fresh.wait_until(lambda: _text(fresh.doc) == "unaffected")
            assert not bystander.closed.is_set() and not elsewhere.closed.is_set()
            assert await _state_text(http, doc) == expected
    EXPECTED[doc] = expected


async def test_every_document_still_loads_after_a_restart(daemon):
    assert len(EXPECTED) == len(SHAPES) * len(PATHS), "run with the tests above"
    daemon.terminate()
    daemon.start()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.port}") as http:
        for doc, expected in EXPECTED.items():
            assert await _state_text(http, doc) == expected
            async with YClient(daemon.ws_url(doc, ALICE)) as client:
                assert _text(client.doc) == expected
