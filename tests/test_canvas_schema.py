"""The canvas/1 wrapper over a pycrdt document."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pycrdt import Array, Doc, Map, Text

from crdt.schemas import (
    CANVAS_SCHEMA,
    Canvas,
    Journal,
)
from tests.support.schema_docs import FakeClock, canvas, ids, stamp, sync, updates


def test_canvas_create_writes_meta() -> None:
    board = Canvas.create("Board", template="spread-3", background="#000000")
    assert board.to_json() == {
        "meta": {
            "schema": CANVAS_SCHEMA,
            "title": "Board",
            "template": "spread-3",
            "background": "#000000",
        },
        "elements": {},
    }
    board.rename("Renamed")
    board.set_background("stars")
    assert board.meta["title"] == "Renamed" and board.meta["background"] == "stars"
    with pytest.raises(ValueError, match="journal/1"):
        Canvas(Journal.create().doc)


def test_add_card_layout() -> None:
    board = canvas()
    card = board.add_card("tarot", "fool", 10, 20, rotation=-90, color="#ff0000")
    assert board.element(card) == {
        "id": "c000",
        "kind": "card",
        "x": 10.0,
        "y": 20.0,
        "w": 120.0,
        "h": 180.0,
        "rotation": 270.0,
        "z": 0.0,
        "color": "#ff0000",
        "author": "ana",
        "created_at": stamp(0),
        "deck": "tarot",
        "card_id": "fool",
    }
    assert all(type(board.element(card)[key]) is float for key in ("x", "y", "w", "h", "z"))


def test_strokes_keep_relative_points_and_their_extent() -> None:
    board = canvas()
    stroke = board.add_stroke(100, 100, [0, 0, 0.5, 10, -5, 0.7], width=3)
    raw = board.doc.get("elements", type=Map)[stroke]
    assert isinstance(raw["points"], Array)
    board.extend_stroke(stroke, [-4, 20, 1])
    view = board.element(stroke)
    assert view["points"] == [0.0, 0.0, 0.5, 10.0, -5.0, 0.7, -4.0, 20.0, 1.0]
    assert (view["w"], view["h"], view["width"], view["color"]) == (14.0, 25.0, 3.0, None)
    with pytest.raises(ValueError, match="triples"):
        board.extend_stroke(stroke, [1, 2])
    with pytest.raises(ValueError, match="point must be finite"):
        board.add_stroke(0, 0, [0, float("nan"), 1])
    with pytest.raises(ValueError, match="not a stroke"):
        board.extend_stroke(board.add_shape("rect", 0, 0, 1, 1), [0, 0, 0])
    with pytest.raises(ValueError, match="stroke"):
        board.resize(stroke, 1, 1)


def test_shapes_and_text() -> None:
    board = canvas()
    shape = board.add_shape("ellipse", 1, 2, 3, 4)
    note = board.add_text("Hi 😀", 0, 0)
    board.edit_text(note, 3, delete=1, insert="there")
    assert board.element(shape)["shape"] == "ellipse"
    assert board.element(note)["text"] == "Hi there"
    assert isinstance(board.doc.get("elements", type=Map)[note]["text"], Text)
    with pytest.raises(ValueError, match="not a text"):
        board.edit_text(shape, 0, insert="x")
    with pytest.raises(ValueError, match="must not be negative"):
        board.add_shape("rect", 0, 0, -1, 1)
    with pytest.raises(ValueError, match="shape must not be empty"):
        board.add_shape("", 0, 0, 1, 1)


def test_connectors_follow_their_endpoints() -> None:
    board = canvas()
    a, b, c = (board.add_card("d", str(n), n, 0) for n in range(3))
    link = board.add_connector(a, b, color="#333")
    other = board.add_connector(b, c)
    assert board.element(link)["from"] == a and board.element(link)["to"] == b
    for bad, message in [
        ((a, a), "two different"),
        ((a, "zz"), "unknown element"),
        ((a, link), "cannot connect connector"),
    ]:
        with pytest.raises(ValueError, match=message):
            board.add_connector(*bad)
    for move in (board.move, board.resize):
        with pytest.raises(ValueError, match="connector"):
            move(link, 1, 1)
    with pytest.raises(ValueError, match="connector"):
        board.rotate(link, 1)
    assert board.delete(a) == [a, link]
    assert sorted(board.to_json()["elements"]) == sorted([b, c, other])


def test_move_resize_rotate_color() -> None:
    board = canvas()
    card = board.add_card("d", "x", 0, 0)
    board.move(card, 5, -6.5)
    board.resize(card, 50, 70)
    board.rotate(card, 725)
    board.set_color(card, "blue")
    view = board.element(card)
    assert (view["x"], view["y"], view["w"], view["h"]) == (5.0, -6.5, 50.0, 70.0)
    assert (view["rotation"], view["color"]) == (5.0, "blue")
    board.set_color(card, None)
    board.rotate(card, -1e-20)
    assert board.element(card)["color"] is None and board.element(card)["rotation"] == 0.0
    with pytest.raises(ValueError, match="x must be a number"):
        board.move(card, "1", 2)
    with pytest.raises(ValueError, match="unknown element id"):
        board.move("missing", 1, 2)
    with pytest.raises(ValueError, match="color must not be empty"):
        board.set_color(card, "")


def test_paint_order_and_bring_to_front() -> None:
    board = canvas()
    first, second, third = (board.add_shape("rect", 0, 0, 1, 1) for _ in range(3))
    assert [view["z"] for view in board.elements()] == [0.0, 1.0, 2.0]
    board.bring_to_front(first)
    assert [view["id"] for view in board.elements()] == [second, third, first]
    board.bring_to_front(first)  # already on top: stays there
    assert board.elements()[-1]["id"] == first


CANVAS_MUTATIONS: list[Callable[[Canvas, dict[str, str]], object]] = [
    lambda board, el: board.init("again"),
    lambda board, el: board.rename("x"),
    lambda board, el: board.set_background("x"),
    lambda board, el: board.add_card("d", "c", 0, 0),
    lambda board, el: board.add_stroke(0, 0, [1, 2, 3]),
    lambda board, el: board.extend_stroke(el["stroke"], [4, 5, 6, 7, 8, 9]),
    lambda board, el: board.add_shape("rect", 0, 0, 1, 1),
    lambda board, el: board.add_text("t", 0, 0),
    lambda board, el: board.edit_text(el["text"], 0, delete=1, insert="ab"),
    lambda board, el: board.add_connector(el["card"], el["text"]),
    lambda board, el: board.move(el["card"], 1, 1),
    lambda board, el: board.resize(el["card"], 1, 1),
    lambda board, el: board.rotate(el["card"], 1),
    lambda board, el: board.set_color(el["card"], "red"),
    lambda board, el: board.bring_to_front(el["card"]),
    lambda board, el: board.delete(el["card"]),
]


@pytest.mark.parametrize("mutate", CANVAS_MUTATIONS)
def test_each_canvas_mutation_is_one_update(
    mutate: Callable[[Canvas, dict[str, str]], object],
) -> None:
    board = canvas()
    elements = {
        "card": board.add_card("d", "c", 0, 0),
        "stroke": board.add_stroke(0, 0, [0, 0, 1]),
        "text": board.add_text("hello", 0, 0),
    }
    board.add_connector(elements["card"], elements["stroke"])
    with updates(board.doc) as seen:
        mutate(board, elements)
    assert len(seen) == 1


def test_concurrent_canvas_edits_converge() -> None:
    left = canvas("l", author="ana")
    right = Canvas(Doc(), author="bo", now=FakeClock(), new_id=ids("r"))
    card = left.add_card("tarot", "fool", 0, 0)
    note = left.add_text("note", 0, 0)
    sync(left.doc, right.doc)
    left.move(card, 10, 10)
    right.move(card, 20, 20)
    left.edit_text(note, 4, insert=" A")
    right.edit_text(note, 0, insert="B ")
    right.bring_to_front(card)
    left.add_connector(card, note)
    right.delete(note)
    sync(left.doc, right.doc)
    assert left.to_json() == right.to_json()
    assert left.element(card)["x"] in (10.0, 20.0)
    assert note not in left.to_json()["elements"]
