"""Acceptance 2 of issue 8: poison already in the database never bricks a document.

The test writes a journal through the daemon, stops it, and appends crafted rows to the log
directly (as data written before the strict decoder existed would be). Restarted, the daemon
serves the feed (raw and decoded) without them, loads the document minus them, quarantines
them (kept in the database, flagged, counted in ``/metrics``) and keeps serving everyone.
"""

from __future__ import annotations

import re
import time

import httpx
import pycrdt
import pytest
import sqlalchemy as sa

from crdt.schemas import Journal
from storage.engine import engine_url
from syncd.tokens import TokenKeys
from tests.support.crafted import deep_any, string_parent, text_item, zero_length
from tests.support.servers import SECRET, DaemonProcess
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio

KEYS = TokenKeys(secret=SECRET)
ALICE = KEYS.mint("alice")
SERVICE = KEYS.mint("insights", role="service")
CLIENT = 9191


def append_rows(database_url: str, doc: str, rows: list[bytes]) -> list[int]:
    """Append ``rows`` to ``doc``'s log behind the daemon's back; return their seqs."""
    engine = sa.create_engine(engine_url(database_url).replace("+aiosqlite", ""))
    seqs = []
    with engine.begin() as conn:
        doc_id, seq = conn.execute(
            sa.text("SELECT id, seq FROM syncd_documents WHERE name = :n"), {"n": doc}
        ).one()
        pos = conn.execute(sa.text("SELECT pos FROM syncd_feed_position WHERE id = 1")).scalar()
        for data in rows:
            seq, pos = seq + 1, pos + 1
            conn.execute(
                sa.text(
                    "INSERT INTO syncd_updates (pos, doc_id, seq, principal, origin, at, data)"
                    " VALUES (:pos, :doc, :seq, 'mallory', 'client', :at, :data)"
                ),
                {"pos": pos, "doc": doc_id, "seq": seq, "at": time.time(), "data": data},
            )
            seqs.append(seq)
        conn.execute(
            sa.text("UPDATE syncd_documents SET seq = :seq WHERE id = :id"),
            {"seq": seq, "id": doc_id},
        )
        conn.execute(sa.text("UPDATE syncd_feed_position SET pos = :p WHERE id = 1"), {"p": pos})
    engine.dispose()
    return seqs


def quarantined(database_url: str) -> set[int]:
    engine = sa.create_engine(engine_url(database_url).replace("+aiosqlite", ""))
    with engine.connect() as conn:
        seqs = set(conn.execute(sa.text("SELECT seq FROM syncd_quarantine")).scalars())
    engine.dispose()
    return seqs


def later_entry(state: bytes, title: str) -> bytes:
    """A good update written after the poison: a new entry, made on a replica of ``state``."""
    doc = pycrdt.Doc()
    doc.apply_update(state)
    before = doc.get_state()
    Journal(doc).create_entry(title, "fine")
    return doc.get_update(before)


async def test_poison_in_the_log_is_left_out_and_quarantined(tmp_path, database_url):
    daemon = DaemonProcess(tmp_path / "data", database_url).start()
    try:
        async with YClient(daemon.ws_url("alice/journal", ALICE)) as writer:
            journal = Journal(writer.doc)
            journal.init("Diary")
            journal.create_entry("kept", "written before")
            # Once another client sees the entry, the daemon has committed it.
            async with YClient(daemon.ws_url("alice/journal", ALICE)) as check:
                await check.wait_until(lambda: len(Journal(check.doc).entries()) == 1)
            state = writer.doc.get_update()
        daemon.terminate()

        poison = [
            deep_any(CLIENT, depth=5_000),  # passed pycrdt.get_state; crashed every JSON view
            zero_length(CLIENT + 1),
            text_item(CLIENT + 2),  # a good row the next one refers to
            string_parent(CLIENT + 2),
        ]
        seqs = append_rows(database_url, "alice/journal", [*poison, later_entry(state, "after")])
        bad = {seqs[0], seqs[1], seqs[3]}

        daemon.start()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.port}") as http:
            service = {"authorization": f"Bearer {SERVICE}", "accept": "application/json"}
            # The feed first, before any room loaded the document: poison is withheld.
            for fmt in ("updates", "changes"):
                page = await http.get("/v1/feed", params={"format": fmt, "limit": 100},
                                      headers=service)
                assert page.status_code == 200, page.text
                served = {e["seq"] for e in page.json()["events"]}
                assert served.isdisjoint({seqs[0], seqs[1]}) and seqs[4] in served
            changes = [c for e in page.json()["events"] if e["changes"] for c in e["changes"]]
            assert {"kept", "after"} <= {c.get("title") for c in changes}

            auth = {"authorization": f"Bearer {ALICE}"}
            view = await http.get("/v1/docs/alice/journal/state",
                                  headers={**auth, "accept": "application/json"})
            assert view.status_code == 200, view.text
            titles = {e["title"] for e in view.json()["entries"].values()}
            assert titles == {"kept", "after"}

            async with YClient(daemon.ws_url("alice/journal", ALICE)) as reader:
                entries = Journal(reader.doc).entries()
                assert {e["title"] for e in entries} == {"kept", "after"}
                # The document goes on taking edits.
                Journal(reader.doc).create_entry("later still")
                async with YClient(daemon.ws_url("alice/journal", ALICE)) as other:
                    await other.wait_until(lambda: len(Journal(other.doc).entries()) == 3)

            metrics = (await http.get("/metrics")).text
            counted = re.search(r"^syncd_quarantined_updates_total (\S+)$", metrics, re.M)
            assert counted is not None and float(counted.group(1)) >= len(bad)
            assert (await http.get("/healthz")).status_code == 200
        assert bad <= quarantined(database_url)
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.terminate()
