"""The journal/1 wrapper over a pycrdt document."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text

from crdt.schemas import (
    JOURNAL_SCHEMA,
    Canvas,
    Journal,
)
from tests.support.schema_docs import FakeClock, ids, journal, stamp, sync, updates


def test_journal_create_writes_meta() -> None:
    assert journal().to_json() == {
        "meta": {"schema": JOURNAL_SCHEMA, "title": "Dreams"},
        "entries": {},
    }


def test_defaults_mint_nanoids_and_utc_stamps() -> None:
    book = Journal.create("Real clock")
    entry_id = book.create_entry("t")
    assert re.fullmatch(r"[A-Za-z0-9_-]{21}", entry_id)
    created = book.entry(entry_id)["created_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", created)
    naive = Journal.create("naive", now=lambda: datetime(2024, 1, 1))
    with updates(naive.doc) as seen, pytest.raises(ValueError, match="timezone-aware"):
        naive.create_entry("t")
    assert seen == []


def test_journal_refuses_a_document_of_another_schema() -> None:
    doc = Canvas.create().doc
    with pytest.raises(ValueError, match="canvas/1"):
        Journal(doc)
    assert Journal(Doc()).title is None  # an empty (still syncing) doc is fine


def test_create_entry_layout_and_json_view() -> None:
    book = journal()
    entry_id = book.create_entry(
        "Monday", "Flying", mode="in-session", session_id="s1", prompt="Why?", tags=["a", "b", "a"]
    )
    assert entry_id == "e000"
    raw = book.doc.get("entries", type=Map)[entry_id]
    assert isinstance(raw["body"], Text) and isinstance(raw["tags"], Array)
    expected = {
        "title": "Monday",
        "body": "Flying",
        "created_at": stamp(0),
        "updated_at": stamp(0),
        "mode": "in-session",
        "session_id": "s1",
        "prompt": "Why?",
        "tags": ["a", "b"],
    }
    assert book.to_json()["entries"] == {entry_id: expected}
    assert book.entry(entry_id) == {**expected, "id": entry_id}
    assert book.entries() == [{**expected, "id": entry_id}]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "dream"}, "mode must be one of"),
        ({"mode": "in-session"}, "needs a session_id"),
        ({"mode": "in-session", "session_id": ""}, "must not be empty"),
        ({"session_id": "s1"}, "has no session_id"),
        ({"tags": [""]}, "tag must not be empty"),
        ({"prompt": 3}, "prompt must be a string"),
    ],
)
def test_create_entry_validates(kwargs: dict[str, Any], message: str) -> None:
    book = journal()
    with updates(book.doc) as seen, pytest.raises(ValueError, match=message):
        book.create_entry("t", **kwargs)
    assert seen == [] and book.entries() == []


def test_entry_edits_bump_updated_at() -> None:
    book = journal()
    entry_id = book.create_entry("Monday", "Hello")
    book.set_title(entry_id, "Tuesday")
    book.edit_body(entry_id, 5, insert=", world")
    book.edit_body(entry_id, 0, delete=1, insert="J")
    assert book.add_tag(entry_id, "lucid") is True
    assert book.add_tag(entry_id, "lucid") is False
    assert book.add_tag(entry_id, "flying") is True
    assert book.remove_tag(entry_id, "lucid") is True
    assert book.remove_tag(entry_id, "lucid") is False
    view = book.entry(entry_id)
    assert (view["title"], view["body"], view["tags"]) == ("Tuesday", "Jello, world", ["flying"])
    assert (view["created_at"], view["updated_at"]) == (stamp(0), stamp(6))


def test_rename_and_delete_entry() -> None:
    book = journal()
    first, second = book.create_entry("one"), book.create_entry("two")
    book.rename("Night notes")
    book.delete_entry(first)
    assert book.title == "Night notes"
    assert [view["id"] for view in book.entries()] == [second]


def test_entries_are_oldest_first() -> None:
    book = Journal.create("j", now=FakeClock(), new_id=iter(["z", "a", "m"]).__next__)
    for title in ("1", "2", "3"):
        book.create_entry(title)
    assert [view["title"] for view in book.entries()] == ["1", "2", "3"]


@pytest.mark.parametrize(
    "call",
    [
        lambda book: book.set_title("nope", "t"),
        lambda book: book.edit_body("nope", 0, insert="x"),
        lambda book: book.add_tag("nope", "t"),
        lambda book: book.remove_tag("nope", "t"),
        lambda book: book.delete_entry("nope"),
        lambda book: book.entry("nope"),
    ],
)
def test_unknown_entry_ids_are_refused(call: Callable[[Journal], object]) -> None:
    book = journal()
    with pytest.raises(ValueError, match="unknown entry id 'nope'"):
        call(book)


def test_bad_body_edit_changes_nothing() -> None:
    book = journal()
    entry_id = book.create_entry("t", "abc")
    with updates(book.doc) as seen, pytest.raises(ValueError):
        book.edit_body(entry_id, 2, delete=5)
    assert seen == [] and book.entry(entry_id)["updated_at"] == stamp(0)


JOURNAL_MUTATIONS: list[Callable[[Journal, str], object]] = [
    lambda book, entry: book.init("again"),
    lambda book, entry: book.rename("x"),
    lambda book, entry: book.create_entry("t", "b", tags=["a", "b"]),
    lambda book, entry: book.set_title(entry, "x"),
    lambda book, entry: book.edit_body(entry, 1, delete=1, insert="xyz"),
    lambda book, entry: book.add_tag(entry, "new"),
    lambda book, entry: book.remove_tag(entry, "old"),
    lambda book, entry: book.delete_entry(entry),
]


@pytest.mark.parametrize("mutate", JOURNAL_MUTATIONS)
def test_each_journal_mutation_is_one_update(mutate: Callable[[Journal, str], object]) -> None:
    book = journal()
    entry_id = book.create_entry("t", "body", tags=["old", "older"])
    with updates(book.doc) as seen:
        mutate(book, entry_id)
    assert len(seen) == 1


def test_concurrent_journal_edits_converge() -> None:
    left, right = journal("l"), Journal(Doc(), now=FakeClock(), new_id=ids("r"))
    entry_id = left.create_entry("Shared", "Hello world")
    sync(left.doc, right.doc)
    left.edit_body(entry_id, 5, insert=", dear")
    right.edit_body(entry_id, 11, insert="!")
    left.add_tag(entry_id, "both")
    right.add_tag(entry_id, "both")
    right.create_entry("Mine")
    sync(left.doc, right.doc)
    assert left.to_json() == right.to_json()
    assert left.entry(entry_id)["body"] == "Hello, dear world!"
    assert left.to_json()["entries"][entry_id]["tags"] == ["both", "both"]  # raw document
    assert left.entry(entry_id)["tags"] == ["both"]  # application view
    right.remove_tag(entry_id, "both")
    sync(left.doc, right.doc)
    assert left.entry(entry_id)["tags"] == []
