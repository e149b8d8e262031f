"""Consent per participant on the feed (DESIGN.md §1.11, issue 12 acceptance 1), SQLite and
Postgres: a purpose-bound service sees consenting writers' changes attributed and only
``withheld`` for the others, with none of their planted strings anywhere in the bytes served."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import msgpack
import pycrdt
import pytest
import websockets

from crdt.schemas import Canvas

pytestmark = pytest.mark.anyio

DOC = "alice/board"
BOB_STRINGS = [b"BOB-PLANTED-CARD", b"BOB-PLANTED-TEXT", b"BOB-PLANTED-TITLE", b"bob"]
WITHHELD_KEYS = {"type", "cursor", "doc", "seq", "reason"}


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


class Participant:
    """A replica of the canvas that writes through ``POST …/updates`` (durable on answer) and
    takes in the others' updates, as a synced client would."""

    def __init__(self, name: str, token: str) -> None:
        self.name = name
        self.token = token
        self.canvas = Canvas(pycrdt.Doc(), author=name)
        self._sent = self.canvas.doc.get_state()
        self.peers: list[Participant] = []

    async def send(self, http: httpx.AsyncClient) -> int:
        update = self.canvas.doc.get_update(self._sent)
        self._sent = self.canvas.doc.get_state()
        r = await http.post(f"/v1/docs/{DOC}/updates", content=update, headers=auth(self.token))
        assert r.status_code == 200, r.text
        for peer in self.peers:
            peer.canvas.doc.apply_update(update)
            peer._sent = peer.canvas.doc.get_state()
        return r.json()["seq"]


async def write_board(http: httpx.AsyncClient, alice: Participant, bob: Participant) -> dict:
    """Alice makes the canvas and shares it with bob; both write, each touching the other's
    elements. Returns the element ids and the seqs each wrote."""
    r = await http.put(
        f"/v1/docs/{DOC}/access",
        json={"mode": "shared", "grants": {"bob": "editor"}},
        headers=auth(alice.token),
    )
    assert r.status_code == 200
    alice.peers, bob.peers = [bob], [alice]
    seqs: dict[str, list[int]] = {"alice": [], "bob": []}
    alice.canvas.init("Team board")
    card_a = alice.canvas.add_card("tarot", "alice-card-1", 10, 20)
    seqs["alice"].append(await alice.send(http))
    card_b = bob.canvas.add_card("tarot", "BOB-PLANTED-CARD", 30, 40)
    text_b = bob.canvas.add_text("BOB-PLANTED-TEXT is private", 5, 5)
    bob.canvas.move(card_a, 11, 21)  # bob moves alice's card
    seqs["bob"].append(await bob.send(http))
    bob.canvas.rename("BOB-PLANTED-TITLE")
    seqs["bob"].append(await bob.send(http))
    alice.canvas.move(card_b, 300, 400)  # alice moves bob's card: old_x would be bob's
    alice.canvas.edit_text(text_b, 0, delete=10)  # and deletes bob's text: "deleted" would leak
    card_a2 = alice.canvas.add_card("tarot", "alice-card-2", 50, 60)
    seqs["alice"].append(await alice.send(http))
    return {"card_a": card_a, "card_a2": card_a2, "card_b": card_b, "seqs": seqs}


async def read_all(http: httpx.AsyncClient, token: str, **params: Any) -> tuple[list, list]:
    """Every page of the feed from the start (small pages): (events, raw bodies)."""
    events: list[dict] = []
    raw: list[bytes] = []
    after: str | None = None
    while True:
        query = {"limit": 2, **params, **({"after": after} if after else {})}
        r = await http.get("/v1/feed", params=query, headers=auth(token))
        assert r.status_code == 200, r.text
        raw.append(r.content)
        page = msgpack.unpackb(r.content)
        if not page["events"]:
            return events, raw
        events.extend(page["events"])
        after = page["next"]


def assert_nothing_of_bob(raw: list[bytes]) -> None:
    blob = b"".join(raw)
    for planted in BOB_STRINGS:
        assert planted not in blob, planted


async def test_consent_api_who_may_change_what(any_daemon):
    d = any_daemon
    alice, bob, admin = d.token("alice"), d.token("bob"), d.token("root", role="admin")
    svc = d.token("svc", role="service")
    url = "/v1/principals/alice/consent"
    async with httpx.AsyncClient(base_url=d.http) as http:
        assert (await http.get(url, headers=auth(alice))).json() == {}  # never asked: none
        r = await http.put(url, json={"analytics": True}, headers=auth(alice))
        assert r.status_code == 200 and r.json() == {"analytics": True}
        r = await http.put(url, json={"research": False}, headers=auth(alice))
        assert r.json() == {"analytics": True, "research": False}  # the others kept
        for token in (bob, svc):
            for method in ("GET", "PUT"):
                r = await http.request(method, url, json={"analytics": False}, headers=auth(token))
                assert r.status_code == 403 and r.json()["error"] == "forbidden"
        assert (await http.get(url, headers=auth(alice))).json()["analytics"] is True
        r = await http.put(url, json={"analytics": False}, headers=auth(admin))
        assert r.status_code == 200 and r.json()["analytics"] is False
        for bad in (
            {"analytics": 1},
            {"analytics": "yes"},
            {"Analytics": True},
            {"a" * 33: True},
            {"": True},
            [True],
            "analytics",
        ):
            r = await http.put(url, json=bad, headers=auth(alice))
            assert r.status_code == 400 and r.json()["error"] == "bad_request", bad
        r = await http.put(url, content=b"{nope", headers=auth(alice))
        assert r.status_code == 400
        assert (await http.get(url)).status_code == 401
        r = await http.get("/v1/principals/not%20a%20name/consent", headers=auth(admin))
        assert r.status_code == 400
        assert (await http.get(url, headers=auth(alice))).json() == {
            "analytics": False,
            "research": False,
        }


async def test_analytics_sees_only_consenting_participants(any_daemon):
    """Acceptance 1 of issue 12."""
    d = any_daemon
    alice = Participant("alice", d.token("alice"))
    bob = Participant("bob", d.token("bob"))
    svc = d.token("insights", role="service", purpose="analytics")
    async with httpx.AsyncClient(base_url=d.http, timeout=30) as http:
        written = await write_board(http, alice, bob)
        r = await http.put(
            "/v1/principals/alice/consent", json={"analytics": True}, headers=auth(alice.token)
        )
        assert r.status_code == 200
        # bob may not consent on alice's behalf, nor for himself through her path.
        r = await http.put(
            "/v1/principals/alice/consent", json={"analytics": False}, headers=auth(bob.token)
        )
        assert r.status_code == 403

        events, raw = await read_all(http, svc, format="changes")
        assert_nothing_of_bob(raw)
        by_seq = {e["seq"]: e for e in events}
        assert sorted(by_seq) == sorted(written["seqs"]["alice"] + written["seqs"]["bob"])
        for seq in written["seqs"]["bob"]:
            assert by_seq[seq] == {
                "type": "withheld",
                "cursor": by_seq[seq]["cursor"],
                "doc": DOC,
                "seq": seq,
                "reason": "consent",
            }
        first, last = (by_seq[s] for s in written["seqs"]["alice"])
        assert first["type"] == last["type"] == "update"
        assert first["principal"] == last["principal"] == "alice"
        assert {c["type"] for c in first["changes"]} == {"canvas_created", "element_added"}
        # Alice's last update: her new card; her move of bob's card and her deletion in his
        # text touch content that is not in the projection, so they decode to nothing.
        assert [(c["type"], c["id"]) for c in last["changes"]] == [
            ("element_added", written["card_a2"])
        ]

        # format=updates: placeholders keep a replica going; it holds alice's content only.
        events, raw = await read_all(http, svc)
        assert_nothing_of_bob(raw)
        replica = pycrdt.Doc()
        for e in events:
            if e["type"] == "withheld":
                assert set(e) == WITHHELD_KEYS | {"placeholder"}
                replica.apply_update(e["placeholder"])
            else:
                replica.apply_update(e["update"])
        view = Canvas(replica).to_json()
        # Bob's rename overwrote alice's title: hers is gone, his withheld.
        assert view["meta"] == {"schema": "canvas/1", "template": "blank", "background": "#ffffff"}
        assert sorted(el["card_id"] for el in view["elements"].values()) == [
            "alice-card-1",
            "alice-card-2",  # the second arrived though it followed bob's edits
        ]

        # WebSocket push: the same gate.
        async with websockets.connect(
            f"ws://127.0.0.1:{d.port}/v1/feed?format=changes&limit=2&token={svc}"
        ) as ws:
            pushed: list[dict] = []
            frames: list[bytes] = []
            while len(pushed) < len(by_seq):
                frame = await asyncio.wait_for(ws.recv(), 20)
                frames.append(frame)
                pushed.extend(msgpack.unpackb(frame)["events"])
        assert_nothing_of_bob(frames)
        assert [e["type"] for e in pushed] == [by_seq[e["seq"]]["type"] for e in pushed]

        # Bob consents: a re-read from the start shows his changes, attributed.
        r = await http.put(
            "/v1/principals/bob/consent", json={"analytics": True}, headers=auth(bob.token)
        )
        assert r.status_code == 200
        events, raw = await read_all(http, svc, format="changes")
        assert b"BOB-PLANTED-CARD" in b"".join(raw)
        bobs = [e for e in events if e["seq"] in written["seqs"]["bob"]]
        assert [e["type"] for e in bobs] == ["update", "update"]
        assert {e["principal"] for e in bobs} == {"bob"}
        added = [c for c in bobs[0]["changes"] if c["type"] == "element_added"]
        assert {c.get("card_id") for c in added} >= {"BOB-PLANTED-CARD"}
        assert any(c["type"] == "canvas_meta_changed" for c in bobs[1]["changes"])


async def test_revoking_applies_from_the_next_page(any_daemon):
    d = any_daemon
    alice = Participant("alice", d.token("alice"))
    bob = Participant("bob", d.token("bob"))
    svc = d.token("insights", role="service", purpose="analytics")
    async with httpx.AsyncClient(base_url=d.http, timeout=30) as http:
        written = await write_board(http, alice, bob)
        for who in (alice, bob):
            r = await http.put(
                f"/v1/principals/{who.name}/consent",
                json={"analytics": True},
                headers=auth(who.token),
            )
            assert r.status_code == 200
        params = {"format": "changes", "limit": 2, "accept": "application/json"}
        r = await http.get("/v1/feed", params=params, headers=auth(svc))
        page = msgpack.unpackb(r.content)
        assert [e["type"] for e in page["events"]] == ["update", "update"]
        r = await http.put(
            "/v1/principals/bob/consent", json={"analytics": False}, headers=auth(bob.token)
        )
        # The next page, no restart: bob's later update is withheld, alice's still decoded
        # (from a projection rebuilt without bob: the cached one held his content).
        r = await http.get("/v1/feed", params={**params, "after": page["next"]}, headers=auth(svc))
        assert b"BOB-PLANTED-TITLE" not in r.content
        rest = msgpack.unpackb(r.content)["events"]
        assert [(e["seq"], e["type"]) for e in rest] == [
            (written["seqs"]["bob"][1], "withheld"),
            (written["seqs"]["alice"][1], "update"),
        ]
        assert [c["type"] for c in rest[1]["changes"]] == ["element_added"]


async def test_services_without_purpose_and_admins_see_everything(any_daemon):
    d = any_daemon
    alice = Participant("alice", d.token("alice"))
    bob = Participant("bob", d.token("bob"))
    async with httpx.AsyncClient(base_url=d.http, timeout=30) as http:
        await write_board(http, alice, bob)
        for token in (
            d.token("ops", role="service"),
            d.token("root", role="admin"),
            d.token("root", role="admin", purpose="analytics"),
        ):
            events, raw = await read_all(http, token, format="changes")
            assert {e["type"] for e in events} == {"update"}
            assert {e["principal"] for e in events} == {"alice", "bob"}
            assert b"BOB-PLANTED-CARD" in b"".join(raw)


async def test_a_services_own_writes_count_as_consenting(any_daemon):
    d = any_daemon
    svc = d.token("insights", role="service", purpose="analytics")
    doc = pycrdt.Doc()
    doc.get("m", type=pycrdt.Map)["summary"] = "written by the service"
    async with httpx.AsyncClient(base_url=d.http) as http:
        r = await http.post(
            "/v1/docs/alice/notes/updates", content=doc.get_update(), headers=auth(svc)
        )
        assert r.status_code == 200
        events, _ = await read_all(http, svc)
    assert [(e["type"], e["principal"]) for e in events] == [("update", "insights")]


async def test_state_is_refused_to_a_purpose_bound_service_until_everyone_consents(any_daemon):
    d = any_daemon
    alice = Participant("alice", d.token("alice"))
    bob = Participant("bob", d.token("bob"))
    svc = auth(d.token("insights", role="service", purpose="analytics"))
    async with httpx.AsyncClient(base_url=d.http, timeout=30) as http:
        await write_board(http, alice, bob)
        await http.put(
            "/v1/principals/alice/consent", json={"analytics": True}, headers=auth(alice.token)
        )
        for accept in ("application/octet-stream", "application/json"):
            r = await http.get(f"/v1/docs/{DOC}/state", headers={**svc, "accept": accept})
            assert r.status_code == 403 and r.json()["error"] == "consent"
            assert b"BOB-PLANTED" not in r.content
        plain = auth(d.token("ops", role="service"))
        assert (await http.get(f"/v1/docs/{DOC}/state", headers=plain)).status_code == 200
        await http.put(
            "/v1/principals/bob/consent", json={"analytics": True}, headers=auth(bob.token)
        )
        r = await http.get(f"/v1/docs/{DOC}/state", headers={**svc, "accept": "application/json"})
        assert r.status_code == 200
        cards = {el.get("card_id") for el in r.json()["elements"].values()}
        assert "BOB-PLANTED-CARD" in cards


async def test_a_purpose_bound_reset_carries_only_a_placeholder(settings, database_url):
    from dataclasses import replace

    from tests.support.servers import start_daemon

    d = await start_daemon(
        replace(
            settings, database_url=database_url, compact_after_updates=2, log_retention_seconds=0
        )
    )
    try:
        alice = Participant("alice", d.token("alice"))
        bob = Participant("bob", d.token("bob"))
        svc = d.token("insights", role="service", purpose="analytics")
        async with httpx.AsyncClient(base_url=d.http, timeout=30) as http:
            await write_board(http, alice, bob)
            await http.put(
                "/v1/principals/alice/consent", json={"analytics": True}, headers=auth(alice.token)
            )
            from storage import DocKey

            await d.daemon.store.compact(DocKey("default", DOC))
            for fmt in ("updates", "changes"):
                r = await http.get(
                    "/v1/feed",
                    params={"format": fmt},
                    headers={**auth(svc), "accept": "application/json"},
                )
                events = r.json()["events"]
                resets = [e for e in events if e["type"] == "reset"]
                assert resets and all(e["reason"] == "consent" for e in resets)
                blob = json.dumps(events).encode() + b"".join(
                    base64.b64decode(e["state"]) for e in resets
                )
                assert_nothing_of_bob([blob])
                assert b"alice-card-1" not in blob  # a snapshot's writers are unknown
    finally:
        await d.stop()


@pytest.mark.postgres
async def test_consent_and_audit_as_an_ordinary_role_under_row_security(postgres_url, settings):
    """The daemon as a role that row-level security binds (storage/row_security.py): every
    consent, projection and audit query names its tenant, the prune names all of them."""
    import uuid
    from dataclasses import replace

    import psycopg
    from sqlalchemy.engine import make_url

    from storage import SqlStore
    from tests.support.servers import start_daemon

    def libpq(url: str) -> str:
        return make_url(url).render_as_string(hide_password=False).replace("+psycopg", "")

    role = f"syncd_consent_{uuid.uuid4().hex[:10]}"
    app_url = make_url(postgres_url).set(username=role).render_as_string(hide_password=False)
    owner = SqlStore(postgres_url)
    await owner.open()  # the owner makes the tables and their policies
    await owner.close()
    with psycopg.connect(libpq(postgres_url), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
        schema = conn.execute("SELECT current_schema()").fetchone()[0]  # type: ignore[index]
        conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"
        )
        conn.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
    # A retention of 30 s: the sweep passes every 3 s, and keeps what this test recorded.
    d = await start_daemon(replace(settings, database_url=app_url, audit_retention_seconds=30))
    try:
        alice = Participant("alice", d.token("alice"))
        bob = Participant("bob", d.token("bob"))
        svc = d.token("insights", role="service", purpose="analytics")
        admin = auth(d.token("root", role="admin"))
        async with httpx.AsyncClient(base_url=d.http, timeout=30) as http:
            written = await write_board(http, alice, bob)
            r = await http.put(
                "/v1/principals/alice/consent", json={"analytics": True}, headers=auth(alice.token)
            )
            assert r.json() == {"analytics": True}
            events, raw = await read_all(http, svc, format="changes")
            assert_nothing_of_bob(raw)
            assert [e["type"] for e in events if e["seq"] in written["seqs"]["alice"]] == [
                "update",
                "update",
            ]
            r = await http.get(f"/v1/docs/{DOC}/state", headers=auth(svc))
            assert r.status_code == 403 and r.json()["error"] == "consent"
            records = (await http.get("/v1/audit", headers=admin)).json()["records"]
            assert records and {r["service"] for r in records} == {"insights"}
        await d.daemon.audit_sweep.wait_passes(1)  # a prune across tenants, as this role
        assert await d.daemon.audit.list("default")  # within retention: kept
    finally:
        await d.stop()
        with psycopg.connect(libpq(postgres_url), autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


async def test_a_long_poll_wakes_with_a_withheld_event(any_daemon):
    d = any_daemon
    svc = auth(d.token("insights", role="service", purpose="analytics"))
    async with httpx.AsyncClient(base_url=d.http, timeout=30) as http:
        first = msgpack.unpackb((await http.get("/v1/feed", headers=svc)).content)
        poll = asyncio.create_task(
            http.get(
                "/v1/feed",
                params={"after": first["next"], "wait": 20, "format": "changes"},
                headers={**svc, "accept": "application/json"},
            )
        )
        doc = pycrdt.Doc()
        doc.get("m", type=pycrdt.Map)["note"] = "BOB-PLANTED-NOTE"
        r = await http.post(
            "/v1/docs/bob/notes/updates", content=doc.get_update(), headers=auth(d.token("bob"))
        )
        assert r.status_code == 200
        page = await asyncio.wait_for(poll, 20)
    assert b"BOB-PLANTED" not in page.content and b"bob" not in page.content.replace(
        b"bob/notes", b""
    )
    [event] = page.json()["events"]
    assert set(event) == WITHHELD_KEYS and event["doc"] == "bob/notes"
