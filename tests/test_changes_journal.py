"""Decoded changes of journal/1 edits made with the crdt.schemas helpers."""

from __future__ import annotations

from pycrdt import Map, Text

from crdt.schemas import Journal
from crdt.updates import merge
from tests.support.change_docs import STAMP, Follower, bare

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
