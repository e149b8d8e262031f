"""Helpers over Yjs v1 updates (bytes), built on pycrdt's Rust core. No I/O."""

from __future__ import annotations

from collections.abc import Iterable

import pycrdt

from .protocol import Decoder, ProtocolError
from .update_format import UpdateShape, decode_update

__all__ = [
    "EMPTY_UPDATE",
    "clock_ends",
    "decode_state_vector",
    "fold",
    "merge",
    "state_vector",
    "validate_update",
]

# An update with no structs and an empty delete set: what Yjs sends when it has nothing new.
EMPTY_UPDATE = b"\x00\x00"


def validate_update(update: bytes) -> UpdateShape:
    """Raise :class:`ProtocolError` unless ``update`` is a Yjs v1 update yrs can take; return
    its shape (state vector, delete set).

    The strict decoder (:mod:`crdt.update_format`) runs first: it refuses what would crash or
    break yrs (deep nesting, zero-length items, ...) with an
    :class:`~crdt.update_format.InvalidUpdate` saying why. Then yrs decodes it too
    (``pycrdt.get_state``), so that nothing it would refuse gets through. Neither touches a
    document: an invalid update is rejected before it can reach the store or a replica.
    """
    shape = decode_update(update)
    try:
        pycrdt.get_state(update)
    except ValueError as exc:
        raise ProtocolError("not a valid Yjs update") from exc
    return shape


def clock_ends(updates: Iterable[bytes]) -> dict[int, int]:
    """Per client id, the clock the structs of ``updates`` reach (the end of its range, whatever
    they start at): what a lineage fence keeps (``storage/lineage_fence.py``).

    Raises:
        InvalidUpdate: one of them does not decode.
    """
    ends: dict[int, int] = {}
    for update in updates:
        for client, (_, end) in decode_update(update).clients.items():
            if end > ends.get(client, 0):
                ends[client] = end
    return ends


def state_vector(update: bytes) -> bytes:
    return pycrdt.get_state(update)


def decode_state_vector(sv: bytes) -> dict[int, int]:
    """A state vector as {client id: clock}; its byte encoding is not canonical, this is."""
    dec = Decoder(sv)
    entries = {}
    for _ in range(dec.read_var_uint()):
        client = dec.read_var_uint()
        entries[client] = dec.read_var_uint()
    dec.expect_end()
    return entries


def fold(updates: list[bytes], *, keep_history: bool = True) -> bytes:
    """The state that ``updates`` build, encoded as one update.

    Applies them in order to a fresh document, which is linear in their number (``merge`` is
    not: pycrdt's ``merge_updates`` grows quadratically past a few hundred updates) and encodes
    more compactly. ``keep_history`` keeps deleted content (no garbage collection), so the
    result still holds everything versions and rollback may need.
    """
    doc = pycrdt.Doc(skip_gc=keep_history)
    for update in updates:
        doc.apply_update(update)
    return doc.get_update()


def merge(updates: list[bytes]) -> bytes:
    """Merge updates into one without a document (Yjs ``mergeUpdates``); keeps deleted content.

    For the small batches of live traffic (a few hundred updates at most): its cost grows
    quadratically with the number of updates; use :func:`fold` for histories.
    """
    if not updates:
        return EMPTY_UPDATE
    if len(updates) == 1:
        return updates[0]
    return pycrdt.merge_updates(*updates)
