"""Decoded changes of canvas/1 edits made with the crdt.schemas helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from crdt.schemas import Canvas
from crdt.updates import merge
from tests.support.change_docs import STAMP, Follower, bare

# --- canvas/1 ---------------------------------------------------------------------------------


ADDERS: dict[str, tuple[Callable[[Canvas], str], dict[str, Any]]] = {
    "card": (
        lambda c: c.add_card("tarot", "fool", 1, 2, color="#f00"),
        {"deck": "tarot", "card_id": "fool", "w": 120.0, "h": 180.0, "color": "#f00"},
    ),
    "shape": (
        lambda c: c.add_shape("ellipse", 1, 2, 30, 40, rotation=45),
        {"shape": "ellipse", "w": 30.0, "h": 40.0, "rotation": 45.0},
    ),
    "text": (lambda c: c.add_text("Hi 🌙", 1, 2), {"text": "Hi 🌙", "w": 200.0, "h": 40.0}),
}


@pytest.mark.parametrize("kind", sorted(ADDERS))
def test_element_added(canvas: tuple[Canvas, Follower], kind: str) -> None:
    board, follower = canvas
    add, fields = ADDERS[kind]
    [added] = follower.step(lambda: add(board), principal="eve")
    assert (added.type, added.id, added.principal) == ("element_added", "c000", "eve")
    assert bare(added) == {
        "type": "element_added",
        "kind": kind,
        "x": 1.0,
        "y": 2.0,
        "rotation": 0.0,
        "z": 0.0,
        "color": None,
        "author": "ana",
        "created_at": STAMP,
        **fields,
    }


def test_connector_added_and_deleted_with_its_end(canvas: tuple[Canvas, Follower]) -> None:
    board, follower = canvas
    card = board.add_card("tarot", "fool", 0, 0)
    shape = board.add_shape("rect", 0, 0, 5, 5)
    follower.decode(board.doc.get_update(merge(follower.states)))
    made: list[str] = []
    [added] = follower.step(lambda: made.append(board.add_connector(card, shape)))
    assert added["kind"] == "connector" and (added["from"], added["to"]) == (card, shape)
    deleted = follower.step(lambda: board.delete(card))
    assert {(c.type, c.id, c["kind"]) for c in deleted} == {
        ("element_deleted", card, "card"),
        ("element_deleted", made[0], "connector"),
    }


def test_element_geometry_and_style(canvas: tuple[Canvas, Follower]) -> None:
    board, follower = canvas
    card = board.add_card("tarot", "fool", 10, 20)
    other = board.add_card("tarot", "sun", 0, 0)
    follower.decode(board.doc.get_update(merge(follower.states)))
    [moved] = follower.step(lambda: board.move(card, 40, 20))
    assert bare(moved) == {
        "type": "element_moved",
        "x": 40.0,
        "y": 20.0,
        "old_x": 10.0,
        "old_y": 20.0,
    }
    [resized] = follower.step(lambda: board.resize(card, 60, 90))
    assert bare(resized) == {
        "type": "element_resized",
        "w": 60.0,
        "h": 90.0,
        "old_w": 120.0,
        "old_h": 180.0,
    }
    [rotated] = follower.step(lambda: board.rotate(card, -90))
    assert bare(rotated) == {"type": "element_rotated", "rotation": 270.0, "old_rotation": 0.0}
    [recolored] = follower.step(lambda: board.set_color(card, "#123456"))
    assert bare(recolored) == {"type": "element_recolored", "color": "#123456", "old_color": None}
    [reordered] = follower.step(lambda: board.bring_to_front(card))
    assert bare(reordered) == {"type": "element_reordered", "z": 2.0, "old_z": 0.0}
    assert {c.id for c in [moved, resized, rotated, recolored, reordered]} == {card}
    assert follower.step(lambda: board.move(other, 0, 0)) == []


def test_strokes_are_drawn_then_extended(canvas: tuple[Canvas, Follower]) -> None:
    board, follower = canvas
    made: list[str] = []
    added, drawn = follower.step(
        lambda: made.append(board.add_stroke(5, 6, [0, 0, 0.5, 3, 4, 0.5], width=3, color="#000"))
    )
    assert bare(added) == {
        "type": "element_added",
        "kind": "stroke",
        "x": 5.0,
        "y": 6.0,
        "w": 3.0,
        "h": 4.0,
        "rotation": 0.0,
        "z": 0.0,
        "color": "#000",
        "author": "ana",
        "created_at": STAMP,
        "width": 3.0,
    }
    assert bare(drawn) == {
        "type": "stroke_drawn",
        "points": [0.0, 0.0, 0.5, 3.0, 4.0, 0.5],
        "index": 0,
        "new_stroke": True,
        "color": "#000",
        "width": 3.0,
    }
    grown, more = follower.step(lambda: board.extend_stroke(made[0], [6, 8, 1]))
    assert bare(more) == {
        "type": "stroke_drawn",
        "points": [6.0, 8.0, 1.0],
        "index": 6,
        "new_stroke": False,
        "color": "#000",
        "width": 3.0,
    }
    assert grown.type == "element_resized" and (grown["w"], grown["h"]) == (6.0, 8.0)
    [empty] = follower.step(lambda: board.add_stroke(0, 0))
    assert empty.type == "element_added"  # no points, so no stroke_drawn yet


def test_text_element_edits(canvas: tuple[Canvas, Follower]) -> None:
    board, follower = canvas
    text = board.add_text("Hello 🌙 moon", 0, 0)
    follower.decode(board.doc.get_update(merge(follower.states)))
    [changed] = follower.step(lambda: board.edit_text(text, 6, delete=2, insert="☀"))
    assert changed.id == text
    assert bare(changed) == {"type": "text_changed", "index": 6, "deleted": "🌙 ", "inserted": "☀"}


def test_canvas_meta_changes(canvas: tuple[Canvas, Follower]) -> None:
    board, follower = canvas
    [renamed] = follower.step(lambda: board.rename("Spread"))
    assert bare(renamed) == {
        "type": "canvas_meta_changed",
        "field": "title",
        "value": "Spread",
        "old_value": "Reading",
    }
    [background] = follower.step(lambda: board.set_background("stars"))
    assert (background["field"], background["value"]) == ("background", "stars")
