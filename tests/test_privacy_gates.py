"""The gates around the consent rules and erasure (docs/privacy.md), SQLite and Postgres:

- a service bound to a purpose reads only where consent is enforced (the feed and the gated
  ``GET …/state``): sockets, metadata, versions and activity refuse it, so none of them is a way
  round the gate;
- an erased principal's name is not written again by a token of theirs that has not expired.
"""

from __future__ import annotations

from typing import Any

import httpx
import pycrdt
import pytest

from crdt.schemas import Journal
from tests.support.servers import RunningDaemon
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio

DOC = "alice/journal"


def auth(daemon: RunningDaemon, sub: str, **kw: Any) -> dict[str, str]:
    return {"authorization": f"Bearer {daemon.token(sub, **kw)}"}


async def write_journal(http: httpx.AsyncClient, daemon: RunningDaemon) -> None:
    journal = Journal.create("Diary")
    journal.create_entry("Monday", "alice wrote this")
    r = await http.post(
        f"/v1/docs/{DOC}/updates", content=journal.doc.get_update(), headers=auth(daemon, "alice")
    )
    assert r.status_code == 200, r.text
    r = await http.put(
        "/v1/principals/alice/consent", json={"analytics": True}, headers=auth(daemon, "alice")
    )
    assert r.status_code == 200, r.text


async def test_a_purpose_bound_service_reads_only_through_the_consent_gate(
    any_daemon: RunningDaemon,
):
    daemon = any_daemon
    bound = {"role": "service", "purpose": "analytics"}
    async with httpx.AsyncClient(base_url=daemon.http, timeout=30) as http:
        await write_journal(http, daemon)
        for path in (
            f"/v1/docs/{DOC}",
            f"/v1/docs/{DOC}/versions",
            f"/v1/docs/{DOC}/activity",
            "/v1/trash",
        ):
            r = await http.get(path, headers=auth(daemon, "insights", **bound))
            assert r.status_code == 403, (path, r.text)
            assert r.json()["error"] == "purpose_bound"
            # The same service without a purpose reads them: the refusal is the purpose's.
            r = await http.get(path, headers=auth(daemon, "insights", role="service"))
            assert r.status_code == 200, (path, r.text)
        # The state read enforces consent itself, so it stays open (alice consents).
        r = await http.get(
            f"/v1/docs/{DOC}/state",
            headers={**auth(daemon, "insights", **bound), "accept": "application/json"},
        )
        assert r.status_code == 200, r.text
        assert "alice wrote this" in r.text
        r = await http.get(
            "/v1/feed",
            headers={**auth(daemon, "insights", **bound), "accept": "application/json"},
        )
        assert r.status_code == 200 and r.json()["events"]

    token = daemon.token("insights", **bound)
    socket = YClient(daemon.ws_url(DOC, token))
    await socket.connect(wait_synced=False)
    await socket.wait(socket.closed)
    assert socket.close_code == 4403
    assert socket.denied


async def test_an_erased_principals_live_token_does_not_bring_the_name_back(
    any_daemon: RunningDaemon,
):
    daemon = any_daemon
    bob = auth(daemon, "bob")  # minted before the erasure, valid for an hour
    async with httpx.AsyncClient(base_url=daemon.http, timeout=30) as http:
        r = await http.put("/v1/principals/bob/consent", json={"analytics": True}, headers=bob)
        assert r.status_code == 200
        r = await http.delete("/v1/principals/bob", headers=auth(daemon, "root", role="admin"))
        assert r.status_code == 200, r.text

        r = await http.put("/v1/principals/bob/consent", json={"analytics": True}, headers=bob)
        assert r.status_code == 401 and "erased" in r.json()["message"]
        r = await http.put(
            "/v1/principals/bob/consent",
            json={"analytics": True},
            headers=auth(daemon, "root", role="admin"),
        )
        assert r.status_code == 401  # nor an admin's write of that name
        # Refused before the subscription is even looked at.
        subscription = {"endpoint": "https://push.example.com/send/abc", "keys": {}}
        r = await http.post("/v1/push/subscriptions", json=subscription, headers=bob)
        assert r.status_code == 401 and "erased" in r.json()["message"]
        # Someone else is unaffected.
        r = await http.put(
            "/v1/principals/carol/consent", json={"analytics": False}, headers=auth(daemon, "carol")
        )
        assert r.status_code == 200
    assert await daemon.daemon.consents.of("default", "bob") == {}


async def test_a_service_writing_over_a_socket_is_stored_as_a_service(daemon: RunningDaemon):
    """The consent rules count a service's own writes as consenting by their stored origin, so
    a service's socket write must not be stored like a participant's."""
    observer = YClient(daemon.ws_url(DOC, daemon.token("alice")))
    await observer.connect()
    try:
        for sub, role in (("insights", "service"), ("alice", "user")):
            async with YClient(daemon.ws_url(DOC, daemon.token(sub, role=role))) as writer:
                writer.doc["notes"] = pycrdt.Map()
                writer.doc["notes"][sub] = 1
                # Forwarded only once committed: seeing it means it is stored.
                await observer.wait_until(
                    lambda sub=sub: sub in observer.doc.get("notes", type=pycrdt.Map)
                )
    finally:
        await observer.close()
    page = await daemon.daemon.store.read_feed("default", 0, limit=100)
    origins = {e.principal: e.origin for e in page.events}
    assert origins == {"insights": "service", "alice": "client"}
