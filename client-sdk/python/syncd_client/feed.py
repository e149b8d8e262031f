"""Following the change feed from a service: an async iterator with a persisted cursor.

Example::

    feed = FeedSubscriber("ws://127.0.0.1:8787", service_token, store="insights.db",
                          prefix="dana/", format="changes")
    async with contextlib.aclosing(feed.events()) as events:
        async for event in events:    # at least once, in commit order
            handle(event)             # idempotent on (event["doc"], event["seq"])

Delivery is at least once: the cursor of an event is saved when the next event is asked for,
i.e. after the loop body processed it. A service that crashes mid-event sees that event again
on restart, never a gap; ``(doc, seq)`` identifies an update, so handlers can skip repeats.
The subscriber reconnects with jittered backoff; a permanent close (44xx) raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgpack
import websockets

from .client import PermanentClose, backoff_delay
from .offline_store import OfflineStore

__all__ = ["FeedSubscriber"]

log = logging.getLogger("syncd_client.feed")


class FeedSubscriber:
    """Args:
    url: the daemon's base URL (``ws://host:port``).
    token: a service or admin token.
    store: where the cursor is kept (an SQLite file shared with a Client is fine).
    name: the cursor's name in the store (several subscribers can share a file).
    prefix: only documents whose id starts with it (e.g. ``"dana/"``).
    format: ``"updates"`` (raw Yjs updates) or ``"changes"`` (decoded semantic changes too).
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        store: str | Path | None = None,
        name: str = "feed",
        prefix: str | None = None,
        format: str = "updates",
        page_size: int = 200,
        backoff: tuple[float, float] = (0.2, 15.0),
    ) -> None:
        self.url = url.rstrip("/") + "/v1/feed"
        self.token = token
        self.store = OfflineStore(store if store is not None else ":memory:")
        self.name = name
        self.prefix = prefix
        self.format = format
        self.page_size = page_size
        self.backoff = backoff

    @property
    def cursor(self) -> str | None:
        return self.store.cursor(self.name)

    def close(self) -> None:
        self.store.close()

    def _endpoint(self) -> str:
        params: dict[str, Any] = {"token": self.token, "limit": self.page_size}
        if self.cursor:
            params["after"] = self.cursor
        if self.prefix:
            params["prefix"] = self.prefix
        if self.format != "updates":
            params["format"] = self.format
        return f"{self.url}?{urlencode(params)}"

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self.events()

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """The events, forever; close the iterator (``contextlib.aclosing``) to stop early."""
        attempt = 0
        while True:
            try:
                async with websockets.connect(self._endpoint(), max_size=None) as ws:
                    async for frame in ws:
                        attempt = 0
                        page = (
                            json.loads(frame) if isinstance(frame, str) else msgpack.unpackb(frame)
                        )
                        if "error" in page:
                            continue  # the reason of a close that follows
                        for event in page["events"]:
                            yield event
                            self.store.save_cursor(self.name, event["cursor"])
                        self.store.save_cursor(self.name, page["next"])
                code = ws.close_code
                reason = ws.close_reason
            except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
                code, reason = None, str(exc)
            except websockets.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                reason = exc.rcvd.reason if exc.rcvd else ""
            if code is not None and 4400 <= code <= 4499:
                raise PermanentClose(f"{code} {reason}".strip())
            log.info("feed: disconnected (%s %s), retrying", code, reason)
            delay = backoff_delay(attempt, self.backoff)
            attempt += 1
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(delay)
