"""The example analytics service folds a live canvas feed into per-participant figures."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from pathlib import Path

import httpx
import pycrdt
import pytest
from syncd_client import Client, FeedSubscriber

from crdt.schemas import Canvas

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).parent.parent / "client-sdk" / "python" / "examples" / "engagement.py"


def load_example():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("engagement", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["engagement"] = module  # dataclasses look their module up there
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


async def test_engagement_figures(daemon):
    engagement_mod = load_example()
    url = f"ws://127.0.0.1:{daemon.port}"
    dana = daemon.token("dana")
    async with httpx.AsyncClient(base_url=daemon.http) as http:
        r = await http.put(
            "/v1/docs/dana/canvas-1/access",
            json={"mode": "shared", "grants": {"eli": "editor"}},
            headers={"authorization": f"Bearer {dana}"},
        )
        assert r.status_code == 200
    async with Client(url, dana) as d, Client(url, daemon.token("eli")) as e:
        mine = d.document("dana/canvas-1")
        theirs = e.document("dana/canvas-1")
        await mine.wait_saved(10)
        await theirs.wait_saved(10)
        dana_canvas = Canvas(mine.doc, author="dana")
        dana_canvas.init("Session")
        await d.synced(10)
        card = dana_canvas.add_card("values", "trust", 1, 2, color="#f00")
        dana_canvas.add_stroke(0, 0, [0, 0, 0.5, 2, 2, 0.5], color="#00f")
        await d.synced(10)
        await theirs.wait_for(lambda: card in theirs.doc.get("elements", type=pycrdt.Map), 10)
        eli_canvas = Canvas(theirs.doc, author="eli")
        eli_canvas.move(card, 50, 60)
        eli_canvas.add_card("values", "hope", 5, 5, color="#0f0")
        await e.synced(10)

    engagement = engagement_mod.Engagement()
    feed = FeedSubscriber(url, daemon.token("insights", role="service"), format="changes")
    async with contextlib.aclosing(feed.events()) as events:
        async for event in events:
            engagement.fold(event)
            engagement.fold(event)  # at-least-once delivery: folding twice changes nothing
            figures = engagement.to_json().get("dana/canvas-1", {})
            if figures.get("eli", {}).get("cards_placed") == 1:
                break
    feed.close()
    assert figures["dana"]["cards_placed"] == 1
    assert figures["dana"]["strokes_drawn"] == 1 and figures["dana"]["points_drawn"] == 2
    assert figures["dana"]["colors_used"] == ["#00f", "#f00"]
    assert figures["dana"]["moved_by_others"] == 1
    assert figures["eli"]["elements_moved"] == 1 and figures["eli"]["colors_used"] == ["#0f0"]
