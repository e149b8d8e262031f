"""The change feed over HTTP and WebSocket, fed by real clients (SQLite and Postgres)."""

from __future__ import annotations

import asyncio
import base64
import random
from dataclasses import replace

import httpx
import msgpack
import pycrdt
import pytest
import websockets

from tests.support.servers import start_daemon
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_feed_requires_a_service_token(daemon):
    async with httpx.AsyncClient(base_url=daemon.http) as http:
        assert (await http.get("/v1/feed")).status_code == 401
        user = await http.get("/v1/feed", headers=auth(daemon.token("alice")))
        assert user.status_code == 403 and user.json()["error"] == "forbidden"
        svc = auth(daemon.token("svc", role="service"))
        bad = await http.get("/v1/feed", params={"after": "nope"}, headers=svc)
        assert bad.status_code == 400 and "cursor" in bad.json()["message"]
        assert (await http.get("/v1/feed", params={"limit": 0}, headers=svc)).status_code == 400
        ok = await http.get("/v1/feed", headers=svc)
        assert ok.headers["content-type"] == "application/msgpack"
        assert msgpack.unpackb(ok.content) == {"events": [], "next": "c0"}


async def test_every_update_exactly_once_in_order_while_writers_race(settings, database_url):
    running = await start_daemon(replace(settings, database_url=database_url))
    try:
        owner = running.token("owner")
        docs = [f"owner/doc-{i}" for i in range(20)]
        writers = [f"w{i}" for i in range(8)]
        async with httpx.AsyncClient(base_url=running.http, timeout=30) as http:
            for d in docs:
                r = await http.put(
                    f"/v1/docs/{d}/access",
                    json={"mode": "shared", "grants": {w: "editor" for w in writers}},
                    headers=auth(owner),
                )
                assert r.status_code == 200
            async def write(i: int, w: str) -> None:
                token = running.token(w)
                mine = [docs[(i * 3 + k) % len(docs)] for k in range(5)]
                clients = []
                for d in mine:
                    clients.append(await YClient(running.ws_url(d, token)).connect())
                for n in range(12):
                    c = clients[n % len(clients)]
                    c.doc.get("m", type=pycrdt.Map)[f"{w}-{n}"] = n
                    await asyncio.sleep(0)
                for (
                    c
                ) in clients:  # each client's edits are committed once an echo-free peer sees them
                    await c.close()

            svc = auth(running.token("analytics", role="service"))
            rnd = random.Random(3)
            seen: list[dict] = []
            persisted_cursor: str | None = None  # what a subscriber would keep on disk

            async def subscribe(stop: asyncio.Event) -> None:
                nonlocal persisted_cursor
                while True:
                    finishing = stop.is_set()
                    params = {"limit": rnd.randint(1, 15), "wait": 0.2}
                    if persisted_cursor:
                        params["after"] = persisted_cursor
                    r = await http.get("/v1/feed", params=params, headers=svc)
                    page = msgpack.unpackb(r.content)
                    batch = page["events"]
                    if rnd.random() < 0.3 and batch:
                        # Stop mid-page (crash before persisting): resume from the old cursor.
                        continue
                    seen.extend(batch)
                    persisted_cursor = page["next"]
                    if finishing and not batch:
                        return

            stop = asyncio.Event()
            sub = asyncio.create_task(subscribe(stop))
            await asyncio.gather(*(write(i, w) for i, w in enumerate(writers)))
            # All writes are committed once every writer closed and its room flushed.
            for room in running.daemon.rooms.loaded():
                await room.drain()
            stop.set()
            await asyncio.wait_for(sub, 60)

        per_doc: dict[str, list[int]] = {}
        replicas: dict[str, pycrdt.Doc] = {}
        for e in seen:
            assert e["type"] == "update"
            per_doc.setdefault(e["doc"], []).append(e["seq"])
            # Replay each document's events in order; the keys an update adds name its author.
            m = replicas.setdefault(e["doc"], pycrdt.Doc()).get("m", type=pycrdt.Map)
            before = set(m.keys())
            replicas[e["doc"]].apply_update(e["update"])
            authors = {k.split("-")[0] for k in set(m.keys()) - before}
            assert authors == {e["principal"]}, (authors, e["principal"])
        total = 0
        for d, seqs in per_doc.items():
            assert seqs == list(range(1, len(seqs) + 1)), d  # each once, in seq order
            total += len(seqs)
        stored = 0
        for d in docs:
            stored += (await running.daemon.store.meta(_key(d))).seq
        assert total == stored
        assert [e["cursor"] for e in seen] == sorted(
            (e["cursor"] for e in seen), key=lambda c: int(c[1:], 16)
        )
    finally:
        await running.stop()


def _key(name: str):  # type: ignore[no-untyped-def]
    from storage import DocKey

    return DocKey("default", name)


async def test_subscriber_behind_compaction_gets_a_reset(settings, database_url):
    running = await start_daemon(
        replace(
            settings,
            database_url=database_url,
            compact_after_updates=10,
            log_retention_seconds=0,
        )
    )
    try:
        url = running.ws_url("alice/long", running.token("alice"))
        async with YClient(url) as a, YClient(url) as b:
            t = a.doc.get("t", type=pycrdt.Text)
            for i in range(60):
                t += f"{i},"
                await asyncio.sleep(0)
            await b.wait_until(lambda: str(b.doc.get("t", type=pycrdt.Text)).endswith("59,"))
            final = str(t)
        await running.daemon.store.compact(_key("alice/long"))
        async with httpx.AsyncClient(base_url=running.http) as http:
            r = await http.get(
                "/v1/feed",
                headers={
                    **auth(running.token("svc", role="service")),
                    "accept": "application/json",
                },
            )
        events = r.json()["events"]
        assert events[0]["type"] == "reset" and events[0]["doc"] == "alice/long"
        doc = pycrdt.Doc()
        doc.apply_update(base64.b64decode(events[0]["state"]))
        for e in events[1:]:
            doc.apply_update(base64.b64decode(e["update"]))
        assert str(doc.get("t", type=pycrdt.Text)) == final
        assert len(events) == 1  # everything was folded into the reset's state
    finally:
        await running.stop()


async def test_long_poll_wakes_on_commit_and_websocket_pushes(daemon):
    svc = daemon.token("svc", role="service")
    url = daemon.ws_url("alice/live", daemon.token("alice"))
    async with httpx.AsyncClient(base_url=daemon.http, timeout=30) as http:
        first = msgpack.unpackb((await http.get("/v1/feed", headers=auth(svc))).content)
        poll = asyncio.create_task(
            http.get(
                "/v1/feed",
                params={"after": first["next"], "wait": 20},
                headers={**auth(svc), "accept": "application/json"},
            )
        )
        push = await websockets.connect(
            f"ws://127.0.0.1:{daemon.port}/v1/feed?after={first['next']}&token={svc}"
        )
        try:
            async with YClient(url) as a:
                a.doc.get("m", type=pycrdt.Map)["hello"] = "feed"
                page = (await asyncio.wait_for(poll, 20)).json()
                assert [e["doc"] for e in page["events"]] == ["alice/live"]
                assert page["events"][0]["principal"] == "alice"
                pushed = msgpack.unpackb(await asyncio.wait_for(push.recv(), 20))
                assert pushed["events"][0]["cursor"] == page["events"][0]["cursor"]
                assert isinstance(pushed["events"][0]["update"], bytes)
        finally:
            await push.close()


async def test_feed_socket_refuses_users(daemon):
    ws = await websockets.connect(
        f"ws://127.0.0.1:{daemon.port}/v1/feed?token={daemon.token('alice')}"
    )
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await ws.recv()
    assert ws.close_code == 4403


async def test_feed_with_decoded_changes(any_daemon):
    from crdt.schemas import Canvas

    alice = any_daemon.token("alice")
    svc = {**auth(any_daemon.token("analytics", role="service")), "accept": "application/json"}
    async with YClient(any_daemon.ws_url("alice/canvas", alice)) as a:
        canvas = Canvas(a.doc, author="alice")
        canvas.init("Session 1")
        card = canvas.add_card("values", "courage", 10, 20, color="#f00")
        canvas.move(card, 30, 40)
        stroke = canvas.add_stroke(0, 0, [0, 0, 0.5, 1, 1, 0.5], color="#00f", width=3)
        canvas.delete(stroke)
        async with httpx.AsyncClient(base_url=any_daemon.http) as http:
            changes: list[dict] = []
            cursor = None
            async with asyncio.timeout(20):
                while not any(c["type"] == "element_deleted" for c in changes):
                    params = {"format": "changes", "wait": 5, "limit": 2}
                    if cursor:
                        params["after"] = cursor
                    page = (await http.get("/v1/feed", params=params, headers=svc)).json()
                    cursor = page["next"]
                    for e in page["events"]:
                        changes.extend(e["changes"])
    kinds = [c["type"] for c in changes]
    assert kinds == [
        "canvas_created",
        "element_added",
        "element_moved",
        "element_added",
        "stroke_drawn",
        "element_deleted",
    ]
    moved = changes[2]
    assert (moved["id"], moved["x"], moved["y"], moved["principal"]) == (card, 30.0, 40.0, "alice")
    assert changes[4]["points"] == [0.0, 0.0, 0.5, 1.0, 1.0, 0.5] and changes[4]["width"] == 3.0


async def test_cursor_and_prefix_are_strict_on_every_database(any_daemon):
    svc = auth(any_daemon.token("svc", role="service"))
    json_svc = {**svc, "accept": "application/json"}
    one = pycrdt.Doc()
    updates: list[bytes] = []
    one.observe(lambda e: updates.append(e.update))
    one.get("m", type=pycrdt.Map)["k"] = 1
    async with httpx.AsyncClient(base_url=any_daemon.http) as http:
        for doc in ("Alice/x", "alice/y"):
            posted = await http.post(f"/v1/docs/{doc}/updates", content=updates[0], headers=svc)
            assert posted.status_code == 200, posted.text

        async def feed(**params: str) -> httpx.Response:
            return await http.get("/v1/feed", params=params, headers=json_svc)

        # Beyond a signed 64-bit position: 400, not 500 (SQLite) or 503 (Postgres).
        for cursor in ("c8000000000000000", "cffffffffffffffff", "c10000000000000000"):
            r = await feed(after=cursor)
            assert r.status_code == 400 and "cursor" in r.json()["message"], (cursor, r.text)
        # Whatever int(…, 16) would have taken besides our own cursors.
        for cursor in ("c-1", "c+1", "c0x1", "c1_0", "c 1", "c", "cA", "x1", "c1\n"):
            assert (await feed(after=cursor)).status_code == 400, cursor
        last = await feed(after="c7fffffffffffffff")  # the largest position there can be
        assert last.status_code == 200
        assert last.json() == {"events": [], "next": "c7fffffffffffffff"}

        # The prefix is literal and case-sensitive (SQLite's LIKE is not).
        assert [e["doc"] for e in (await feed(prefix="alice/")).json()["events"]] == ["alice/y"]
        assert [e["doc"] for e in (await feed(prefix="Alice/")).json()["events"]] == ["Alice/x"]
        # It must be the beginning of an OWNER/NAME id, of bounded length.
        too_long = ("a" * 65, "alice/" + "n" * 129)
        for prefix in ("%", "alice//", "alice/x/", "ali~ce/", "a lice", *too_long):
            r = await feed(prefix=prefix)
            assert r.status_code == 400 and "prefix" in r.json()["message"], prefix
        assert (await feed(prefix="al")).status_code == 200

    # The WebSocket feed refuses them the same way: 4400.
    token = any_daemon.token("svc", role="service")
    for query in ("after=cffffffffffffffff", "prefix=%25"):
        ws = await websockets.connect(
            f"ws://127.0.0.1:{any_daemon.port}/v1/feed?{query}&token={token}"
        )
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await ws.recv()
        assert ws.close_code == 4400, query
