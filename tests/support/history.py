"""Helpers of the history tests: canvas writers posting their edits over HTTP, and the API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pycrdt

from crdt.schemas import Canvas
from tests.support.servers import RunningDaemon


def iso(ts: float) -> str:
    """A stored ``at`` as ISO 8601 with microseconds (the wire's milliseconds are too coarse
    to tell apart edits a test makes one after the other)."""
    return datetime.fromtimestamp(ts, UTC).isoformat()


class CanvasWriter:
    """One principal's replica of a canvas; every ``edit`` is posted as one update."""

    def __init__(self, http: httpx.AsyncClient, daemon: RunningDaemon, doc: str, who: str):
        self.http = http
        self.doc_id = doc
        self.who = who
        self.auth = {"authorization": f"Bearer {daemon.token(who)}"}
        self.canvas = Canvas(pycrdt.Doc(), author=who)

    async def pull(self) -> None:
        r = await self.http.get(f"/v1/docs/{self.doc_id}/state", headers=self.auth)
        assert r.status_code == 200, r.text
        self.canvas.doc.apply_update(r.content)

    async def edit(self, change: Callable[[Canvas], Any]) -> tuple[Any, int]:
        before = self.canvas.doc.get_state()
        result = change(self.canvas)
        update = self.canvas.doc.get_update(before)
        r = await self.http.post(
            f"/v1/docs/{self.doc_id}/updates", content=update, headers=self.auth
        )
        assert r.status_code == 200, r.text
        return result, r.json()["seq"]


async def json_state(http: httpx.AsyncClient, path: str, auth: dict[str, str]) -> dict[str, Any]:
    r = await http.get(path, headers={**auth, "accept": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()
