"""A principal's data export (issue 12, acceptance 3), SQLite and Postgres, over the real daemon.

alice owns a journal and a canvas (one shared with bob), has one document in the trash, writes
in bob's document and holds a grant there, and has answered a consent. Her export is a zip with
every owned document (its JSON view equal to ``GET …/state`` with ``Accept: application/json``,
its Yjs state holding the same content), the grants both ways, the consents and the activity
she wrote in bob's document with its decoded changes; another user's token is refused (403),
as are a service's and no token at all; an admin may export her.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from typing import Any

import httpx
import pycrdt
import pytest

from crdt.schemas import Canvas, Journal
from storage.principal_data import scoped
from storage.schema import consents
from syncd.http_api import json_view
from tests.support.history import CanvasWriter
from tests.support.servers import RunningDaemon

pytestmark = pytest.mark.anyio


def auth(daemon: RunningDaemon, sub: str, **kw: Any) -> dict[str, str]:
    return {"authorization": f"Bearer {daemon.token(sub, **kw)}"}


async def post(http: httpx.AsyncClient, daemon: RunningDaemon, name: str, who: str, update: bytes):
    r = await http.post(f"/v1/docs/{name}/updates", content=update, headers=auth(daemon, who))
    assert r.status_code == 200, r.text


async def test_export_holds_every_owned_document_and_refuses_others(any_daemon: RunningDaemon):
    daemon = any_daemon
    async with httpx.AsyncClient(base_url=daemon.http, timeout=30) as http:
        journal = Journal.create("Alice's diary")
        journal.create_entry("Monday", "the export must carry this sentence")
        await post(http, daemon, "alice/diary", "alice", journal.doc.get_update())
        board = CanvasWriter(http, daemon, "alice/board", "alice")
        await board.edit(lambda c: c.init("Board"))
        await board.edit(lambda c: c.add_text("a card on the board", 1, 2))
        r = await http.put(
            "/v1/docs/alice/board/access",
            json={"mode": "shared", "grants": {"bob": "viewer"}},
            headers=auth(daemon, "alice"),
        )
        assert r.status_code == 200, r.text
        gone = Journal.create("Old")
        await post(http, daemon, "alice/old", "alice", gone.doc.get_update())
        r = await http.delete("/v1/docs/alice/old", headers=auth(daemon, "alice"))
        assert r.status_code == 204
        # bob's canvas, where alice is an editor and writes two cards.
        bobs = CanvasWriter(http, daemon, "bob/shared", "bob")
        await bobs.edit(lambda c: c.init("Bob's"))
        r = await http.put(
            "/v1/docs/bob/shared/access",
            json={"mode": "shared", "grants": {"alice": "editor"}},
            headers=auth(daemon, "bob"),
        )
        assert r.status_code == 200, r.text
        alice_there = CanvasWriter(http, daemon, "bob/shared", "alice")
        await alice_there.pull()
        _, first = await alice_there.edit(lambda c: c.add_text("alice in bob's canvas", 0, 0))
        _, second = await alice_there.edit(lambda c: c.add_text("and a second one", 0, 0))
        await bobs.pull()
        await bobs.edit(lambda c: c.add_text("bob's own card", 0, 0))
        async with scoped(daemon.daemon.store, "default", write=True) as conn:  # type: ignore[arg-type]
            await conn.execute(
                consents.insert().values(
                    tenant="default",
                    principal="alice",
                    purpose="analytics",
                    granted=True,
                    updated_at=time.time(),
                )
            )

        assert (await http.get("/v1/principals/alice/export")).status_code == 401
        for who, kw in (("bob", {}), ("svc", {"role": "service"})):
            r = await http.get("/v1/principals/alice/export", headers=auth(daemon, who, **kw))
            assert r.status_code == 403 and r.json()["error"] == "forbidden"
        r = await http.get("/v1/principals/not!ok/export", headers=auth(daemon, "alice"))
        assert r.status_code == 400 and r.json()["error"] == "bad_request"

        r = await http.get("/v1/principals/alice/export", headers=auth(daemon, "alice"))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/zip"
        assert r.headers["content-disposition"].startswith("attachment;")
        assert "content-length" not in r.headers  # streamed (chunked), not built in memory
        expected = {}
        for name in ("alice/diary", "alice/board"):
            view = await http.get(
                f"/v1/docs/{name}/state",
                headers={**auth(daemon, "alice"), "accept": "application/json"},
            )
            expected[name] = view.json()
        admin = await http.get(
            "/v1/principals/alice/export", headers=auth(daemon, "r", role="admin")
        )
        assert admin.status_code == 200

    for content in (r.content, admin.content):
        archive = zipfile.ZipFile(io.BytesIO(content))
        assert archive.testzip() is None
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["format"] == "syncd-export/1" and manifest["principal"] == "alice"
        assert sorted(d["id"] for d in manifest["documents"]) == ["alice/board", "alice/diary"]
        assert [t["id"] for t in manifest["trash"]] == ["alice/old"]
        assert set(manifest["files"]) == set(archive.namelist())
        for entry in manifest["documents"]:
            assert json.loads(archive.read(entry["json"])) == expected[entry["id"]]
            # The Yjs state is the same document.
            assert json_view(archive.read(entry["yjs"])) == expected[entry["id"]]
        doc = pycrdt.Doc()
        doc.apply_update(archive.read("documents/diary.yjs"))
        [kept] = Journal(doc).entries()
        assert kept["body"] == "the export must carry this sentence"
        board_doc = pycrdt.Doc()
        board_doc.apply_update(archive.read("documents/board.yjs"))
        assert [e["text"] for e in Canvas(board_doc).elements()] == ["a card on the board"]

        grants = json.loads(archive.read("grants.json"))
        assert grants["on_their_documents"] == [
            {"document": "alice/board", "principal": "bob", "role": "viewer"}
        ]
        assert grants["held"] == [{"document": "bob/shared", "role": "editor"}]
        assert json.loads(archive.read("consents.json"))["consents"]["analytics"]["granted"]

        activity = json.loads(archive.read("activity.json"))
        assert [(e["document"], e["seq"]) for e in activity["entries"]] == [
            ("bob/shared", first),
            ("bob/shared", second),
        ]
        assert manifest["activity"] == {"documents": 1, "entries": 2}
        texts = [
            c.get("text")
            for e in activity["entries"]
            for c in e["changes"]
            if c["type"] == "element_added"
        ]
        assert texts == ["alice in bob's canvas", "and a second one"]
        assert all(e["origin"] == "http" for e in activity["entries"])
        assert "bob's own card" not in json.dumps(activity)


async def test_export_of_a_principal_with_nothing_is_an_empty_valid_zip(daemon: RunningDaemon):
    async with httpx.AsyncClient(base_url=daemon.http) as http:
        r = await http.get("/v1/principals/nobody/export", headers=auth(daemon, "nobody"))
    assert r.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["documents"] == [] and manifest["activity"] == {"documents": 0, "entries": 0}
    assert json.loads(archive.read("activity.json")) == {"principal": "nobody", "entries": []}


async def test_a_document_of_no_known_schema_is_exported_as_its_roots(daemon: RunningDaemon):
    doc = pycrdt.Doc()
    doc.get("settings", type=pycrdt.Map)["theme"] = "dark"
    doc.get("scratch", type=pycrdt.Text).insert(0, "free text")
    async with httpx.AsyncClient(base_url=daemon.http) as http:
        await post(http, daemon, "dana/misc", "dana", doc.get_update())
        r = await http.get("/v1/principals/dana/export", headers=auth(daemon, "dana"))
    assert r.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert json.loads(archive.read("documents/misc.json")) == {
        "schema": None,
        "roots": {"scratch": "free text", "settings": {"theme": "dark"}},
    }
