"""Rebuilding a document from stored updates, skipping any that would break it.

Data written before the strict decoder existed, or a yrs bug nobody knows yet, must not brick a
document: :func:`replay` applies the snapshot and the log in order, checks each update with the
strict decoder first, and leaves out (and reports) those that fail, serving the rest. Because a
failed ``apply_update`` may leave the document half-changed, the document is rebuilt from the
good updates so far after each failure; failures are rare, so this costs nothing in the common
case.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import pycrdt

from .protocol import ProtocolError
from .updates import validate_update
from .yrs_guard import YrsFailure, apply_update

__all__ = ["SNAPSHOT_SEQ", "Replay", "check_stored", "replay"]

log = logging.getLogger("crdt.replay")

# The seq reported for a snapshot that failed (stored updates have seq >= 1).
SNAPSHOT_SEQ = 0


@dataclass(slots=True)
class Replay:
    doc: pycrdt.Doc
    # (seq, reason) of every update left out; SNAPSHOT_SEQ for the snapshot.
    skipped: list[tuple[int, str]] = field(default_factory=list)


def replay(
    snapshot: bytes | None,
    tail: Sequence[tuple[int, bytes]],
    *,
    skip_gc: bool = False,
    snapshot_checked: bool = False,
) -> Replay:
    """The document that ``snapshot`` then ``tail`` (``(seq, update)`` in order) build.

    Never raises for bad data: each update that fails the strict decoder or that yrs refuses is
    left out and listed in ``Replay.skipped``. ``snapshot_checked``: the snapshot carries syncd's
    verified mark that these exact bytes passed :func:`check_stored` (storage/snapshot_mark.py),
    so it is not decoded again; it is still applied guarded.
    """
    good: list[bytes] = []
    skipped: list[tuple[int, str]] = []
    doc = pycrdt.Doc(skip_gc=skip_gc)
    parts: list[tuple[int, bytes]] = []
    if snapshot:
        parts.append((SNAPSHOT_SEQ, snapshot))
    parts.extend(tail)
    for seq, update in parts:
        try:
            if not (snapshot_checked and seq == SNAPSHOT_SEQ):
                check_stored(update)
            apply_update(doc, update)
        except (ProtocolError, YrsFailure) as exc:
            skipped.append((seq, str(exc)[:200]))
            log.warning("update seq %d left out of the document: %s", seq, exc)
            doc = _rebuild(good, skip_gc)
            continue
        good.append(update)
    return Replay(doc, skipped)


def check_stored(update: bytes) -> None:
    """The strict decoder, for what is already stored: only what no ``except`` survives.

    Stored data was written by yrs itself (snapshots) or accepted before: the decoder refuses
    some of it for reasons a guarded apply survives, e.g. a snapshot yrs re-encoded after a
    client inserted inside a surrogate pair (docs/yrs-crashes.md), and leaving that out would
    lose the document. Nesting beyond the bounds is what overflows the stack (SIGSEGV): that,
    and only that, is refused here; the rest is judged by applying it, guarded.
    """
    try:
        validate_update(update)
    except ProtocolError as exc:
        if "nest" in str(exc):
            raise
        log.info("stored update refused by the strict decoder (%s); applying it guarded", exc)


def _rebuild(updates: list[bytes], skip_gc: bool) -> pycrdt.Doc:
    doc = pycrdt.Doc(skip_gc=skip_gc)
    for update in updates:
        apply_update(doc, update)  # each applied cleanly before
    return doc
