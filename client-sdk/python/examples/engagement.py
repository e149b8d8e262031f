"""Live engagement figures per participant, from the canvases' change feed.

The pattern for AI and session services: follow the feed with ``format=changes`` through a
:class:`~syncd_client.FeedSubscriber` (its cursor is persisted, so a restart resumes where it
stopped), fold each semantic change into your own state, and make the fold idempotent on
``(doc, seq)`` because delivery is at least once.

    python client-sdk/python/examples/engagement.py --url ws://127.0.0.1:8787 \\
        --token "$(syncd token --sub insights --role service)" [--prefix dana/] [--serve 8090]

Prints a table whenever the figures change; with ``--serve PORT`` also answers
``GET http://127.0.0.1:PORT/`` with the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from syncd_client import FeedSubscriber

__all__ = ["Engagement"]

# Gaps longer than this between two changes of one participant do not count as active time.
ACTIVE_GAP_SECONDS = 60.0


@dataclass
class Participant:
    cards_placed: int = 0
    strokes_drawn: int = 0
    points_drawn: int = 0
    elements_moved: int = 0
    moved_by_others: int = 0  # elements this participant created, moved by someone else
    colors_used: set[str] = field(default_factory=set)
    active_seconds: float = 0.0
    last_seen: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "cards_placed": self.cards_placed,
            "strokes_drawn": self.strokes_drawn,
            "points_drawn": self.points_drawn,
            "elements_moved": self.elements_moved,
            "moved_by_others": self.moved_by_others,
            "colors_used": sorted(self.colors_used),
            "active_seconds": round(self.active_seconds, 1),
        }


class Engagement:
    """Per-canvas, per-participant figures folded from feed events (pure, no I/O)."""

    def __init__(self) -> None:
        self.canvases: dict[str, dict[str, Participant]] = defaultdict(
            lambda: defaultdict(Participant)
        )
        self._authors: dict[tuple[str, str], str] = {}  # (canvas, element id) -> creator
        self._seen: dict[str, int] = {}  # canvas -> last seq folded (idempotent resume)

    def fold(self, event: dict[str, Any]) -> bool:
        """Fold one feed event; returns whether anything changed."""
        doc, seq = event["doc"], event["seq"]
        if event["type"] == "reset" or seq <= self._seen.get(doc, 0):
            self._seen[doc] = max(seq, self._seen.get(doc, 0))
            return False
        self._seen[doc] = seq
        changes = event.get("changes") or []
        if not any(c.get("schema") == "canvas/1" for c in changes):
            return False
        at = datetime.fromisoformat(event["at"].replace("Z", "+00:00")).timestamp()
        who = self.canvases[doc][event["principal"]]
        if who.last_seen is not None and 0 < at - who.last_seen <= ACTIVE_GAP_SECONDS:
            who.active_seconds += at - who.last_seen
        who.last_seen = at
        for change in changes:
            self._apply(doc, event["principal"], who, change)
        return True

    def _apply(self, doc: str, principal: str, who: Participant, change: dict[str, Any]) -> None:
        kind, element = change["type"], change.get("id")
        if kind == "element_added":
            self._authors[(doc, element)] = principal
            if change.get("kind") == "card":
                who.cards_placed += 1
            if change.get("color"):
                who.colors_used.add(change["color"])
        elif kind == "stroke_drawn":
            if change.get("new_stroke"):
                who.strokes_drawn += 1
            who.points_drawn += len(change.get("points", [])) // 3
            if change.get("color"):
                who.colors_used.add(change["color"])
        elif kind == "element_recolored" and change.get("color"):
            who.colors_used.add(change["color"])
        elif kind == "element_moved":
            who.elements_moved += 1
            creator = self._authors.get((doc, element))
            if creator is not None and creator != principal:
                self.canvases[doc][creator].moved_by_others += 1

    def to_json(self) -> dict[str, Any]:
        return {
            doc: {p: figures.to_json() for p, figures in sorted(people.items())}
            for doc, people in sorted(self.canvases.items())
        }


def print_table(engagement: Engagement) -> None:
    print(f"{'canvas':<28}{'participant':<16}cards strokes points moved by-others active colors")
    for doc, people in engagement.to_json().items():
        for who, f in people.items():
            print(
                f"{doc:<28}{who:<16}{f['cards_placed']:>5} {f['strokes_drawn']:>7} "
                f"{f['points_drawn']:>6} {f['elements_moved']:>5} {f['moved_by_others']:>9} "
                f"{f['active_seconds']:>6} {','.join(f['colors_used'])}"
            )


async def serve_json(engagement: Engagement, port: int) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            body = json.dumps(engagement.to_json()).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", port)


async def main() -> None:
    parser = argparse.ArgumentParser(description="Live engagement figures from canvases")
    parser.add_argument("--url", default="ws://127.0.0.1:8787")
    parser.add_argument("--token", required=True, help="a service token")
    parser.add_argument("--prefix", default=None, help="only documents starting with this")
    # The figures live in memory, so by default the feed is replayed from the oldest cursor at
    # each start. A service that persists its figures keeps its cursor beside them (--store).
    parser.add_argument("--store", default=None, help="SQLite file keeping the cursor")
    parser.add_argument("--serve", type=int, default=None, help="serve the figures as JSON")
    args = parser.parse_args()
    engagement = Engagement()
    server = await serve_json(engagement, args.serve) if args.serve else None
    feed = FeedSubscriber(
        args.url, args.token, store=args.store, prefix=args.prefix, format="changes"
    )
    try:
        async with contextlib.aclosing(feed.events()) as events:
            async for event in events:
                if engagement.fold(event):
                    print_table(engagement)
    finally:
        feed.close()
        if server is not None:
            server.close()


if __name__ == "__main__":
    asyncio.run(main())
