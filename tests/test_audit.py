"""The audit trail (DESIGN.md §1.11, issue 12 acceptance 2), SQLite and Postgres: every feed
page and HTTP read served to a service or admin is recorded; admins list the records, nobody
else; old records are pruned."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import msgpack
import pycrdt
import pytest
import websockets

from storage.audit import SqlAudit
from tests.support.servers import start_daemon

pytestmark = pytest.mark.anyio


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def write(http: httpx.AsyncClient, token: str, doc: str, key: str) -> None:
    ydoc = pycrdt.Doc()
    ydoc.get("m", type=pycrdt.Map)[key] = "value"
    r = await http.post(f"/v1/docs/{doc}/updates", content=ydoc.get_update(), headers=auth(token))
    assert r.status_code == 200, r.text


async def audit_records(http: httpx.AsyncClient, admin: str, **params: str) -> list[dict]:
    records: list[dict] = []
    after = None
    while True:
        query = {"limit": 2, **params, **({"after": after} if after else {})}
        r = await http.get("/v1/audit", params=query, headers=auth(admin))
        assert r.status_code == 200, r.text
        body = r.json()
        if not body["records"]:
            assert body["next"] == (after or "a0")  # always present, to follow the trail
            return records
        records.extend(body["records"])
        after = body["next"]


async def test_every_page_served_to_a_service_is_recorded(any_daemon):
    d = any_daemon
    alice, bob = d.token("alice"), d.token("bob")
    admin = d.token("root", role="admin")
    insights = d.token("insights", role="service", purpose="analytics")
    ops = d.token("ops", role="service")
    async with httpx.AsyncClient(base_url=d.http, timeout=30) as http:
        await write(http, alice, "alice/journal", "a1")
        await write(http, bob, "bob/journal", "b1")
        await write(http, alice, "alice/journal", "a2")
        await http.put(
            "/v1/principals/alice/consent", json={"analytics": True}, headers=auth(alice)
        )
        served: list[tuple[str, list[str], list[str]]] = []  # what each page showed
        for token, name, fmt in ((insights, "insights", "changes"), (ops, "ops", "updates")):
            after = None
            while True:
                params = {"limit": 2, "format": fmt, **({"after": after} if after else {})}
                page = msgpack.unpackb(
                    (await http.get("/v1/feed", params=params, headers=auth(token))).content
                )
                if not page["events"]:
                    break  # an empty page serves nothing: not recorded
                docs = sorted({e["doc"] for e in page["events"]})
                seen = sorted({e["principal"] for e in page["events"] if "principal" in e})
                served.append((name, docs, seen))
                after = page["next"]
        # The WebSocket feed records its pages too.
        async with websockets.connect(
            f"ws://127.0.0.1:{d.port}/v1/feed?limit=3&token={insights}"
        ) as ws:
            page = msgpack.unpackb(await asyncio.wait_for(ws.recv(), 20))
        served.append(("insights", sorted({e["doc"] for e in page["events"]}), ["alice"]))
        assert {e["type"] for e in page["events"]} == {"update", "withheld"}

        records = await audit_records(http, admin)
        assert [(r["service"], r["documents"], r["principals"]) for r in records] == served
        assert {r["kind"] for r in records} == {"feed"}
        assert {r["purpose"] for r in records if r["service"] == "insights"} == {"analytics"}
        assert {r["purpose"] for r in records if r["service"] == "ops"} == {None}
        # bob's withheld update: his document was touched, his data not seen.
        assert all("bob" not in r["principals"] for r in records if r["service"] == "insights")

        only_ops = await audit_records(http, admin, service="ops")
        assert [r["id"] for r in only_ops] == [r["id"] for r in records if r["service"] == "ops"]
        assert await audit_records(http, admin, since="2999-01-01T00:00:00Z") == []
        assert len(await audit_records(http, admin, since=records[0]["at"])) == len(records)

        # HTTP reads by services: metadata and state.
        count = len(records)
        r = await http.get("/v1/docs/alice/journal/state", headers=auth(ops))
        assert r.status_code == 200
        r = await http.get("/v1/docs/alice/journal", headers=auth(ops))
        assert r.status_code == 200
        r = await http.get("/v1/docs/alice/journal/state", headers=auth(alice))  # a user: no
        assert r.status_code == 200
        later = (await audit_records(http, admin))[count:]
        assert [(r["service"], r["kind"], r["documents"], r["principals"]) for r in later] == [
            ("ops", "http", ["alice/journal"], ["alice"]),
            ("ops", "http", ["alice/journal"], ["alice"]),
        ]
        refused = await http.get("/v1/docs/bob/journal/state", headers=auth(insights))
        assert refused.status_code == 403 and refused.json()["error"] == "consent"
        assert len(await audit_records(http, admin)) == count + 2  # nothing served, nothing kept


async def test_only_admins_read_the_audit(any_daemon):
    d = any_daemon
    async with httpx.AsyncClient(base_url=d.http) as http:
        assert (await http.get("/v1/audit")).status_code == 401
        for token in (d.token("alice"), d.token("ops", role="service")):
            r = await http.get("/v1/audit", headers=auth(token))
            assert r.status_code == 403 and r.json()["error"] == "forbidden"
        admin = auth(d.token("root", role="admin"))
        for bad in (
            {"since": "yesterday"},
            {"limit": "0"},
            {"limit": "x"},
            {"after": "c1"},
            {"service": "no spaces"},
        ):
            r = await http.get("/v1/audit", params=bad, headers=admin)
            assert r.status_code == 400 and r.json()["error"] == "bad_request", bad
        # Another tenant's admin sees nothing of this tenant's trail.
        ops = d.token("ops", role="service")
        await write(http, d.token("alice"), "alice/x", "k")
        await http.get("/v1/feed", headers=auth(ops))
        mine = (await http.get("/v1/audit", headers=admin)).json()["records"]
        assert len(mine) == 1
        other = auth(d.token("root", role="admin", tenant="other"))
        assert (await http.get("/v1/audit", headers=other)).json()["records"] == []


async def test_records_past_retention_are_pruned(store):
    audit = SqlAudit(store)
    await audit.record("default", "ops", None, "feed", ["alice/x"], ["alice"])
    assert await audit.prune(3600) == 0
    assert len(await audit.list("default")) == 1
    assert await audit.prune(0) == 1
    assert await audit.list("default") == []


async def test_the_daemon_prunes_on_its_own(settings):
    running = await start_daemon(replace(settings, audit_retention_seconds=0.0))
    try:
        daemon = running.daemon
        await daemon.audit.record("default", "ops", None, "feed", ["alice/x"], ["alice"])
        await daemon.audit_sweep.wait_passes(1)
        assert await daemon.audit.list("default") == []
    finally:
        await running.stop()
