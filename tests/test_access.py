"""Identity and access on both endpoints (WebSocket and HTTP), on SQLite and Postgres."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import httpx
import jwt
import pycrdt
import pytest

from storage import DocKey
from tests.support.servers import SECRET
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio


async def refused(url: str) -> YClient:
    c = YClient(url)
    await c.connect(wait_synced=False)
    await c.wait(c.closed)
    await c.close()
    return c


def forged_tokens() -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": "alice", "exp": now + 600}
    good = jwt.encode(claims, SECRET, algorithm="HS256")
    head, payload, sig = good.split(".")
    evil_payload = (
        base64.urlsafe_b64encode(
            json.dumps({"sub": "alice", "exp": now + 600, "role": "admin"}).encode()
        )
        .rstrip(b"=")
        .decode()
    )
    none_head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    return {
        "malformed": "abc.def",
        "wrong key": jwt.encode(claims, "another-secret-another-secret-0000", algorithm="HS256"),
        "alg none": f"{none_head}.{payload}.",
        "tampered": f"{head}.{evil_payload}.{sig}",
        "expired": jwt.encode({"sub": "alice", "exp": now - 10}, SECRET, algorithm="HS256"),
        "no exp": jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256"),
        "bad role": jwt.encode({**claims, "role": "root"}, SECRET, algorithm="HS256"),
    }


@pytest.mark.parametrize("kind", list(forged_tokens()))
async def test_bad_tokens_refused_4401_nothing_created(any_daemon, kind):
    token = forged_tokens()[kind]
    c = await refused(any_daemon.ws_url("alice/journal", token))
    assert c.close_code == 4401
    assert c.denied  # the reason is readable by a browser
    assert await any_daemon.daemon.store.meta(DocKey("default", "alice/journal")) is None
    async with httpx.AsyncClient(base_url=any_daemon.http) as http:
        r = await http.get("/v1/docs/alice/journal", headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"


async def test_tenants_are_separate_namespaces(any_daemon):
    url_t1 = any_daemon.ws_url("alice/journal", any_daemon.token("alice", tenant="t1"))
    url_t2 = any_daemon.ws_url("alice/journal", any_daemon.token("alice", tenant="t2"))
    async with YClient(url_t1) as one:
        one.doc.get("m", type=pycrdt.Map)["secret"] = "t1 only"
        async with YClient(url_t1) as again:
            await again.wait_until(lambda: again.doc.get("m", type=pycrdt.Map).get("secret"))
        async with YClient(url_t2) as two:
            assert two.doc.get("m", type=pycrdt.Map).to_py() == {}


async def test_private_document_invisible_to_others(any_daemon):
    bob = any_daemon.token("bob")
    headers = {"authorization": f"Bearer {bob}"}
    async with httpx.AsyncClient(base_url=any_daemon.http) as http:
        # Before alice ever connected: bob can neither create nor learn anything.
        c = await refused(any_daemon.ws_url("alice/journal", bob))
        assert c.close_code == 4403
        assert await any_daemon.daemon.store.meta(DocKey("default", "alice/journal")) is None
        never = await http.get("/v1/docs/alice/journal", headers=headers)
        assert never.status_code == 404
        async with YClient(any_daemon.ws_url("alice/journal", any_daemon.token("alice"))) as a:
            a.doc.get("m", type=pycrdt.Map)["diary"] = "private"
            c = await refused(any_daemon.ws_url("alice/journal", bob))
            assert c.close_code == 4403 and c.close_reason == "no access to this document"
            exists = await http.get("/v1/docs/alice/journal", headers=headers)
            assert (exists.status_code, exists.json()) == (never.status_code, never.json())
            for path in ("/v1/docs/alice/journal/state",):
                assert (await http.get(path, headers=headers)).status_code == 404
            d = pycrdt.Doc()
            d.get("m", type=pycrdt.Map)["bob"] = "was here"
            r = await http.post(
                "/v1/docs/alice/journal/updates", content=d.get_update(), headers=headers
            )
            assert r.status_code == 404
            assert a.doc.get("m", type=pycrdt.Map).to_py() == {"diary": "private"}


async def test_viewer_reads_live_but_cannot_write(any_daemon):
    alice, bob = any_daemon.token("alice"), any_daemon.token("bob")
    url_a, url_b = (
        any_daemon.ws_url("alice/canvas-1", alice),
        any_daemon.ws_url("alice/canvas-1", bob),
    )
    async with httpx.AsyncClient(base_url=any_daemon.http) as http, YClient(url_a) as a:
        r = await http.put(
            "/v1/docs/alice/canvas-1/access",
            json={"mode": "shared", "grants": {"bob": "viewer"}},
            headers={"authorization": f"Bearer {alice}"},
        )
        assert r.status_code == 200 and r.json()["grants"] == {"bob": "viewer"}
        async with YClient(url_b) as b:
            a.doc.get("m", type=pycrdt.Map)["alice"] = 1
            await b.wait_until(lambda: b.doc.get("m", type=pycrdt.Map).get("alice") == 1)
            b.doc.get("m", type=pycrdt.Map)["bob"] = 2  # dropped by the server
            b.set_awareness({"name": "bob"})
            await a.wait_until(lambda: b.doc.client_id in a.awareness)
            assert a.awareness[b.doc.client_id]["principal"] == "bob"
            a.doc.get("m", type=pycrdt.Map)["after"] = 3
            await b.wait_until(lambda: b.doc.get("m", type=pycrdt.Map).get("after") == 3)
            assert "bob" not in a.doc.get("m", type=pycrdt.Map).to_py()
            assert not b.closed.is_set()
        dropped = any_daemon.daemon.metrics.updates_dropped._value.get()
        assert dropped >= 1
        state = await http.get(
            "/v1/docs/alice/canvas-1/state", headers={"authorization": f"Bearer {alice}"}
        )
        stored = pycrdt.Doc()
        stored.apply_update(state.content)
        assert stored.get("m", type=pycrdt.Map).to_py() == {"alice": 1.0, "after": 3.0}


async def test_upgrade_then_revoke_live(any_daemon):
    alice, bob = any_daemon.token("alice"), any_daemon.token("bob")
    auth = {"authorization": f"Bearer {alice}"}
    doc = "alice/canvas-2"
    async with (
        httpx.AsyncClient(base_url=any_daemon.http) as http,
        YClient(any_daemon.ws_url(doc, alice)) as a,
    ):
        await http.put(
            f"/v1/docs/{doc}/access",
            json={"mode": "shared", "grants": {"bob": "viewer"}},
            headers=auth,
        )
        b = await YClient(any_daemon.ws_url(doc, bob)).connect()
        b.doc.get("m", type=pycrdt.Map)["as_viewer"] = True  # dropped now, re-sent after upgrade
        r = await http.put(
            f"/v1/docs/{doc}/access",
            json={"mode": "shared", "grants": {"bob": "editor"}},
            headers=auth,
        )
        assert r.status_code == 200
        b.doc.get("m", type=pycrdt.Map)["as_editor"] = True
        seen = a.doc.get("m", type=pycrdt.Map)
        await a.wait_until(lambda: seen.get("as_editor") is True and seen.get("as_viewer") is True)
        started = time.monotonic()
        r = await http.put(
            f"/v1/docs/{doc}/access", json={"mode": "private", "grants": {}}, headers=auth
        )
        assert r.status_code == 200
        await b.wait(b.closed, timeout=1.0)
        assert b.close_code == 4401 and time.monotonic() - started < 1.0
        again = await refused(any_daemon.ws_url(doc, bob))
        assert again.close_code == 4403
        await b.close()


async def test_downgrade_live_drops_later_edits(daemon):
    alice, bob = daemon.token("alice"), daemon.token("bob")
    auth = {"authorization": f"Bearer {alice}"}
    doc = "alice/canvas-3"
    async with (
        httpx.AsyncClient(base_url=daemon.http) as http,
        YClient(daemon.ws_url(doc, alice)) as a,
    ):
        await http.put(
            f"/v1/docs/{doc}/access",
            json={"mode": "shared", "grants": {"bob": "editor"}},
            headers=auth,
        )
        async with YClient(daemon.ws_url(doc, bob)) as b:
            b.doc.get("m", type=pycrdt.Map)["one"] = 1
            await a.wait_until(lambda: a.doc.get("m", type=pycrdt.Map).get("one") == 1)
            await http.put(
                f"/v1/docs/{doc}/access",
                json={"mode": "shared", "grants": {"bob": "viewer"}},
                headers=auth,
            )
            b.doc.get("m", type=pycrdt.Map)["two"] = 2
            a.doc.get("m", type=pycrdt.Map)["marker"] = 1
            await b.wait_until(lambda: b.doc.get("m", type=pycrdt.Map).get("marker") == 1)
            assert not b.closed.is_set()  # still connected, as a viewer
        assert "two" not in a.doc.get("m", type=pycrdt.Map).to_py()


async def test_service_reads_its_tenant_only(any_daemon):
    async with YClient(any_daemon.ws_url("alice/journal", any_daemon.token("alice"))) as a:
        a.doc.get("m", type=pycrdt.Map)["k"] = "v"
        svc = any_daemon.token("insights", role="service")
        async with YClient(any_daemon.ws_url("alice/journal", svc)) as s:
            await s.wait_until(lambda: s.doc.get("m", type=pycrdt.Map).to_py() == {"k": "v"})
        other = any_daemon.token("insights", role="service", tenant="other")
        async with YClient(any_daemon.ws_url("alice/journal", other)) as s2:
            assert s2.doc.get("m", type=pycrdt.Map).to_py() == {}
        async with httpx.AsyncClient(base_url=any_daemon.http) as http:
            r = await http.get("/v1/docs/alice/journal", headers={"authorization": f"Bearer {svc}"})
            assert r.status_code == 200 and r.json()["owner"] == "alice"
            # The other tenant's service sees its own, different (here: empty) alice/journal.
            r = await http.get(
                "/v1/docs/alice/journal/state", headers={"authorization": f"Bearer {other}"}
            )
            theirs = pycrdt.Doc()
            theirs.apply_update(r.content)
            assert theirs.get("m", type=pycrdt.Map).to_py() == {}


async def test_token_expiry_closes_live_connection(daemon):
    # Whole seconds (iat truncated): ttl=1 may leave too little to connect; 3 leaves 2 at least.
    token = daemon.token("alice", ttl=3)
    c = await YClient(daemon.ws_url("alice/short", token)).connect()
    await c.wait(c.closed, timeout=10)
    assert c.close_code == 4401 and c.close_reason == "token expired"
    await c.close()


async def test_awareness_cannot_impersonate(daemon):
    alice, bob = daemon.token("alice"), daemon.token("bob")
    doc = "alice/presence"
    async with httpx.AsyncClient(base_url=daemon.http) as http:
        await http.put(
            f"/v1/docs/{doc}/access",
            json={"mode": "shared", "grants": {"bob": "viewer"}},
            headers={"authorization": f"Bearer {alice}"},
        )
    async with YClient(daemon.ws_url(doc, alice)) as a, YClient(daemon.ws_url(doc, bob)) as b:
        b.set_awareness({"principal": "alice", "name": "Alice (not really)"})
        await a.wait_until(lambda: b.doc.client_id in a.awareness)
        assert a.awareness[b.doc.client_id]["principal"] == "bob"
        a.set_awareness({"name": "alice"})
        await b.wait_until(lambda: a.doc.client_id in b.awareness)
        # bob tries to overwrite alice's presence entry with a higher clock: dropped.
        from crdt.awareness import AwarenessEntry, encode_awareness_update
        from crdt.protocol import encode_awareness

        forged = AwarenessEntry(a.doc.client_id, 99, '{"name":"hijacked"}')
        await b.send_raw(encode_awareness(encode_awareness_update([forged])))
        b.set_awareness(
            {"name": "bob"}
        )  # a later genuine message, to know the forgery was processed
        await a.wait_until(lambda: a.awareness.get(b.doc.client_id, {}).get("name") == "bob")
        async with YClient(daemon.ws_url(doc, alice)) as c:
            await c.wait_until(lambda: a.doc.client_id in c.awareness)
            assert c.awareness[a.doc.client_id]["name"] == "alice"


async def test_http_api_errors_and_delete(any_daemon):
    alice, bob = any_daemon.token("alice"), any_daemon.token("bob")
    auth = {"authorization": f"Bearer {alice}"}
    async with httpx.AsyncClient(base_url=any_daemon.http) as http:
        assert (await http.get("/v1/docs/alice/x")).status_code == 401
        assert (await http.get("/v1/docs/alice/x", headers=auth)).status_code == 404
        bad = await http.put("/v1/docs/alice/x/access", json={"mode": "public"}, headers=auth)
        assert bad.status_code == 400 and "mode" in bad.json()["message"]
        bad = await http.put(
            "/v1/docs/alice/x/access",
            json={"mode": "shared", "grants": {"bob": "owner"}},
            headers=auth,
        )
        assert bad.status_code == 400
        ok = await http.put(
            "/v1/docs/alice/x/access",
            json={"mode": "shared", "grants": {"bob": "editor"}},
            headers=auth,
        )
        assert ok.status_code == 200
        assert set(ok.json()) == {
            "id",
            "owner",
            "mode",
            "grants",
            "seq",
            "size_bytes",
            "created_at",
            "updated_at",
            "epoch",
        }
        bob_auth = {"authorization": f"Bearer {bob}"}
        assert (
            await http.put("/v1/docs/alice/x/access", json={"mode": "private"}, headers=bob_auth)
        ).status_code == 403
        d = pycrdt.Doc()
        d.get("m", type=pycrdt.Map)["from"] = "bob"
        r = await http.post("/v1/docs/alice/x/updates", content=d.get_update(), headers=bob_auth)
        assert r.status_code == 200 and r.json() == {"seq": 1}
        r = await http.post("/v1/docs/alice/x/updates", content=b"\x07nope", headers=bob_auth)
        assert r.status_code == 400
        big = b"\x00" * (any_daemon.settings.max_message_bytes + 1)
        r = await http.post("/v1/docs/alice/x/updates", content=big, headers=bob_auth)
        assert r.status_code == 413
        assert (await http.delete("/v1/docs/alice/x", headers=bob_auth)).status_code == 403
        live = await YClient(any_daemon.ws_url("alice/x", alice)).connect()
        assert live.doc.get("m", type=pycrdt.Map).to_py() == {"from": "bob"}
        assert (await http.delete("/v1/docs/alice/x", headers=auth)).status_code == 204
        await live.wait(live.closed)
        assert live.close_code == 4404
        gone = await refused(any_daemon.ws_url("alice/x", alice))
        assert gone.close_code == 4404
        assert (await http.get("/v1/docs/alice/x", headers=auth)).status_code == 404
        await live.close()


async def test_json_state_view(daemon):
    from crdt.schemas import Journal

    alice = daemon.token("alice")
    async with YClient(daemon.ws_url("alice/journal", alice)) as a:
        j = Journal(a.doc)
        j.init("Mine")
        j.create_entry("Monday", "hello")
        async with httpx.AsyncClient(base_url=daemon.http) as http:
            want = j.to_json()
            async with asyncio.timeout(10):
                while True:
                    r = await http.get(
                        "/v1/docs/alice/journal/state",
                        headers={"authorization": f"Bearer {alice}", "accept": "application/json"},
                    )
                    if r.json() == want:
                        break
                    await asyncio.sleep(0.02)  # polling an HTTP view: there is no event to await
