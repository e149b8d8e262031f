"""crdt.changes against updates written by a stock yjs client (no syncd code on the JS side).

``tests/interop/changes_writer.mjs`` builds a journal/1 and a canvas/1 document with plain Yjs
calls per DESIGN.md §1.8 and prints each step's update; every step must decode to the changes
listed here, both through a streaming `ChangeDecoder` and through `decode_changes` with the
state before it. The pinned npm packages must be installed: ``npm ci --prefix tests/interop``.
Yjs writes whole numbers as integers; pycrdt reads them back as numbers that compare equal.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from crdt.changes import ChangeDecoder, decode_changes
from crdt.updates import merge

pytestmark = pytest.mark.node

INTEROP = Path(__file__).parent / "interop"
WRITER = INTEROP / "changes_writer.mjs"
STAMP = "2024-05-01T12:00:00.000Z"
LATER = "2024-05-01T12:05:00.000Z"
ELEMENT = {
    "x": 10,
    "y": 20,
    "w": 120,
    "h": 180,
    "rotation": 0,
    "color": None,
    "author": "node",
    "created_at": STAMP,
}

# label -> the changes it must decode to, in order: (type, id, fields the change must have).
EXPECTED: dict[str, list[tuple[str, str | None, dict[str, Any]]]] = {
    "journal_created": [("journal_created", None, {"title": "Dreams"})],
    "entry_created": [
        (
            "entry_created",
            "entry-1",
            {
                "title": "Monday",
                "body": "Moon 🌙 rising",
                "mode": "standalone",
                "session_id": None,
                "prompt": "What did you see?",
                "tags": ["lucid", "night"],
                "created_at": STAMP,
            },
        )
    ],
    "entry_title_changed": [
        ("entry_title_changed", "entry-1", {"title": "Monday night", "old_title": "Monday"}),
    ],
    "entry_text_inserted": [  # Yjs index 8 (UTF-16) is character 7
        ("entry_text_changed", "entry-1", {"index": 7, "deleted": "", "inserted": "high "}),
    ],
    "entry_text_deleted": [
        ("entry_text_changed", "entry-1", {"index": 5, "deleted": "🌙 ", "inserted": ""}),
    ],
    "entry_tags_added": [("entry_tags_changed", "entry-1", {"added": ["flying"], "removed": []})],
    "entry_tags_removed": [
        ("entry_tags_changed", "entry-1", {"added": [], "removed": ["night"]}),
    ],
    "entry_mode_changed": [
        (
            "entry_mode_changed",
            "entry-1",
            {
                "mode": "in-session",
                "session_id": "session-7",
                "old_mode": "standalone",
                "old_session_id": None,
            },
        )
    ],
    "entry_text_merged": [  # "Moon high rising", edited by two replicas that saw nothing else
        ("entry_text_changed", "entry-1", {"index": 0, "deleted": "", "inserted": "[B] "}),
        ("entry_text_changed", "entry-1", {"index": 20, "deleted": "", "inserted": " [A]"}),
    ],
    "journal_renamed": [("journal_renamed", None, {"title": "Night log", "old_title": "Dreams"})],
    "entry_created_and_deleted": [  # entry-2 came and went inside the update
        ("entry_created", "entry-3", {"title": "Tuesday", "tags": [], "created_at": LATER}),
    ],
    "entry_deleted": [("entry_deleted", "entry-1", {"title": "Monday night"})],
    "canvas_created": [
        (
            "canvas_created",
            None,
            {
                "title": "Reading",
                "template": "blank",
                "background": "#ffffff",
            },
        )
    ],
    "card_added": [
        (
            "element_added",
            "card-1",
            {
                **ELEMENT,
                "kind": "card",
                "z": 0,
                "deck": "tarot",
                "card_id": "the-fool",
            },
        )
    ],
    "shape_added": [("element_added", "shape-1", {**ELEMENT, "kind": "shape", "shape": "ellipse"})],
    "text_added": [("element_added", "text-1", {**ELEMENT, "kind": "text", "text": "Hello 🌙"})],
    "stroke_added": [
        (
            "element_added",
            "stroke-1",
            {
                **ELEMENT,
                "kind": "stroke",
                "w": 4,
                "h": 3,
                "color": "#222222",
                "width": 2.5,
            },
        ),
        (
            "stroke_drawn",
            "stroke-1",
            {
                "points": [0, 0, 0.5, 4, 3, 0.75],
                "index": 0,
                "new_stroke": True,
                "color": "#222222",
                "width": 2.5,
            },
        ),
    ],
    "stroke_extended": [
        ("element_resized", "stroke-1", {"w": 8, "h": 6, "old_w": 4, "old_h": 3}),
        ("stroke_drawn", "stroke-1", {"points": [8, 6, 1], "index": 6, "new_stroke": False}),
    ],
    "connector_added": [
        ("element_added", "conn-1", {"kind": "connector", "from": "card-1", "to": "shape-1"}),
    ],
    "element_moved": [
        ("element_moved", "card-1", {"x": 40, "y": 25.5, "old_x": 10, "old_y": 20}),
    ],
    "element_resized": [
        ("element_resized", "shape-1", {"w": 60, "h": 30, "old_w": 120, "old_h": 180}),
    ],
    "element_rotated": [("element_rotated", "card-1", {"rotation": 90, "old_rotation": 0})],
    "element_recolored": [
        ("element_recolored", "shape-1", {"color": "#ff0000", "old_color": None}),
    ],
    "element_reordered": [("element_reordered", "card-1", {"z": 5, "old_z": 0})],
    "text_inserted": [("text_changed", "text-1", {"index": 7, "deleted": "", "inserted": "!"})],
    "text_deleted": [
        ("text_changed", "text-1", {"index": 0, "deleted": "Hello ", "inserted": ""}),
    ],
    "canvas_meta_changed": [
        (
            "canvas_meta_changed",
            None,
            {
                "field": "background",
                "value": "#000000",
                "old_value": "#ffffff",
            },
        )
    ],
    "element_moved_merged": [
        ("element_recolored", "card-1", {"color": "#00ff00", "old_color": None}),
        ("element_moved", "shape-1", {"x": 300, "y": 20, "old_x": 10, "old_y": 20}),
    ],
    "element_deleted": [
        ("element_deleted", "card-1", {"kind": "card"}),
        ("element_deleted", "conn-1", {"kind": "connector"}),
    ],
}
SCHEMAS = {"journal": "journal/1", "canvas": "canvas/1"}


@pytest.fixture(scope="module")
def steps() -> list[dict[str, Any]]:
    """Run the writer once; fails (never skips) when node or the npm packages are missing."""
    node = shutil.which("node")
    if node is None or not (INTEROP / "node_modules" / "yjs").is_dir():
        problem = "node is not on PATH" if node is None else "the yjs package is not installed"
        pytest.fail(
            f"{problem}: run npm ci --prefix tests/interop (needs Node.js 20+)", pytrace=False
        )
    done = subprocess.run(
        [node, str(WRITER)], cwd=INTEROP, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_writer_covers_every_expected_step(steps: list[dict[str, Any]]) -> None:
    labels = [step["label"] for step in steps]
    assert len(labels) == len(set(labels))
    assert set(labels) == set(EXPECTED)


def test_every_step_decodes_to_its_changes(steps: list[dict[str, Any]]) -> None:
    decoders = {name: ChangeDecoder() for name in SCHEMAS}
    history: dict[str, list[bytes]] = {name: [] for name in SCHEMAS}
    for step in steps:
        doc, label = step["doc"], step["label"]
        update = base64.b64decode(step["update"])
        changes = decoders[doc].apply(update, principal="node")
        before = merge(history[doc]) if history[doc] else None
        stateless = decode_changes(before, update, principal="node")
        history[doc].append(update)
        assert [c.to_json() for c in stateless] == [c.to_json() for c in changes], label
        got = [(c.type, c.id) for c in changes]
        assert got == [(kind, key) for kind, key, _ in EXPECTED[label]], label
        for change, (_, _, fields) in zip(changes, EXPECTED[label], strict=True):
            assert (change.schema, change.principal) == (SCHEMAS[doc], "node"), label
            assert {name: change[name] for name in fields} == fields, label
