"""Restoring a version as a forward edit: the update that turns a document's content into another's.

A version is restored by editing today's document until its content equals the version's, not by
going back in the log: the edit is an ordinary update (live clients, offline clients and the feed
receive it), and it merges with edits made concurrently (an element added elsewhere while the
restore was computed is not known to it, so it survives). The edit is computed from the two
states alone, so it works whatever the log still holds.

How: today's document is loaded into a scratch ``pycrdt.Doc``; inside one transaction every root
is brought to the version's content, recursively, keeping what is equal where it is (an element
that exists in both is edited field by field, not replaced, so a concurrent move of another field
of it merges); the transaction's update, captured by an observer, is the edit. Maps: keys set or
deleted; texts: the differing middle replaced (common prefix and suffix kept); arrays: the same by
element, the differing middle replaced with copies. Text formatting attributes are not compared.
Restoring twice gives identical content; the second time there is nothing to do (``None``).

Root types are not in the Yjs format: a root is read as a map, else as a text (characters), else
as an array (whichever shows content); an empty root has nothing to restore. Pure code: no I/O.
"""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Doc, Map, Text, TransactionEvent

from .schemas._common import splice_text
from .updates import EMPTY_UPDATE, merge
from .yrs_guard import apply_update

__all__ = ["RootKind", "restore_edit", "root_kinds"]

RootKind = type[Map] | type[Text] | type[Array]

_PROBES: tuple[RootKind, ...] = (Map, Text, Array)


def root_kinds(update: bytes) -> dict[str, RootKind]:
    """The type of every root of ``update`` that has content (at most one scratch document per
    kind tried: a root read as the wrong type shows no content)."""
    kinds: dict[str, RootKind] = {}
    names: list[str] | None = None
    for kind in _PROBES:
        doc = Doc()
        apply_update(doc, update)
        if names is None:
            names = list(doc.keys())
        for name in names:
            if name in kinds:
                continue
            if _has_content(doc.get(name, type=kind)):
                kinds[name] = kind
    return kinds


def _has_content(root: Map | Text | Array) -> bool:
    # An array's items read as a text count in its length but show no characters.
    return str(root) != "" if isinstance(root, Text) else len(root) > 0


def restore_edit(current: bytes, target: bytes) -> bytes | None:
    """The update that makes ``current``'s content equal to ``target``'s; ``None`` if it is
    equal already.

    Raises:
        ValueError: a root is a map in one document and a text or array in the other.
        YrsFailure: a state yrs cannot read (both come from the store: should not happen).
    """
    want_kinds = root_kinds(target)
    have_kinds = root_kinds(current)
    for name, kind in want_kinds.items():
        if have_kinds.get(name, kind) is not kind:
            raise ValueError(f"root {name!r} changed type: it cannot be restored")
    want = Doc()
    apply_update(want, target)
    doc = Doc()
    apply_update(doc, current)
    roots = {
        name: (kind, doc.get(name, type=kind), want.get(name, type=kind))
        for name, kind in {**have_kinds, **want_kinds}.items()
    }
    captured: list[bytes] = []

    def capture(event: TransactionEvent) -> None:
        captured.append(event.update)

    subscription = doc.observe(capture)
    try:
        with doc.transaction(origin="restore"):
            for _name, (kind, live, wanted) in roots.items():
                if kind is Map:
                    _sync_map(live, wanted)
                elif kind is Text:
                    _sync_text(live, str(wanted) if wanted is not None else "")
                else:
                    _sync_array(live, wanted)
    finally:
        doc.unobserve(subscription)
    edits = [u for u in captured if u != EMPTY_UPDATE]
    if not edits:
        return None
    return edits[0] if len(edits) == 1 else merge(edits)


def _sync_map(live: Map, wanted: Map | None) -> None:
    want_keys = set(wanted.keys()) if wanted is not None else set()
    for key in [k for k in live if k not in want_keys]:
        del live[key]
    if wanted is None:
        return
    for key in sorted(want_keys):
        value = wanted[key]
        have = live.get(key) if key in live else _MISSING
        if isinstance(value, Map) and isinstance(have, Map):
            _sync_map(have, value)
        elif isinstance(value, Text) and isinstance(have, Text):
            _sync_text(have, str(value))
        elif isinstance(value, Array) and isinstance(have, Array):
            _sync_array(have, value)
        elif _shared(value) or _shared(have) or not _same(have, value):
            live[key] = _copy(value)


def _sync_text(live: Text, wanted: str) -> None:
    have = str(live)
    if have == wanted:
        return
    start = _common_prefix(have, wanted)
    end = _common_suffix(have[start:], wanted[start:])
    splice_text(live, start, len(have) - start - end, wanted[start : len(wanted) - end])


def _sync_array(live: Array, wanted: Array | None) -> None:
    items = list(wanted) if wanted is not None else []
    have = [_plain(v) for v in live]
    want = [_plain(v) for v in items]
    if have == want:
        return
    start = _common_prefix(have, want)
    end = _common_suffix(have[start:], want[start:])
    if len(have) - start - end:
        del live[start : len(have) - end]
    for offset, item in enumerate(items[start : len(items) - end]):
        live.insert(start + offset, _copy(item))


_MISSING = object()


def _shared(value: object) -> bool:
    return isinstance(value, (Map, Text, Array))


def _same(a: object, b: object) -> bool:
    # 1 == 1.0 == True in Python; in JSON (and so in Yjs content) they are different values.
    return type(a) is type(b) and a == b


def _copy(value: Any) -> Any:
    """A fresh (preliminary) copy of a value read from another document."""
    if isinstance(value, Map):
        return Map({key: _copy(value[key]) for key in value})
    if isinstance(value, Array):
        return Array([_copy(v) for v in value])
    if isinstance(value, Text):
        return Text(str(value))
    return value


def _plain(value: Any) -> Any:
    """Comparable form of a value: shared types tagged, so a Text "a" differs from a string."""
    if isinstance(value, Map):
        return ("map", {key: _plain(value[key]) for key in value})
    if isinstance(value, Array):
        return ("array", [_plain(v) for v in value])
    if isinstance(value, Text):
        return ("text", str(value))
    return (type(value).__name__, value)


def _common_prefix(a: Any, b: Any) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _common_suffix(a: Any, b: Any) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[len(a) - 1 - i] == b[len(b) - 1 - i]:
        i += 1
    return i
