"""``GET /v1/docs``: a principal's own documents and those shared with it (SQLite and Postgres).

Documents are made and shared through the HTTP API, as a participant's app would; what the
listing says is compared with what the access rules say (a listed document opens, an unlisted
one that was shared privately or trashed does not).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pycrdt
import pytest

from tests.support.servers import RunningDaemon

pytestmark = pytest.mark.anyio


@pytest.fixture
async def http(any_daemon: RunningDaemon) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=any_daemon.http) as client:
        yield client


def auth(daemon: RunningDaemon, sub: str, **claims: object) -> dict[str, str]:
    return {"authorization": f"Bearer {daemon.token(sub, **claims)}"}


async def make(
    http: httpx.AsyncClient,
    daemon: RunningDaemon,
    doc: str,
    grants: dict[str, str] | None = None,
    *,
    mode: str | None = None,
    **claims: object,
) -> None:
    """Create ``doc`` as its owner, shared with ``grants`` (private without)."""
    body = {"mode": mode or ("shared" if grants else "private"), "grants": grants or {}}
    owner = doc.split("/")[0]
    r = await http.put(f"/v1/docs/{doc}/access", json=body, headers=auth(daemon, owner, **claims))
    assert r.status_code == 200, r.text


async def listing(
    http: httpx.AsyncClient, daemon: RunningDaemon, sub: str, query: str = "", **claims: object
) -> dict[str, str]:
    """``{id: role}`` of what ``sub`` is shown."""
    r = await http.get(f"/v1/docs{query}", headers=auth(daemon, sub, **claims))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["truncated"] is False
    return {d["id"]: d["role"] for d in body["docs"]}


async def test_owned_and_shared_with_roles(any_daemon: RunningDaemon, http: httpx.AsyncClient):
    d = any_daemon
    await make(http, d, "alice/journal")
    await make(http, d, "alice/canvas-1", {"bob": "editor", "carol": "viewer"})
    await make(http, d, "carol/canvas-2", {"bob": "viewer"})
    # A grant on a private document gives nothing, so it is not listed.
    await make(http, d, "carol/private", {"bob": "editor"}, mode="private")
    # Names that only look alike: another owner whose name starts like bob's, another case.
    await make(http, d, "bobby/canvas-3")
    await make(http, d, "Bob/canvas-4")
    # Another tenant's document, shared with a "bob" there.
    await make(http, d, "alice/elsewhere", {"bob": "editor"}, tenant="other")
    await make(http, d, "bob/mine")

    assert await listing(http, d, "bob") == {
        "bob/mine": "owner",
        "alice/canvas-1": "editor",
        "carol/canvas-2": "viewer",
    }
    assert await listing(http, d, "bob", "?shared=1") == {
        "alice/canvas-1": "editor",
        "carol/canvas-2": "viewer",
    }
    assert await listing(http, d, "bob", "?owned=1") == {"bob/mine": "owner"}
    assert await listing(http, d, "bob", "?owned=1&shared=0") == {"bob/mine": "owner"}
    assert await listing(http, d, "alice", "?owned=true") == {
        "alice/journal": "owner",
        "alice/canvas-1": "owner",
    }
    assert await listing(http, d, "bob", tenant="other") == {"alice/elsewhere": "editor"}
    assert await listing(http, d, "dave") == {}

    # Each listed document opens for its reader; the private one does not.
    bob = auth(d, "bob")
    for doc in ("alice/canvas-1", "carol/canvas-2"):
        assert (await http.get(f"/v1/docs/{doc}", headers=bob)).status_code == 200
    assert (await http.get("/v1/docs/carol/private", headers=bob)).status_code == 404


async def test_the_listing_follows_access_changes_and_the_trash(
    any_daemon: RunningDaemon, http: httpx.AsyncClient
):
    d = any_daemon
    await make(http, d, "alice/canvas-1", {"bob": "viewer"})
    assert await listing(http, d, "bob", "?shared=1") == {"alice/canvas-1": "viewer"}

    await make(http, d, "alice/canvas-1", {"bob": "editor"})
    assert await listing(http, d, "bob", "?shared=1") == {"alice/canvas-1": "editor"}

    await make(http, d, "alice/canvas-1", {"bob": "editor"}, mode="private")
    assert await listing(http, d, "bob", "?shared=1") == {}
    await make(http, d, "alice/canvas-1", {"bob": "editor"})

    r = await http.delete("/v1/docs/alice/canvas-1", headers=auth(d, "alice"))
    assert r.status_code == 204, r.text
    assert await listing(http, d, "bob") == {}
    assert await listing(http, d, "alice") == {}

    r = await http.post("/v1/docs/alice/canvas-1/restore", headers=auth(d, "alice"))
    assert r.status_code == 200, r.text
    assert await listing(http, d, "bob") == {"alice/canvas-1": "editor"}
    assert await listing(http, d, "alice") == {"alice/canvas-1": "owner"}


async def test_metadata_fields_order_and_limit(any_daemon: RunningDaemon, http: httpx.AsyncClient):
    d = any_daemon
    for n in range(3):
        await make(http, d, f"alice/doc-{n}")
    # Writing to doc-0 makes it the most recently updated.
    ydoc = pycrdt.Doc()
    ydoc["meta"] = meta = pycrdt.Map()
    meta["title"] = "written"
    r = await http.post(
        "/v1/docs/alice/doc-0/updates",
        content=ydoc.get_update(),
        headers={**auth(d, "alice"), "content-type": "application/octet-stream"},
    )
    assert r.status_code == 200, r.text

    r = await http.get("/v1/docs", headers=auth(d, "alice"))
    docs = r.json()["docs"]
    assert docs[0]["id"] == "alice/doc-0"
    first = docs[0]
    assert set(first) == {
        "id",
        "owner",
        "role",
        "mode",
        "seq",
        "size_bytes",
        "created_at",
        "updated_at",
    }
    assert first["owner"] == "alice" and first["mode"] == "private"
    assert first["updated_at"] >= first["created_at"]

    r = await http.get("/v1/docs?limit=2", headers=auth(d, "alice"))
    body = r.json()
    assert len(body["docs"]) == 2 and body["truncated"] is True


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("?owned=yes", 400),
        ("?shared=2", 400),
        ("?limit=0", 400),
        ("?limit=1001", 400),
        ("?limit=x", 400),
    ],
)
async def test_bad_queries_are_clear_json_errors(
    any_daemon: RunningDaemon, http: httpx.AsyncClient, query: str, status: int
):
    r = await http.get(f"/v1/docs{query}", headers=auth(any_daemon, "alice"))
    assert r.status_code == status
    assert r.json()["error"] == "bad_request" and r.json()["message"]


async def test_no_token_is_401(any_daemon: RunningDaemon, http: httpx.AsyncClient):
    r = await http.get("/v1/docs")
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"
    r = await http.get("/v1/docs", headers={"authorization": "Bearer nonsense"})
    assert r.status_code == 401
    assert (await http.get("/healthz")).status_code == 200  # the daemon is still up
