"""A document copied without a principal's identity: the pure part of erasure (DESIGN.md §1.11).

Why a copy and not an edit: a Yjs document keeps what was deleted. A ``Y.Map`` key that was set
and then deleted is still in the encoded document after garbage collection (the key of the
deleted item stays, only its value goes), and a text's deleted characters stay in a document that
keeps its history. No edit can make a replica forget them; only a new document built from the
current content can. :func:`scrub` builds that document: every root copied, recursively, into a
fresh ``pycrdt.Doc`` (new client id, no deleted items, no history), with

- map keys equal to one of ``identities`` dropped (with their values),
- string values (map values, array items) equal to one of them replaced by :data:`ERASED`,
- a ``Y.Text`` whose whole content equals one of them replaced by :data:`ERASED`,
- and, for ``fragments`` (distinctive identifiers such as e-mail addresses), every occurrence
  inside a string, a text or a key replaced by :data:`ERASED` too. The principal id itself is
  matched exactly only: ids are short (``bob``), and replacing them inside words would mangle
  other people's writing.

Root types are not in the Yjs format; they are found as ``crdt/restore.py`` finds them (a root
that shows no content as a map, a text or an array has nothing to copy). Text formatting
attributes and embeds are not copied (the schemas use neither). Pure code: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pycrdt import Array, Doc, Map, Text

from .restore import root_kinds
from .yrs_guard import apply_update

__all__ = ["ERASED", "Scrubber", "scrub"]

# What replaces an erased identity. Not a valid principal id (DESIGN §1.3: no brackets), so it
# can never be mistaken for, or granted to, a real principal.
ERASED = "[erased]"


class Scrubber:
    """What to remove: exact ``identities`` (keys dropped, equal values replaced) and
    ``fragments`` replaced wherever they occur inside strings, texts and keys."""

    def __init__(self, identities: Iterable[str], fragments: Iterable[str] = ()) -> None:
        self.fragments = tuple(sorted({f for f in fragments if f}, key=len, reverse=True))
        self.identities = frozenset(i for i in identities if i) | set(self.fragments)

    def mentions(self, data: bytes) -> bool:
        """Whether ``data`` (an encoded update, a row) holds any identity as UTF-8 bytes: Yjs
        encodes strings and keys as UTF-8, so a document without these bytes needs no copy."""
        return any(i.encode() in data for i in self.identities)

    def string(self, value: str) -> str:
        if value in self.identities:
            return ERASED
        for fragment in self.fragments:
            if fragment in value:
                value = value.replace(fragment, ERASED)
        return value

    def key(self, key: str) -> str | None:
        """The key to keep (``None``: drop the entry)."""
        if key in self.identities:
            return None
        return self.string(key)

    def value(self, value: Any) -> Any:
        """A fresh (preliminary) copy of ``value`` read from another document, scrubbed."""
        if isinstance(value, Map):
            return Map(self._entries(value))
        if isinstance(value, Array):
            return Array([self.value(v) for v in value])
        if isinstance(value, Text):
            return Text(self.string(str(value)))
        if isinstance(value, str):
            return self.string(value)
        if isinstance(value, dict):  # plain JSON objects stored as one value
            return {k2: self.value(v) for k, v in value.items() if (k2 := self.key(k)) is not None}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value

    def _entries(self, source: Map) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in sorted(source.keys()):
            kept = self.key(key)
            if kept is not None:
                out[kept] = self.value(source[key])
        return out


def scrub(state: bytes, scrubber: Scrubber) -> bytes:
    """The content of ``state`` (a whole document as one update) copied into a fresh document
    without the identities of ``scrubber``; returns the fresh document as one update.

    Raises:
        YrsFailure: ``state`` cannot be read (it comes from the store: should not happen).
    """
    kinds = root_kinds(state)
    source = Doc()
    apply_update(source, state)
    fresh = Doc()
    with fresh.transaction(origin="erasure"):
        for name in sorted(kinds):
            kind = kinds[name]
            if scrubber.key(name) is None:
                continue  # a root named after the principal: nothing of it is kept
            root = source.get(name, type=kind)
            if kind is Map:
                target = fresh.get(scrubber.string(name), type=Map)
                for key, value in scrubber._entries(root).items():
                    target[key] = value
            elif kind is Text:
                fresh.get(scrubber.string(name), type=Text).insert(0, scrubber.string(str(root)))
            else:
                fresh.get(scrubber.string(name), type=Array).extend(
                    [scrubber.value(v) for v in root]
                )
    return fresh.get_update()
