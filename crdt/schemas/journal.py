"""Typed helpers for the `journal/1` document schema (DESIGN.md §1.8).

Layout, as a JS `Y.Doc` reader sees it::

    meta:    Y.Map {schema: "journal/1", title: string}
    entries: Y.Map {<entry id>: Y.Map {
        title: string, body: Y.Text,
        created_at: string, updated_at: string,      // ISO 8601 UTC, "...T12:00:00.000Z"
        mode: "standalone" | "in-session",
        session_id: string | null, prompt: string | null,
        tags: Y.Array<string>,
    }}

The schema has no numeric fields. Ids, timestamps and text indexes follow `_common`.
Every mutating method runs in exactly one transaction, so it reaches peers as one Yjs update;
wrap several calls in `with journal.doc.transaction():` to send them as one.
Tags behave as a set for the application: `add_tag` skips a tag already present, but two
replicas adding the same tag offline both append it, so `to_json()` (the raw document) may show
it twice while `entry()`/`entries()` show each tag once; `remove_tag` removes every copy.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, get_args

from pycrdt import Array, Doc, Map, Text

from ._common import Clock, IdFactory, check_str, iso_utc, new_id, plain, splice_text, utc_now

__all__ = ["JOURNAL_SCHEMA", "MODES", "Journal", "Mode"]

JOURNAL_SCHEMA = "journal/1"

Mode = Literal["standalone", "in-session"]
MODES: tuple[str, ...] = get_args(Mode)


class Journal:
    """A `journal/1` view over a `pycrdt.Doc`; holds no state of its own besides the doc.

    Example::

        journal = Journal.create("Dream log")
        entry_id = journal.create_entry("Monday", "Flying again")
        journal.edit_body(entry_id, 0, insert="Note: ")
        update = journal.doc.get_update()   # send to peers
    """

    def __init__(self, doc: Doc, *, now: Clock = utc_now, new_id: IdFactory = new_id) -> None:
        """Wrap `doc`; raise `ValueError` if it already carries another schema.

        A doc without `meta.schema` is accepted: it may be empty or still syncing.
        """
        self._doc = doc
        self._now = now
        self._new_id = new_id
        self._meta = doc.get("meta", type=Map)
        self._entries = doc.get("entries", type=Map)
        schema = self._meta.get("schema")
        if schema is not None and schema != JOURNAL_SCHEMA:
            raise ValueError(f"document has schema {schema!r}, not {JOURNAL_SCHEMA!r}")

    @classmethod
    def create(
        cls, title: str = "", *, now: Clock = utc_now, new_id: IdFactory = new_id
    ) -> Journal:
        """Return a journal on a fresh `Doc`, with its `meta` written."""
        journal = cls(Doc(), now=now, new_id=new_id)
        journal.init(title)
        return journal

    @property
    def doc(self) -> Doc:
        """The underlying document, for sync and persistence."""
        return self._doc

    @property
    def title(self) -> str | None:
        """The journal title, or None before `meta` has arrived."""
        return self._meta.get("title")

    def init(self, title: str = "") -> None:
        """Write `meta` (schema and title). Safe on replicas that do it concurrently."""
        check_str("title", title)
        with self._doc.transaction():
            self._meta["schema"] = JOURNAL_SCHEMA
            self._meta["title"] = title

    def rename(self, title: str) -> None:
        """Set the journal title (last writer wins)."""
        check_str("title", title)
        with self._doc.transaction():
            self._meta["title"] = title

    def create_entry(
        self,
        title: str,
        body: str = "",
        *,
        mode: Mode = "standalone",
        session_id: str | None = None,
        prompt: str | None = None,
        tags: Iterable[str] = (),
    ) -> str:
        """Add an entry and return its new random id.

        `mode="in-session"` needs the `session_id` of the session it was written in;
        a standalone entry has none.
        """
        check_str("title", title)
        check_str("body", body)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if mode == "in-session":
            if session_id is None:
                raise ValueError("an in-session entry needs a session_id")
            check_str("session_id", session_id, allow_empty=False)
        elif session_id is not None:
            raise ValueError("a standalone entry has no session_id")
        if prompt is not None:
            check_str("prompt", prompt)
        tag_list = _unique([check_str("tag", tag, allow_empty=False) for tag in tags])
        entry_id = self._new_id()
        stamp = self._stamp()
        with self._doc.transaction():
            self._entries[entry_id] = Map(
                {
                    "title": title,
                    "body": Text(body),
                    "created_at": stamp,
                    "updated_at": stamp,
                    "mode": mode,
                    "session_id": session_id,
                    "prompt": prompt,
                    "tags": Array(tag_list),
                }
            )
        return entry_id

    def set_title(self, entry_id: str, title: str) -> None:
        """Set an entry's title (last writer wins)."""
        check_str("title", title)
        entry = self._entry_map(entry_id)
        stamp = self._stamp()
        with self._doc.transaction():
            entry["title"] = title
            entry["updated_at"] = stamp

    def edit_body(self, entry_id: str, index: int, *, delete: int = 0, insert: str = "") -> None:
        """Delete `delete` characters at `index` of the body, then insert `insert` there.

        Indexes count Python characters; concurrent edits from other replicas merge.
        """
        entry = self._entry_map(entry_id)
        stamp = self._stamp()
        with self._doc.transaction():
            splice_text(entry["body"], index, delete, insert)  # validates before writing
            entry["updated_at"] = stamp

    def add_tag(self, entry_id: str, tag: str) -> bool:
        """Append `tag` unless present; return whether it was added."""
        check_str("tag", tag, allow_empty=False)
        entry = self._entry_map(entry_id)
        tags: Array = entry["tags"]
        if tag in tags.to_py():
            return False
        stamp = self._stamp()
        with self._doc.transaction():
            tags.append(tag)
            entry["updated_at"] = stamp
        return True

    def remove_tag(self, entry_id: str, tag: str) -> bool:
        """Remove every copy of `tag`; return whether there was one."""
        entry = self._entry_map(entry_id)
        tags: Array = entry["tags"]
        positions = [i for i, value in enumerate(tags.to_py()) if value == tag]
        if not positions:
            return False
        stamp = self._stamp()
        with self._doc.transaction():
            for i in reversed(positions):
                del tags[i]
            entry["updated_at"] = stamp
        return True

    def delete_entry(self, entry_id: str) -> None:
        """Remove an entry; concurrent edits to it are dropped once peers sync."""
        self._entry_map(entry_id)
        with self._doc.transaction():
            del self._entries[entry_id]

    def entry(self, entry_id: str) -> dict[str, Any]:
        """Return one entry as plain values, with its `id` and de-duplicated `tags`."""
        return _entry_view(entry_id, self._entry_map(entry_id))

    def entries(self) -> list[dict[str, Any]]:
        """Return all entries (see `entry`), oldest first, ties broken by id."""
        views = [_entry_view(key, value) for key, value in self._entries.items()
                 if isinstance(value, Map)]
        return sorted(views, key=lambda view: (str(view.get("created_at")), view["id"]))

    def to_json(self) -> dict[str, Any]:
        """Return the whole document as plain JSON values, keys sorted, nothing cleaned up."""
        return {"meta": plain(self._meta), "entries": plain(self._entries)}

    def _entry_map(self, entry_id: str) -> Map:
        entry = self._entries.get(entry_id) if isinstance(entry_id, str) else None
        if not isinstance(entry, Map):
            raise ValueError(f"unknown entry id {entry_id!r}")
        return entry

    def _stamp(self) -> str:
        return iso_utc(self._now())


def _entry_view(entry_id: str, entry: Map) -> dict[str, Any]:
    view = plain(entry)
    view["id"] = entry_id
    view["tags"] = _unique(view.get("tags") or [])
    return view


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))
