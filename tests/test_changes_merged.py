"""Decoded changes of updates holding more than one edit, and edge cases."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Doc, Map

from crdt.changes import ChangeDecoder, decode_changes
from crdt.schemas import Canvas, Journal
from crdt.updates import EMPTY_UPDATE, merge
from tests.support.change_docs import Follower, bare, ids

# --- updates that hold more than one edit ------------------------------------------------------


def replicas(make: Callable[[Doc], Any], seed: Callable[[Any], Any]) -> tuple[Any, Any, bytes]:
    """Two replicas of one seeded document, and the seeded state."""
    first = make(Doc())
    seed(first)
    state = first.doc.get_update()
    second = make(Doc())
    second.doc.apply_update(state)
    return first, second, state


def concurrent(first: Any, second: Any, state: bytes, edit_first: Any, edit_second: Any) -> bytes:
    """Edit both replicas without either seeing the other; return both edits as one update."""
    before = first.doc.get_state()
    edit_first(first)
    edit_second(second)
    update = merge([first.doc.get_update(before), second.doc.get_update(before)])
    for replica in (first, second):
        replica.doc.apply_update(update)
    assert first.to_json() == second.to_json()
    return update


def test_concurrent_moves_merged_report_the_winner() -> None:
    a, b, state = replicas(
        lambda doc: Canvas(doc, new_id=lambda: "card"),
        lambda c: (c.init(), c.add_card("d", "x", 0, 0), c.add_text("", 0, 0)),
    )
    update = concurrent(
        a,
        b,
        state,
        lambda c: c.move("card", 10, 10),
        lambda c: (c.move("card", 50, 60), c.set_color("card", "red")),
    )
    changes = decode_changes(state, update, principal="svc")
    final = a.element("card")
    assert [bare(c) for c in changes] == [
        {"type": "element_moved", "x": final["x"], "y": final["y"], "old_x": 0.0, "old_y": 0.0},
        {"type": "element_recolored", "color": "red", "old_color": None},
    ]


def test_concurrent_text_edits_merged_apply_in_order() -> None:
    a, b, state = replicas(
        lambda doc: Journal(doc, new_id=lambda: "e"),
        lambda j: (j.init(), j.create_entry("t", "abcdefgh")),
    )
    update = concurrent(
        a,
        b,
        state,
        lambda j: (j.edit_body("e", 0, insert="<"), j.edit_body("e", 3, delete=3)),  # "cde"
        lambda j: (j.edit_body("e", 8, insert="🌙"), j.edit_body("e", 3, delete=3)),  # "def"
    )
    changes = decode_changes(state, update)
    assert all(c.type == "entry_text_changed" for c in changes)
    text = "abcdefgh"
    for change in changes:
        index, deleted = change["index"], change["deleted"]
        assert text[index : index + len(deleted)] == deleted
        text = text[:index] + change["inserted"] + text[index + len(deleted) :]
    assert text == a.entry("e")["body"] == "<abgh🌙"
    assert "".join(c["deleted"] for c in changes) == "cdef"


def test_edit_of_a_concurrently_deleted_element_is_only_a_delete() -> None:
    a, b, state = replicas(
        lambda doc: Canvas(doc, new_id=lambda: "t"),
        lambda c: (c.init(), c.add_text("hi", 0, 0)),
    )
    update = concurrent(
        a,
        b,
        state,
        lambda c: c.delete("t"),
        lambda c: (c.move("t", 9, 9), c.edit_text("t", 0, insert="x")),
    )
    assert [(c.type, c.id) for c in decode_changes(state, update)] == [("element_deleted", "t")]


def test_stroke_points_from_a_concurrent_replica_land_inside_the_array() -> None:
    """Both replicas append to one stroke; the one with the lower client id sorts first, so
    its points, arriving second, go in before the points already there."""
    a = Canvas(Doc(client_id=2), new_id=lambda: "s")
    a.init()
    a.add_stroke(0, 0, [0, 0, 1])
    state = a.doc.get_update()
    b = Canvas(Doc(client_id=1))
    b.doc.apply_update(state)
    decoder = ChangeDecoder(state)
    updates = []
    for replica, points in ((a, [1, 1, 1]), (b, [2, 2, 1, 3, 3, 1])):
        before = replica.doc.get_state()
        replica.extend_stroke("s", points)
        updates.append(replica.doc.get_update(before))
    drawn = []
    for update in updates:
        a.doc.apply_update(update)
        drawn += [c for c in decoder.apply(update) if c.type == "stroke_drawn"]
    assert [(c["index"], c["points"]) for c in drawn] == [
        (3, [1.0, 1.0, 1.0]),
        (3, [2.0, 2.0, 1.0, 3.0, 3.0, 1.0]),
    ]
    assert a.element("s")["points"] == [0, 0, 1, 2, 2, 1, 3, 3, 1, 1, 1, 1]
    before = a.doc.get_state()
    a.extend_stroke("s", [4, 4, 1])
    [*_, more] = decoder.apply(a.doc.get_update(before))
    assert (more.type, more["index"], more["points"]) == ("stroke_drawn", 12, [4.0, 4.0, 1.0])
    whole = a.element("s")["points"]
    before = a.doc.get_state()
    del a.doc.get("elements", type=Map)["s"]["points"][0:3]  # not an edit the helpers make
    [removed] = decoder.apply(a.doc.get_update(before))
    assert bare(removed) == {
        "type": "element_field_changed",
        "field": "points",
        "value": whole[3:],
        "old_value": whole,
    }


def test_created_and_edited_in_one_update_is_one_creation(canvas: tuple[Canvas, Follower]) -> None:
    board, follower = canvas

    def edit() -> None:
        card = board.add_card("tarot", "fool", 0, 0)
        board.move(card, 7, 8)
        board.set_color(card, "blue")
        text = board.add_text("ab", 0, 0)
        board.edit_text(text, 1, insert="X")
        board.delete(board.add_shape("rect", 0, 0, 1, 1))  # created and deleted: not reported

    first, second = follower.step(edit)
    assert first.type == "element_added"
    assert (first["x"], first["y"], first["color"]) == (7.0, 8.0, "blue")
    assert (second.type, second["text"]) == ("element_added", "aXb")


def test_whole_document_as_one_update_is_its_creation() -> None:
    book = Journal.create("Dreams", new_id=ids("e"))
    for title in ("b", "a"):
        book.create_entry(title, tags=["x", "x"])
    changes = decode_changes(None, book.doc.get_update(), principal="p")
    assert [(c.type, c.id) for c in changes] == [
        ("journal_created", None),
        ("entry_created", "e000"),
        ("entry_created", "e001"),
    ]
    assert changes[1]["tags"] == ["x"]


def test_content_that_arrives_before_the_schema_is_created_with_it() -> None:
    doc: Doc = Doc()
    board = Canvas(doc, new_id=lambda: "card")
    decoder = ChangeDecoder()
    board.add_card("d", "c", 0, 0)
    [unknown] = decoder.apply(doc.get_update())
    assert (unknown.type, unknown.schema, unknown["value"]) == ("unknown_schema", None, None)
    before = doc.get_state()
    board.init("late")
    changes = decoder.apply(doc.get_update(before))
    assert [(c.type, c.id) for c in changes] == [
        ("canvas_created", None),
        ("element_added", "card"),
    ]


def test_unknown_schema_and_no_op_updates() -> None:
    doc: Doc = Doc()
    meta = doc.get("meta", type=Map)
    decoder = ChangeDecoder()
    meta["schema"] = "notes/1"
    [unknown] = decoder.apply(doc.get_update(), principal="p")
    assert unknown.to_json() == {
        "type": "unknown_schema",
        "schema": "notes/1",
        "id": None,
        "principal": "p",
        "value": "notes/1",
    }
    before = doc.get_state()
    doc.get("pages", type=Map)["p1"] = "x"  # a root this module does not know
    assert [c.type for c in decoder.apply(doc.get_update(before))] == ["unknown_schema"]
    assert decoder.apply(doc.get_update(before)) == []  # already applied
    assert decoder.apply(EMPTY_UPDATE) == []
    assert decode_changes(None, EMPTY_UPDATE) == []
    assert decoder.schema == "notes/1"


def test_change_json_is_plain_and_a_copy() -> None:
    board = Canvas.create("x", new_id=lambda: "s")
    board.add_stroke(0, 0, [1, 2, 3])
    changes = decode_changes(None, board.doc.get_update(), principal="p")
    drawn = changes[-1].to_json()
    assert json.loads(json.dumps(drawn)) == drawn
    drawn["points"].append(4.0)
    assert changes[-1]["points"] == [1.0, 2.0, 3.0]
    with pytest.raises(TypeError):
        changes[-1].data["points"] = []  # type: ignore[index]


def test_invalid_updates_raise_value_error() -> None:
    with pytest.raises(ValueError):
        decode_changes(None, b"\x01\x05")
    with pytest.raises(ValueError):
        ChangeDecoder(b"\xff")
