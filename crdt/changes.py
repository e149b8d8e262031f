"""Semantic changes of `journal/1` and `canvas/1` documents, decoded from Yjs updates.

An analytics service wants "entry X got a new tag", not CRDT structs. `decode_changes` applies an
update to the state before it and says what happened; `ChangeDecoder` does the same for a stream
of updates to one document while keeping that document (and a plain copy of it) in memory.

Example::

    decoder = ChangeDecoder(state_before)            # None for an empty document
    for event in feed:
        for change in decoder.apply(event.update, principal=event.principal):
            print(change.to_json())  # {"type": "element_moved", "id": "...", "x": 40.0, ...}

How: pycrdt observers say *where* the update changed the document (which entries or elements,
which of their fields, and for a Y.Text or Y.Array the exact delta); a plain copy of the
document as it was before the update (the *shadow*, kept up to date field by field) says what
was there; the document after the update says what is there now. Observers alone would not do:
their text deltas only count the deleted UTF-8 bytes, and a deleted entry arrives as a dead
`Map` whose content is gone. A diff of two JSON views alone would not do either: it cannot place an
insertion into "aa", and it turns two concurrent insertions into one wide replacement. The mix
is robust to what real updates hold:

- Concurrent edits merged into one update report the net effect per field (an element moved by
  two replicas is one `element_moved` to the winning position); text and array deltas keep each
  insertion apart.
- An entry or element created in an update is one `entry_created`/`element_added` with its state
  at the end of that update, whatever else the update did to it; one created and deleted in the
  same update is not reported at all; a field set to the value it had reports nothing.
- Changes of one update come in a fixed order: the document's own (`*_created`, meta) first, then
  per entry/element in id order, its field changes before its text and stroke changes (a
  `stroke_drawn` carries the colour and width the update left). A merged update has no inner
  order left to recover; replaying the changes in this order rebuilds the document.
- A document becomes a journal or canvas when an update sets `meta.schema`: that update yields
  `journal_created`/`canvas_created` followed by the creation of everything already in it.
- A document whose `meta.schema` is neither (another schema, or none yet) yields one
  `unknown_schema` change (field `value`: the schema, or None) per update that changed anything,
  so a consumer can see what it skips; an update that changes nothing yields `[]`.

Text indexes count characters (code points) as the `crdt.schemas` helpers do; the changes of one
text in one update are to be applied in order (each index is in the text the previous ones left).
Every change carries the update's `principal`. Change types and their fields, besides `type`,
`schema`, `id` (entry/element id, None for the document) and `principal`; `old_*` is the value
before the update:

    journal_created      title                      journal_renamed      title, old_title
    journal_meta_changed field, value, old_value    (meta keys other than schema and title)
    entry_created        title, body, mode, session_id, prompt, tags, created_at
    entry_title_changed  title, old_title           entry_deleted        title
    entry_text_changed   index, deleted, inserted   entry_tags_changed   added, removed
    entry_mode_changed   mode, session_id, old_mode, old_session_id
    entry_field_changed  field, value, old_value    (prompt, created_at, unknown fields)
    canvas_created       title, template, background
    canvas_meta_changed  field, value, old_value
    element_added        kind, x, y, w, h, rotation, z, color, author, created_at, and by kind:
                         card: deck, card_id; stroke: width; shape: shape; text: text;
                         connector: from, to
    element_moved        x, y, old_x, old_y         element_resized      w, h, old_w, old_h
    element_rotated      rotation, old_rotation     element_recolored    color, old_color
    element_reordered    z, old_z                   element_deleted      kind
    stroke_drawn         points (flat x,y,pressure), index (in `points`), new_stroke, color, width
    text_changed         index, deleted, inserted   (text elements)
    element_field_changed field, value, old_value   (anything else; `points` when some are removed)
    unknown_schema       value

A new stroke is an `element_added` then a `stroke_drawn` with its points (none if it has no
points); appending points to a stroke is a `stroke_drawn` with `new_stroke` False. `updated_at`
of entries is bookkeeping and reported nowhere. Pure code: no I/O, no asyncio.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any

from pycrdt import ArrayEvent, Doc, Map, MapEvent, TextEvent, TransactionEvent

from .schemas import CANVAS_SCHEMA, JOURNAL_SCHEMA
from .schemas._common import plain

__all__ = ["Change", "ChangeDecoder", "decode_changes"]

_COLLECTION = {JOURNAL_SCHEMA: "entries", CANVAS_SCHEMA: "elements"}
_TEXT_FIELD = {"entries": "body", "elements": "text"}
_ELEMENT_COMMON = ("kind", "x", "y", "w", "h", "rotation", "z", "color", "author", "created_at")
_KIND_FIELDS = {
    "card": ("deck", "card_id"),
    "stroke": ("width",),
    "shape": ("shape",),
    "text": ("text",),
    "connector": ("from", "to"),
}
_CANVAS_GROUPS = (
    ("element_moved", ("x", "y")),
    ("element_resized", ("w", "h")),
    ("element_rotated", ("rotation",)),
    ("element_recolored", ("color",)),
    ("element_reordered", ("z",)),
)
_ENTRY_FIELDS = ("title", "body", "mode", "session_id", "prompt", "tags", "created_at")


@dataclass(frozen=True)
class Change:
    """One semantic change; `data` holds the type's own fields (see the module docstring)."""

    type: str
    schema: str | None
    id: str | None
    principal: str | None
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __getitem__(self, name: str) -> Any:
        return self.data[name]

    def to_json(self) -> dict[str, Any]:
        """Return the change as one flat dict of plain JSON values (a copy)."""
        head = {"type": self.type, "schema": self.schema, "id": self.id}
        return {**head, "principal": self.principal, **copy.deepcopy(dict(self.data))}


def decode_changes(
    before: bytes | None, update: bytes, *, principal: str | None = None
) -> list[Change]:
    """Return the changes `update` makes to the document whose state is `before`.

    Args:
        before: the whole document before `update`, as one Yjs update; None for an empty one.
        update: a Yjs v1 update.
        principal: who wrote `update`; copied onto every change.

    Raises `ValueError` when either update does not decode. Loading `before` costs as much as
    the document is large: to follow one document through many updates, use `ChangeDecoder`.
    """
    return ChangeDecoder(before).apply(update, principal=principal)


@dataclass
class _Touch:
    """Where an update touched one entry/element: whole fields, and sequence deltas."""

    fields: set[str] = field(default_factory=set)
    deltas: dict[str, tuple[str, list[dict[str, Any]]]] = field(default_factory=dict)


class ChangeDecoder:
    """Decodes a stream of updates to one document into `Change`s; one pycrdt `Doc` inside.

    Each `apply` costs in proportion to what the update touches (plus the length of an edited
    text), not to the size of the document.
    """

    def __init__(self, state: bytes | None = None) -> None:
        self._doc = Doc()
        self._roots = {
            name: self._doc.get(name, type=Map) for name in ("meta", "entries", "elements")
        }
        if state:
            self._doc.apply_update(state)
        self._shadow: dict[str, dict[str, Any]] = {
            name: {
                key: value
                for key, value in plain(root).items()
                if name == "meta" or isinstance(value, dict)
            }
            for name, root in self._roots.items()
        }
        self._events: dict[str, list[tuple[tuple[Any, ...], str, Any]]] = {
            name: [] for name in self._roots
        }
        self._changed = False
        for name, root in self._roots.items():
            root.observe_deep(partial(self._record, name))
        self._doc.observe(self._on_transaction)

    @property
    def doc(self) -> Doc:
        """The document after the last update (read it; do not edit it)."""
        return self._doc

    @property
    def schema(self) -> str | None:
        """The document's `meta.schema`, or None."""
        return self._shadow["meta"].get("schema")

    def apply(self, update: bytes, *, principal: str | None = None) -> list[Change]:
        """Apply `update` and return what it changed (see the module docstring)."""
        self._events = {name: [] for name in self._roots}
        self._changed = False
        old_schema = self.schema
        self._doc.apply_update(update)
        with self._doc.transaction():  # one read transaction for all reads, not one per read
            meta = self._meta_changes()
            items = {name: self._collection_changes(name) for name in ("entries", "elements")}
        schema = self.schema
        if schema not in _COLLECTION:
            unknown = ("unknown_schema", None, {"value": schema})
            raw = [unknown] if self._changed else []
        elif schema != old_schema:  # the document just became a journal/canvas: all is new
            name = _COLLECTION[schema]
            fields = ("title",) if name == "entries" else ("title", "template", "background")
            meta_now = {key: self._shadow["meta"].get(key) for key in fields}
            raw = [(schema.split("/")[0] + "_created", None, meta_now)]
            for key, item in sorted(self._shadow[name].items()):
                raw += self._added(name, key, item)
        else:
            name = _COLLECTION[schema]
            raw = [
                _meta_change(schema, key, old, new) for key, old, new in meta if key != "schema"
            ] + items[name]
        return [
            Change(kind, schema, key, principal, MappingProxyType(data)) for kind, key, data in raw
        ]

    def _on_transaction(self, _event: TransactionEvent) -> None:
        self._changed = True

    def _record(self, root: str, events: list[Any]) -> None:
        # Runs inside the transaction: copy out what we need, events die with it.
        for event in events:
            path = tuple(event.path)
            if isinstance(event, MapEvent):
                self._events[root].append((path, "map", list(event.keys)))
            elif isinstance(event, TextEvent):
                self._events[root].append((path, "text", list(event.delta)))
            elif isinstance(event, ArrayEvent):
                delta = [
                    {"insert": [plain(item) for item in op["insert"]]}
                    if "insert" in op
                    else dict(op)
                    for op in event.delta
                ]
                self._events[root].append((path, "array", delta))

    def _meta_changes(self) -> list[tuple[str, Any, Any]]:
        """Update the shadow of `meta`; return (key, old, new) for each key that changed."""
        shadow, root = self._shadow["meta"], self._roots["meta"]
        keys: set[str] = set()
        for path, kind, payload in self._events["meta"]:
            if path:
                keys.add(str(path[0]))
            elif kind == "map":
                keys.update(payload)
        changes = []
        for key in sorted(keys):
            old = shadow.pop(key, None)
            new = None
            if key in root:
                shadow[key] = new = plain(root[key])
            if old != new:
                changes.append((key, old, new))
        return changes

    def _collection_changes(self, name: str) -> list[tuple[str, str | None, dict[str, Any]]]:
        shadow, root = self._shadow[name], self._roots[name]
        replaced: set[str] = set()
        touched: dict[str, _Touch] = {}
        for path, kind, payload in self._events[name]:
            if not path:
                replaced.update(payload)
                continue
            touch = touched.setdefault(str(path[0]), _Touch())
            if len(path) == 1 and kind == "map":
                touch.fields.update(payload)
            elif len(path) == 2 and kind in ("text", "array"):
                touch.deltas[str(path[1])] = (kind, payload)
            elif len(path) > 1:
                touch.fields.add(str(path[1]))
        changes = []
        for key in sorted(replaced | set(touched)):
            old = shadow.get(key)
            new = root.get(key)
            if old is not None and isinstance(new, Map) and key not in replaced:
                changes += self._edited(name, key, old, new, touched[key])
                continue
            if old is not None:
                del shadow[key]
                kind = "entry_deleted" if name == "entries" else "element_deleted"
                what = (
                    {"title": old.get("title")} if name == "entries" else {"kind": old.get("kind")}
                )
                changes.append((kind, key, what))
            if isinstance(new, Map):
                shadow[key] = plain(new)
                changes += self._added(name, key, shadow[key])
        return changes

    def _added(self, name: str, key: str, item: dict[str, Any]) -> list[Any]:
        if name == "entries":
            data = {field: item.get(field) for field in _ENTRY_FIELDS}
            data["tags"] = _unique(data["tags"])
            return [("entry_created", key, data)]
        fields = _ELEMENT_COMMON + _KIND_FIELDS.get(item.get("kind"), ())  # type: ignore[arg-type]
        changes = [("element_added", key, {field: item.get(field) for field in fields})]
        points = item.get("points")
        if item.get("kind") == "stroke" and isinstance(points, list) and points:
            changes.append(("stroke_drawn", key, _stroke(item, points, 0, True)))
        return changes

    def _edited(
        self, name: str, key: str, old: dict[str, Any], new: Map, touch: _Touch
    ) -> list[Any]:
        text_field = _TEXT_FIELD[name]
        splices: list[tuple[int, str, str]] = []
        drawn: list[tuple[int, list[Any]]] = []
        for field_name, (kind, delta) in touch.deltas.items():
            if field_name in touch.fields:
                continue
            current = old.get(field_name)
            if kind == "text" and field_name == text_field and isinstance(current, str):
                splices = _text_splices(current, delta)
                old[field_name] = str(new[field_name])
            elif (
                kind == "array"
                and name == "elements"
                and field_name == "points"
                and isinstance(current, list)
                and not any("delete" in op for op in delta)
            ):
                drawn = _array_inserts(current, delta)
            else:
                touch.fields.add(field_name)
        before = {}
        for field_name in touch.fields:
            value = plain(new[field_name]) if field_name in new else None
            if value != old.get(field_name):
                before[field_name] = old.get(field_name)
            if field_name in new:
                old[field_name] = value
            else:
                old.pop(field_name, None)
        if text_field in before:
            was, now = before.pop(text_field), old.get(text_field)
            splices = [
                (0, was if isinstance(was, str) else "", now if isinstance(now, str) else "")
            ]
        # Fields first, sequences last: a `stroke_drawn` carries the colour and width that
        # the update left, so replaying the changes in order never meets a stale one.
        edit = "entry_text_changed" if name == "entries" else "text_changed"
        sequences = [
            (edit, key, {"index": index, "deleted": deleted, "inserted": inserted})
            for index, deleted, inserted in splices
        ]
        sequences += [
            ("stroke_drawn", key, _stroke(old, points, index, False)) for index, points in drawn
        ]
        if name == "entries":
            return _entry_changes(key, old, before) + sequences
        changes = []
        for kind, group in _CANVAS_GROUPS:
            if any(field_name in before for field_name in group):
                data = {field_name: old.get(field_name) for field_name in group}
                for field_name in group:
                    data["old_" + field_name] = before.pop(field_name, old.get(field_name))
                changes.append((kind, key, data))
        return changes + _field_changes("element_field_changed", key, old, before) + sequences


def _meta_change(schema: str, key: str, old: Any, new: Any) -> tuple[str, None, dict[str, Any]]:
    if schema == JOURNAL_SCHEMA and key == "title":
        return ("journal_renamed", None, {"title": new, "old_title": old})
    kind = "journal_meta_changed" if schema == JOURNAL_SCHEMA else "canvas_meta_changed"
    return (kind, None, {"field": key, "value": new, "old_value": old})


def _entry_changes(key: str, entry: dict[str, Any], before: dict[str, Any]) -> list[Any]:
    changes: list[Any] = []
    before.pop("updated_at", None)
    if "title" in before:
        title = {"title": entry.get("title"), "old_title": before.pop("title")}
        changes.append(("entry_title_changed", key, title))
    if "mode" in before or "session_id" in before:
        mode = {name: entry.get(name) for name in ("mode", "session_id")}
        mode.update({"old_" + name: before.pop(name, mode[name]) for name in list(mode)})
        changes.append(("entry_mode_changed", key, mode))
    if "tags" in before:
        old, new = _unique(before.pop("tags")), _unique(entry.get("tags"))
        added = [tag for tag in new if tag not in old]
        removed = [tag for tag in old if tag not in new]
        if added or removed:
            changes.append(("entry_tags_changed", key, {"added": added, "removed": removed}))
    return changes + _field_changes("entry_field_changed", key, entry, before)


def _field_changes(kind: str, key: str, item: dict[str, Any], before: dict[str, Any]) -> list[Any]:
    return [
        (kind, key, {"field": name, "value": item.get(name), "old_value": before[name]})
        for name in sorted(before)
    ]


def _stroke(item: dict[str, Any], points: list[Any], index: int, new: bool) -> dict[str, Any]:
    return {
        "points": list(points),
        "index": index,
        "new_stroke": new,
        "color": item.get("color"),
        "width": item.get("width"),
    }


def _unique(values: Any) -> list[Any]:
    return list(dict.fromkeys(values)) if isinstance(values, list) else []


def _text_splices(before: str, delta: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    """(index, deleted, inserted) per run of a text delta, indexes in characters.

    pycrdt counts `retain`/`delete` in UTF-8 bytes of the text before the update, so the walk
    runs over its encoding; each index is in the text as the previous runs left it.
    """
    raw = before.encode("utf-8")
    position = index = 0
    runs: list[tuple[int, str, str]] = []
    deleted = inserted = ""
    for op in [*delta, {"retain": 0}]:
        if "retain" in op:
            if deleted or inserted:
                runs.append((index, deleted, inserted))
                index += len(inserted)
                deleted = inserted = ""
            chunk = raw[position : position + op["retain"]]
            index += len(chunk.decode("utf-8", "replace"))
            position += op["retain"]
        elif "delete" in op:
            deleted += raw[position : position + op["delete"]].decode("utf-8", "replace")
            position += op["delete"]
        elif isinstance(op.get("insert"), str):
            inserted += op["insert"]
    return runs


def _array_inserts(items: list[Any], delta: list[dict[str, Any]]) -> list[tuple[int, list[Any]]]:
    """Apply an insert-only array delta to `items` in place; return (index, inserted) runs."""
    index = 0
    runs = []
    for op in delta:
        if "retain" in op:
            index += op["retain"]
        elif "insert" in op:
            items[index:index] = op["insert"]
            runs.append((index, op["insert"]))
            index += len(op["insert"])
    return runs
