"""Web Push end to end (DESIGN.md §1.12, issue 13 acceptance 1 and 2): a push service stand-in
on 127.0.0.1 receives what the daemon sends; the browser keys made here decrypt it."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
import requests

from storage import DocKey, SqlStore
from storage.push_subscriptions import SqlPushSubscriptions
from syncd.push_throttle import PushThrottle
from syncd.push_transport import push_session, reached_private_address
from syncd.settings import Settings
from syncd.vapid import load_vapid_key
from tests.support.cluster import running_cluster
from tests.support.push_service import BrowserKeys, PushServiceStandIn, verify_vapid
from tests.support.redis_server import redis_server_fixture, redis_url_fixture  # noqa: F401
from tests.support.servers import RunningDaemon, start_daemon
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio

TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


@pytest.fixture
async def push_service() -> AsyncIterator[PushServiceStandIn]:
    service = await PushServiceStandIn().start()
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
async def pushing_daemon(
    settings: Settings, database_url: str, push_service: PushServiceStandIn
) -> AsyncIterator[RunningDaemon]:
    """A daemon (SQLite, then Postgres) whose allow-list admits the stand-in's /push/ only."""
    running = await start_daemon(
        replace(
            settings,
            database_url=database_url,
            push_allow_endpoints=f"{push_service.origin}/push/",
        )
    )
    try:
        yield running
    finally:
        await running.stop()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def subscribe(
    http: httpx.AsyncClient, d: RunningDaemon, who: str, endpoint: str
) -> BrowserKeys:
    keys = BrowserKeys()
    r = await http.post(
        f"{d.http}/v1/push/subscriptions",
        json=keys.subscription(endpoint),
        headers=auth(d.token(who)),
    )
    assert r.status_code == 201, r.text
    return keys


async def share(http: httpx.AsyncClient, d: RunningDaemon, doc: str, grants: dict) -> None:
    owner = doc.split("/")[0]
    r = await http.put(
        f"{d.http}/v1/docs/{doc}/access",
        json={"mode": "shared", "grants": grants},
        headers=auth(d.token(owner)),
    )
    assert r.status_code == 200, r.text


async def notify(http: httpx.AsyncClient, d: RunningDaemon, **body: object) -> dict:
    r = await http.post(
        f"{d.http}/v1/push/notify", json=body, headers=auth(d.token("session", role="service"))
    )
    assert r.status_code == 202, r.text
    return r.json()


async def test_sharing_pushes_to_the_new_grantee(
    pushing_daemon: RunningDaemon, push_service: PushServiceStandIn
) -> None:
    d = pushing_daemon
    async with httpx.AsyncClient() as http:
        key = (await http.get(f"{d.http}/v1/push/key")).json()["public_key"]
        bob = await subscribe(http, d, "bob", push_service.endpoint("bob-phone"))
        await share(http, d, "alice/canvas-trip", {"bob": "editor"})
        got = await push_service.next()
        assert got.path == "/push/bob-phone"
        payload = bob.decrypt(got.body)
        assert payload["type"] == "shared"
        assert (payload["doc"], payload["by"], payload["role"]) == (
            "alice/canvas-trip",
            "alice",
            "editor",
        )
        assert payload["url"] == "/#/canvas/alice/canvas-trip"
        assert int(got.headers["ttl"]) >= 86400
        assert TOPIC.match(got.headers["topic"])
        assert got.headers["urgency"] == "normal"
        assert got.headers["content-encoding"] == "aes128gcm"
        claims = verify_vapid(got.headers["authorization"], key, push_service.origin)
        assert claims["exp"] > time.time() and claims["sub"].startswith("mailto:")

        # The same grants again, and a grant to someone else: bob is not newly granted.
        await share(http, d, "alice/canvas-trip", {"bob": "editor", "carol": "viewer"})
        await d.daemon.push.idle()
        assert len(push_service.received) == 1


async def test_notify_skips_a_principal_present_in_the_document(
    pushing_daemon: RunningDaemon, push_service: PushServiceStandIn
) -> None:
    d = pushing_daemon
    doc = "alice/session-1"
    async with httpx.AsyncClient() as http:
        await share(http, d, doc, {"bob": "editor"})  # bob has no subscription yet: nothing
        await d.daemon.push.idle()
        bob_keys = await subscribe(http, d, "bob", push_service.endpoint("bob"))
        prompt = {"principals": ["bob"], "title": "Reflect", "body": "What surprised you?"}
        prompt |= {"url": f"/#/journal/{doc}", "doc": doc}
        async with YClient(d.ws_url(doc, d.token("alice"))) as alice:
            bob = await YClient(d.ws_url(doc, d.token("bob"))).connect()
            bob.set_awareness({"user": {"name": "Bob"}})
            await alice.wait_until(lambda: bob.doc.client_id in alice.awareness)
            assert alice.awareness[bob.doc.client_id]["principal"] == "bob"

            counts = await notify(http, d, **prompt)
            assert counts == {
                "queued": 0,
                "present": 1,
                "throttled": 0,
                "unsubscribed": 0,
                "dropped": 0,
            }
            await d.daemon.push.idle()
            assert push_service.received == []

            await bob.close()
            await alice.wait_until(lambda: bob.doc.client_id not in alice.awareness)
            counts = await notify(http, d, **prompt)
            assert counts["queued"] == 1 and counts["present"] == 0
            got = await push_service.next()
            payload = bob_keys.decrypt(got.body)
            expected = {k: v for k, v in prompt.items() if k != "principals"}
            assert payload == {"type": "prompt", **expected}
            assert got.headers["urgency"] == "high"
            assert int(got.headers["ttl"]) >= 86400
            assert TOPIC.match(got.headers["topic"])

            # At most one push per document per principal per minute.
            counts = await notify(http, d, **prompt)
            assert counts["throttled"] == 1 and counts["queued"] == 0


async def test_a_gone_subscription_is_deleted_and_never_called_again(
    pushing_daemon: RunningDaemon, push_service: PushServiceStandIn
) -> None:
    d = pushing_daemon
    async with httpx.AsyncClient() as http:
        await subscribe(http, d, "bob", push_service.endpoint("gone"))
        push_service.answers["/push/gone"] = [(410, {})]
        counts = await notify(http, d, principals=["bob"], title="t", body="b", url="/#/")
        assert counts["queued"] == 1
        assert (await push_service.next()).path == "/push/gone"
        await d.daemon.push.idle()
        assert await d.daemon.push.subscriptions.of_principals("default", ["bob"]) == []

        counts = await notify(http, d, principals=["bob"], title="t2", body="b", url="/#/x")
        assert counts["unsubscribed"] == 1 and counts["queued"] == 0
        await d.daemon.push.idle()
        assert len(push_service.received) == 1
        metrics = (await http.get(f"{d.http}/metrics")).text
        assert 'syncd_push_total{outcome="expired"} 1.0' in metrics
        assert 'syncd_push_skipped_total{reason="unsubscribed"} 1.0' in metrics


async def test_429_is_retried_after_retry_after_and_5xx_backs_off(
    pushing_daemon: RunningDaemon, push_service: PushServiceStandIn
) -> None:
    d = pushing_daemon
    async with httpx.AsyncClient() as http:
        await subscribe(http, d, "bob", push_service.endpoint("busy"))
        push_service.answers["/push/busy"] = [(429, {"Retry-After": "0"}), (503, {})]
        await notify(http, d, principals=["bob"], title="t", body="b", url="/#/")
        statuses = [await push_service.next() for _ in range(3)]
        assert [r.path for r in statuses] == ["/push/busy"] * 3
        await d.daemon.push.idle()
        assert len(await d.daemon.push.subscriptions.of_principals("default", ["bob"])) == 1
        assert len(push_service.received) == 3


async def test_redirects_are_never_followed(
    pushing_daemon: RunningDaemon, push_service: PushServiceStandIn
) -> None:
    d = pushing_daemon
    async with httpx.AsyncClient() as http:
        await subscribe(http, d, "bob", push_service.endpoint("moved"))
        elsewhere = push_service.endpoint("elsewhere")
        push_service.answers["/push/moved"] = [(307, {"Location": elsewhere})]
        await notify(http, d, principals=["bob"], title="t", body="b", url="/#/")
        assert (await push_service.next()).path == "/push/moved"
        await d.daemon.push.idle()
        assert [r.path for r in push_service.received] == ["/push/moved"]
        assert len(await d.daemon.push.subscriptions.of_principals("default", ["bob"])) == 1


async def test_a_push_connection_reaching_a_private_address_sends_nothing(
    push_service: PushServiceStandIn,
) -> None:
    """The session for endpoints outside the allow-list checks the address it connected to
    (a name re-pointed at 127.0.0.1 after the check would land here): closed before a byte."""
    session = push_session(public_only=True)
    try:
        url = f"https://127.0.0.1:{push_service.port}/push/rebound"
        with pytest.raises(requests.ConnectionError) as caught:
            await asyncio.to_thread(session.post, url, data=b"x", timeout=5)
        assert reached_private_address(caught.value)
    finally:
        session.close()
    assert push_service.received == []


async def test_endpoints_outside_the_allow_list_are_refused_and_never_called(
    pushing_daemon: RunningDaemon, push_service: PushServiceStandIn
) -> None:
    d = pushing_daemon
    keys = BrowserKeys()
    port = push_service.port
    refused = [
        f"{push_service.origin}/elsewhere/bob",  # the stand-in, outside the admitted path
        f"http://127.0.0.1:{port}@127.0.0.1:{port}/push/bob",  # user info
        f"http://127.0.0.1:{port}0/push/bob",  # another port that starts the same
        "http://push.example.com/bob",  # not https
        "https://127.0.0.1/bob",
        "https://10.1.2.3/bob",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/bob",
        "https://[::ffff:192.168.0.1]/bob",
        "https://localhost/bob",
        "https://push.localhost/bob",
        "https://no-such-host.invalid/bob",  # does not resolve
        "not a url",
    ]
    async with httpx.AsyncClient() as http:
        for endpoint in refused:
            r = await http.post(
                f"{d.http}/v1/push/subscriptions",
                json=keys.subscription(endpoint),
                headers=auth(d.token("bob")),
            )
            assert r.status_code == 400, endpoint
            assert r.json()["error"] == "bad_request"
        bad_keys = [
            {"p256dh": keys.p256dh[:-4], "auth": "AAAAAAAAAAAAAAAAAAAAAA"},
            {"p256dh": keys.p256dh, "auth": "AAAA"},
            {"p256dh": "C" + keys.p256dh[1:], "auth": "AAAAAAAAAAAAAAAAAAAAAA"},  # not 0x04
            {"p256dh": 7},
            "keys",
        ]
        for bad in bad_keys:
            r = await http.post(
                f"{d.http}/v1/push/subscriptions",
                json={"endpoint": push_service.endpoint("bob"), "keys": bad},
                headers=auth(d.token("bob")),
            )
            assert r.status_code == 400, bad
        counts = await notify(http, d, principals=["bob"], title="t", body="b", url="/#/")
        assert counts["unsubscribed"] == 1
        await d.daemon.push.idle()
        assert push_service.received == []


async def test_subscribe_unsubscribe_and_notify_rules(
    pushing_daemon: RunningDaemon, push_service: PushServiceStandIn
) -> None:
    d = pushing_daemon
    async with httpx.AsyncClient() as http:
        endpoint = push_service.endpoint("b1")
        await subscribe(http, d, "bob", endpoint)
        r = await http.post(f"{d.http}/v1/push/subscriptions", json={})
        assert r.status_code == 401
        # Someone else cannot unsubscribe bob's endpoint; bob can, twice (204 both times).
        r = await http.delete(
            f"{d.http}/v1/push/subscriptions",
            params={"endpoint": endpoint},
            headers=auth(d.token("mallory")),
        )
        assert r.status_code == 204
        assert len(await d.daemon.push.subscriptions.of_principals("default", ["bob"])) == 1
        for _ in range(2):
            r = await http.delete(
                f"{d.http}/v1/push/subscriptions",
                params={"endpoint": endpoint},
                headers=auth(d.token("bob")),
            )
            assert r.status_code == 204
        assert await d.daemon.push.subscriptions.of_principals("default", ["bob"]) == []

        url = f"{d.http}/v1/push/notify"
        body = {"principals": ["bob"], "title": "t", "body": "b", "url": "/#/"}
        r = await http.post(url, json=body, headers=auth(d.token("bob")))
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
        service = auth(d.token("svc", role="service"))
        for bad in (
            {**body, "url": "https://evil.example/"},
            {**body, "url": "//evil.example/"},
            {**body, "principals": []},
            {**body, "principals": ["not a principal"]},
            {**body, "title": ""},
            {**body, "body": "x" * 5000},
            {**body, "doc": "no-slash"},
            ["not", "an", "object"],
        ):
            r = await http.post(url, json=bad, headers=service)
            assert r.status_code == 400, bad
            assert r.json()["error"] == "bad_request"
        r = await http.post(url, content=b"{", headers=service)
        assert r.status_code == 400
        assert (await http.get(f"{d.http}/healthz")).status_code == 200


@pytest.mark.postgres
async def test_presence_on_another_node_is_seen(
    settings: Settings, postgres_url: str, redis_url: str, push_service: PushServiceStandIn
) -> None:
    """bob is in the document on node 0; a notify through node 1, where the document is not
    loaded, skips him (presence crosses nodes through Redis), and still pushes to carol."""
    doc = "alice/session-2"
    allow = replace(settings, push_allow_endpoints=f"{push_service.origin}/push/")
    async with (
        running_cluster(allow, postgres_url, redis_url, 2) as cluster,
        httpx.AsyncClient() as http,
    ):
        a, b = cluster[0], cluster[1]
        await share(http, a, doc, {"bob": "editor", "carol": "editor"})
        await a.daemon.push.idle()  # its share found no subscription yet
        await subscribe(http, a, "bob", push_service.endpoint("bob"))
        carol = await subscribe(http, a, "carol", push_service.endpoint("carol"))
        async with (
            YClient(a.ws_url(doc, a.token("alice"))) as alice,
            YClient(a.ws_url(doc, a.token("bob"))) as bob,
        ):
            bob.set_awareness({"user": {"name": "Bob"}})
            await alice.wait_until(lambda: bob.doc.client_id in alice.awareness)
            assert b.daemon.rooms.get_loaded(DocKey("default", doc)) is None
            counts = await notify(
                http, b, principals=["bob", "carol"], title="t", body="b", url="/#/", doc=doc
            )
            assert counts["present"] == 1 and counts["queued"] == 1
            got = await push_service.next()
            assert got.path == "/push/carol"
            assert carol.decrypt(got.body)["doc"] == doc
            await b.daemon.push.idle()
            assert len(push_service.received) == 1


async def test_subscriptions_per_principal_are_bounded_and_endpoints_move(
    store: SqlStore,
) -> None:
    subs = SqlPushSubscriptions(store, max_per_principal=3)
    keys = BrowserKeys()
    for i in range(5):
        await subs.add("t", "bob", f"https://push.example/{i}", keys.p256dh, "a" * 22)
    kept = await subs.of_principals("t", ["bob"])
    assert [s.endpoint for s in kept] == [f"https://push.example/{i}" for i in (2, 3, 4)]
    # The same browser, now signed in as carol: the endpoint is hers, bob keeps the others.
    await subs.add("t", "carol", "https://push.example/4", keys.p256dh, "b" * 22)
    assert [s.principal for s in await subs.of_principals("t", ["carol"])] == ["carol"]
    assert len(await subs.of_principals("t", ["bob"])) == 2
    assert await subs.of_principals("other-tenant", ["bob", "carol"]) == []
    assert await subs.remove("t", "bob", "https://push.example/2")
    assert not await subs.remove("t", "bob", "https://push.example/2")
    gone = (await subs.of_principals("t", ["bob"]))[0]
    await subs.expired(gone)
    assert await subs.of_principals("t", ["bob"]) == []


def test_vapid_key_is_generated_once_in_the_data_dir(settings: Settings) -> None:
    first = load_vapid_key(settings)
    again = load_vapid_key(settings)
    assert first.public_key == again.public_key
    assert len(first.public_key) == 87  # 65 bytes, base64url without padding
    assert (settings.data_dir / "vapid_private_key.pem").stat().st_mode & 0o077 == 0


def test_throttle_is_one_per_key_per_window_and_bounded() -> None:
    now = [0.0]
    throttle = PushThrottle(window_seconds=60, max_keys=3, clock=lambda: now[0])
    assert throttle.admit("a") and not throttle.admit("a")
    assert throttle.admit("b") and throttle.admit("c") and throttle.admit("d")
    assert len(throttle) == 3  # "a" went first: bounded memory wins
    now[0] = 61.0
    assert throttle.admit("b")
    assert len(throttle) == 1  # the expired ones are gone
