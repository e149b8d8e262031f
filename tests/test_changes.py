"""Tests for crdt.changes: Yjs updates of journal/1 and canvas/1 documents as semantic changes.

Edits are made with the crdt.schemas helpers. `Follower` feeds each update both to a streaming
`ChangeDecoder` and to the stateless `decode_changes` (with the state before it) and checks that
they agree, so every test covers both. The property tests replay the decoded changes onto a
plain model and require it to equal the document's JSON view after every update.
(tests/test_changes_yjs.py checks updates written by a stock yjs client.)
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Map, Text

from crdt.changes import Change, ChangeDecoder, decode_changes
from crdt.schemas import CANVAS_SCHEMA, JOURNAL_SCHEMA, Canvas, Journal
from crdt.updates import EMPTY_UPDATE, merge

START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
STAMP = "2024-05-01T12:00:00.000Z"


def clock() -> Callable[[], datetime]:
    ticks = itertools.count()
    return lambda: START + timedelta(seconds=next(ticks))


def ids(prefix: str) -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter):03d}"


def bare(change: Change) -> dict[str, Any]:
    """A change as JSON without the fields every change has."""
    data = change.to_json()
    for key in ("schema", "id", "principal"):
        data.pop(key)
    return data


class Follower:
    """Follows one document update by update, decoding each both ways."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc
        self.decoder = ChangeDecoder()
        self.states: list[bytes] = []

    def decode(self, update: bytes, principal: str | None = "ana") -> list[Change]:
        before = merge(self.states) if self.states else None
        changes = self.decoder.apply(update, principal=principal)
        again = decode_changes(before, update, principal=principal)
        assert [c.to_json() for c in again] == [c.to_json() for c in changes]
        assert all(change.principal == principal for change in changes)
        self.states.append(update)
        return changes

    def step(self, edit: Callable[[], Any], principal: str | None = "ana") -> list[Change]:
        """Run `edit` as one transaction on the followed doc and decode its update."""
        before = self.doc.get_state()
        with self.doc.transaction():
            edit()
        return self.decode(self.doc.get_update(before), principal)


@pytest.fixture
def journal() -> Iterator[tuple[Journal, Follower]]:
    book = Journal(Doc(), now=clock(), new_id=ids("e"))
    follower = Follower(book.doc)
    [created] = follower.step(lambda: book.init("Dreams"))
    assert (created.type, created.schema, created.id) == ("journal_created", JOURNAL_SCHEMA, None)
    assert bare(created) == {"type": "journal_created", "title": "Dreams"}
    yield book, follower


@pytest.fixture
def canvas() -> Iterator[tuple[Canvas, Follower]]:
    board = Canvas(Doc(), author="ana", now=clock(), new_id=ids("c"))
    follower = Follower(board.doc)
    [created] = follower.step(lambda: board.init("Reading", background="#fff"))
    assert (created.type, created.schema) == ("canvas_created", CANVAS_SCHEMA)
    assert bare(created) == {
        "type": "canvas_created",
        "title": "Reading",
        "template": "blank",
        "background": "#fff",
    }
    yield board, follower


# --- journal/1 --------------------------------------------------------------------------------


def test_entry_lifecycle(journal: tuple[Journal, Follower]) -> None:
    book, follower = journal
    entry: list[str] = []
    [created] = follower.step(
        lambda: entry.append(
            book.create_entry(
                "Monday",
                "Flying",
                mode="in-session",
                session_id="s1",
                prompt="Where?",
                tags=["lucid", "night"],
            )
        ),
        principal="bob",
    )
    (entry_id,) = entry
    assert created.id == entry_id and created.principal == "bob"
    assert bare(created) == {
        "type": "entry_created",
        "title": "Monday",
        "body": "Flying",
        "mode": "in-session",
        "session_id": "s1",
        "prompt": "Where?",
        "tags": ["lucid", "night"],
        "created_at": STAMP,
    }
    [title] = follower.step(lambda: book.set_title(entry_id, "Monday night"))
    assert bare(title) == {
        "type": "entry_title_changed",
        "title": "Monday night",
        "old_title": "Monday",
    }
    [tags] = follower.step(lambda: book.add_tag(entry_id, "flying"))
    assert bare(tags) == {"type": "entry_tags_changed", "added": ["flying"], "removed": []}
    [tags] = follower.step(lambda: book.remove_tag(entry_id, "lucid"))
    assert bare(tags) == {"type": "entry_tags_changed", "added": [], "removed": ["lucid"]}
    [renamed] = follower.step(lambda: book.rename("Night log"))
    assert bare(renamed) == {"type": "journal_renamed", "title": "Night log", "old_title": "Dreams"}
    [deleted] = follower.step(lambda: book.delete_entry(entry_id))
    assert deleted.id == entry_id
    assert bare(deleted) == {"type": "entry_deleted", "title": "Monday night"}


def test_body_edits_recover_the_deleted_text(journal: tuple[Journal, Follower]) -> None:
    book, follower = journal
    entry_id = book.create_entry("t", "Moon 🌙 over the sea")
    follower.decode(book.doc.get_update(merge(follower.states)))
    [inserted] = follower.step(lambda: book.edit_body(entry_id, 7, insert="high "))
    assert bare(inserted) == {
        "type": "entry_text_changed",
        "index": 7,
        "deleted": "",
        "inserted": "high ",
    }
    [replaced] = follower.step(lambda: book.edit_body(entry_id, 5, delete=7, insert="✈ "))
    assert bare(replaced) == {
        "type": "entry_text_changed",
        "index": 5,
        "deleted": "🌙 high ",
        "inserted": "✈ ",
    }
    assert book.entry(entry_id)["body"] == "Moon ✈ over the sea"


def test_mode_and_other_fields_written_directly(journal: tuple[Journal, Follower]) -> None:
    """The helpers have no setter for mode or prompt; another client may still write them."""
    book, follower = journal
    entry_id = book.create_entry("t")
    follower.decode(book.doc.get_update(merge(follower.states)))
    entry = book.doc.get("entries", type=Map)[entry_id]

    def to_session() -> None:
        entry["mode"] = "in-session"
        entry["session_id"] = "s9"
        entry["prompt"] = "Why?"
        entry["updated_at"] = "2030-01-01T00:00:00.000Z"  # bookkeeping: reported nowhere

    mode, prompt = follower.step(to_session)
    assert bare(mode) == {
        "type": "entry_mode_changed",
        "mode": "in-session",
        "session_id": "s9",
        "old_mode": "standalone",
        "old_session_id": None,
    }
    assert bare(prompt) == {
        "type": "entry_field_changed",
        "field": "prompt",
        "value": "Why?",
        "old_value": None,
    }
    assert follower.step(lambda: entry.__setitem__("title", "t")) == []  # same value: nothing


def test_replaced_body_is_one_whole_text_change(journal: tuple[Journal, Follower]) -> None:
    book, follower = journal
    entry_id = book.create_entry("t", "old body")
    follower.decode(book.doc.get_update(merge(follower.states)))
    entry = book.doc.get("entries", type=Map)[entry_id]
    [change] = follower.step(lambda: entry.__setitem__("body", Text("new")))
    assert bare(change) == {
        "type": "entry_text_changed",
        "index": 0,
        "deleted": "old body",
        "inserted": "new",
    }


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


# --- properties: replaying the changes rebuilds the document ----------------------------------


def replay(model: dict[str, Any], changes: list[Change]) -> None:
    """Apply decoded changes to `model` = {"meta": {...}, "items": {id: {...}}}."""
    for change in changes:
        data = bare(change)
        kind = data.pop("type")
        item = model["items"].get(change.id)
        if kind.endswith("_created") and change.id is None:
            model["meta"] = {"schema": change.schema, **data}
            model["items"] = {}
        elif kind == "journal_renamed":
            model["meta"]["title"] = data["title"]
        elif kind.endswith("_meta_changed"):
            model["meta"][data["field"]] = data["value"]
        elif kind in ("entry_created", "element_added"):
            assert change.id not in model["items"]
            if data.get("kind") == "stroke":
                data["points"] = []
            if kind == "entry_created":
                data["tags"] = set(data["tags"])
            model["items"][change.id] = data
        elif kind in ("entry_deleted", "element_deleted"):
            del model["items"][change.id]
        elif kind in ("entry_text_changed", "text_changed"):
            field = "body" if kind == "entry_text_changed" else "text"
            text, index, deleted = item[field], data["index"], data["deleted"]
            assert text[index : index + len(deleted)] == deleted
            item[field] = text[:index] + data["inserted"] + text[index + len(deleted) :]
        elif kind == "entry_tags_changed":
            assert not set(data["added"]) & item["tags"] and set(data["removed"]) <= item["tags"]
            item["tags"] = (item["tags"] - set(data["removed"])) | set(data["added"])
        elif kind == "stroke_drawn":
            item["points"][data["index"] : data["index"]] = data["points"]
            assert (data["color"], data["width"]) == (item["color"], item["width"])
        elif kind.endswith("_field_changed"):
            item[data["field"]] = data["value"]
        else:  # title, mode, geometry and style changes: new values under the field names
            for field, value in data.items():
                if not field.startswith("old_"):
                    assert item[field] == data["old_" + field]
                    item[field] = value


def view(doc: Doc) -> dict[str, Any]:
    """The document's JSON view in the model's shape (tags as sets, no `updated_at`)."""
    meta = doc.get("meta", type=Map).to_py() or {}
    if meta.get("schema") == JOURNAL_SCHEMA:
        items = Journal(doc).to_json()["entries"]
        for entry in items.values():
            entry.pop("updated_at")
            entry["tags"] = set(entry["tags"])
    else:
        items = Canvas(doc).to_json()["elements"]
    return {"meta": meta, "items": items}


TEXT = st.text(alphabet="ab é🌙✈", max_size=4)
NUMBER = st.integers(-500, 500).map(float)
PICK = st.integers(0, 50)


def journal_op(book: Journal, op: tuple[Any, ...]) -> None:
    name, pick, a, b, words = op
    entries = book.entries()
    if name == "create" or not entries:
        mode = "in-session" if pick % 2 else "standalone"
        book.create_entry(
            words,
            a,
            mode=mode,
            session_id="s" if pick % 2 else None,
            tags=[a, b] if a and b else [],
        )
        return
    entry = entries[pick % len(entries)]
    body = entry["body"]
    if name == "title":
        book.set_title(entry["id"], words)
    elif name == "edit":
        index = len(a) % (len(body) + 1)
        book.edit_body(entry["id"], index, delete=min(len(b), len(body) - index), insert=words)
        if pick % 2:  # a second splice in the same transaction: a delta with several runs
            book.edit_body(entry["id"], len(book.entry(entry["id"])["body"]), insert=b)
    elif name == "tag" and a:
        book.add_tag(entry["id"], a)
    elif name == "untag" and entry["tags"]:
        book.remove_tag(entry["id"], entry["tags"][len(a) % len(entry["tags"])])
    elif name == "mode":
        raw = book.doc.get("entries", type=Map)[entry["id"]]
        raw["mode"], raw["session_id"] = ("in-session", a) if a else ("standalone", None)
    elif name == "delete":
        book.delete_entry(entry["id"])
    elif name == "rename":
        book.rename(words)


def canvas_op(board: Canvas, op: tuple[Any, ...]) -> None:
    name, pick, x, y, words = op
    elements = board.elements()
    adders = {
        "card": lambda: board.add_card("tarot", words or "fool", x, y),
        "shape": lambda: board.add_shape("rect", x, y, abs(x), abs(y), rotation=y),
        "text": lambda: board.add_text(words, x, y),
        "stroke": lambda: board.add_stroke(x, y, [x, y, 0.5] * (pick % 3), width=abs(y)),
    }
    if name in adders or not elements:
        adders.get(name, adders["card"])()
        return
    wanted = {"extend": "stroke", "edit": "text"}.get(name)
    elements = [e for e in elements if e["kind"] == wanted] or elements if wanted else elements
    element = elements[pick % len(elements)]
    target, kind = element["id"], element["kind"]
    try:
        if name == "connect":
            board.add_connector(target, elements[int(x) % len(elements)]["id"])
        elif name == "move":
            board.move(target, x, y)
        elif name == "resize":
            board.resize(target, abs(x), abs(y))
        elif name == "rotate":
            board.rotate(target, x)
        elif name == "color":
            board.set_color(target, words or None)
        elif name == "front":
            board.bring_to_front(target)
        elif name == "delete":
            board.delete(target)
        elif name == "extend" and kind == "stroke":
            board.extend_stroke(target, [y, x, 1.0] * (1 + pick % 2))
        elif name == "edit" and kind == "text":
            text = element["text"]
            index = int(abs(x)) % (len(text) + 1)
            board.edit_text(
                target, index, delete=int(abs(y)) % (len(text) - index + 1), insert=words
            )
            if pick % 2:  # a second splice in the same transaction
                board.edit_text(target, 0, insert=words[::-1])
        elif name == "background":
            board.set_background(words or "none")
    except ValueError:  # not allowed for this kind (the helpers refuse before writing)
        pass


JOURNAL_OPS = st.tuples(
    st.sampled_from(
        ["create", "title", "edit", "edit", "tag", "untag", "mode", "delete", "rename"]
    ),
    PICK,
    TEXT,
    TEXT,
    TEXT,
)
CANVAS_OPS = st.tuples(
    st.sampled_from(
        [
            "card",
            "shape",
            "text",
            "stroke",
            "connect",
            "move",
            "resize",
            "rotate",
            "color",
            "front",
            "delete",
            "extend",
            "edit",
            "background",
        ]
    ),
    PICK,
    NUMBER,
    NUMBER,
    TEXT,
)
SCHEMAS = {
    "journal": (lambda doc, i: Journal(doc, new_id=ids(f"r{i}-")), journal_op, JOURNAL_OPS),
    "canvas": (
        lambda doc, i: Canvas(doc, author=f"u{i}", new_id=ids(f"r{i}-")),
        canvas_op,
        CANVAS_OPS,
    ),
}
PROPERTY = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY
@pytest.mark.parametrize("schema", sorted(SCHEMAS))
@given(data=st.data())
def test_replayed_changes_rebuild_the_document(schema: str, data: st.DataObject) -> None:
    """Random batches of edits on one replica, each batch one update."""
    make, apply_op, ops = SCHEMAS[schema]
    doc: Doc = Doc()
    wrapper = make(doc, 0)
    follower = Follower(doc)
    model: dict[str, Any] = {"meta": {}, "items": {}}
    replay(model, follower.step(lambda: wrapper.init("start")))
    for batch in data.draw(st.lists(st.lists(ops, min_size=1, max_size=4), max_size=8)):
        changes = follower.step(lambda batch=batch: [apply_op(wrapper, op) for op in batch])
        replay(model, changes)
        assert model == view(doc)


@PROPERTY
@pytest.mark.parametrize("schema", sorted(SCHEMAS))
@given(data=st.data())
def test_replayed_changes_follow_a_replica_that_merges(schema: str, data: st.DataObject) -> None:
    """Two replicas edit concurrently; the decoder follows the first one, whose updates are
    its own edits and the other's edits merged into one update whenever they sync."""
    make, apply_op, ops = SCHEMAS[schema]
    first, second = make(Doc(), 1), make(Doc(), 2)
    first.init("start")
    second.doc.apply_update(first.doc.get_update())
    decoder = ChangeDecoder(first.doc.get_update())
    model = {"meta": {}, "items": {}}
    replay(model, decode_changes(None, first.doc.get_update()))
    steps = st.one_of(st.tuples(st.sampled_from([1, 2]), ops), st.just((0, None)))
    for who, op in [*data.draw(st.lists(steps, max_size=25)), (0, None)]:
        before = first.doc.get_state()
        if who == 0:  # sync: the second replica's edits reach the first as one update
            first.doc.apply_update(second.doc.get_update(before))
            second.doc.apply_update(first.doc.get_update(second.doc.get_state()))
        else:
            apply_op(first if who == 1 else second, op)
        update = first.doc.get_update(before)
        replay(model, decoder.apply(update, principal=f"p{who}"))
        assert model == view(first.doc)
