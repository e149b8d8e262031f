"""Would an update change a document? Yjs' ``snapshotContainsUpdate``, on pycrdt. No I/O."""

from __future__ import annotations

import pycrdt

from .protocol import ProtocolError
from .updates import EMPTY_UPDATE, decode_state_vector

__all__ = ["contains_update"]


def contains_update(doc: pycrdt.Doc, update: bytes) -> bool:
    """Whether ``doc`` already holds everything in ``update`` (applying it would change nothing).

    The sync endpoint uses it to acknowledge a viewer's sync step 2 that brings nothing new: a
    Yjs client always sends its whole delete set, so "empty" cannot be judged from the bytes.
    Structs beyond ``doc``'s state vector are news; otherwise only deletions can be, and they are
    found by applying the update to a scratch copy of ``doc``. That costs O(document).

    Raises:
        ProtocolError: ``update`` is not a Yjs v1 update.
    """
    if update == EMPTY_UPDATE:
        return True
    try:
        theirs = decode_state_vector(pycrdt.get_state(update))
    except ValueError as exc:
        raise ProtocolError("not a valid Yjs update") from exc
    ours = decode_state_vector(doc.get_state())
    if any(clock > ours.get(client, 0) for client, clock in theirs.items()):
        return False
    scratch = pycrdt.Doc()
    scratch.apply_update(doc.get_update())
    changes: list[bytes] = []
    # A transaction that changes nothing emits no update event.
    scratch.observe(lambda event: changes.append(event.update))
    try:
        scratch.apply_update(update)
    except ValueError as exc:
        raise ProtocolError("not a valid Yjs update") from exc
    return not changes
