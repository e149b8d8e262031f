"""The epoch guard (DESIGN.md §1.10): never merge state of an older lineage into a document.

Every document on the server has an epoch, a random id made when it is created and made anew
whenever its history is rewritten (purge and creation again, erasure, a restore from another
lineage). ``/v1/sync`` sends it right after ``Authenticated`` as a ``Stateless`` message
``{"syncd": "epoch", "epoch": E}``, before anything of the document. The SDK stores the epoch
it synced under beside the document's state and compares before it sends anything:

- nothing stored (the first sync of this document here): adopt ``E`` and merge as usual;
- the same epoch: sync as usual (offline edits, a new client id: nothing is reset);
- another epoch: the local replica belongs to a history the server no longer has. Merging it
  would resurrect what was erased, or duplicate content (a Yjs replica cannot be told to forget
  items the server dropped). So the local replica is set aside, whole, as a
  :class:`RecoveredCopy` when it holds edits the server never acknowledged, and the document
  starts again empty under ``E`` and takes the server's content.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pycrdt

__all__ = ["RecoveredCopy", "parse_epoch_message"]


def parse_epoch_message(payload: str) -> str | None:
    """The epoch a ``Stateless`` payload announces, or ``None`` if it is another message."""
    try:
        message = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("syncd") != "epoch":
        return None
    epoch = message.get("epoch")
    return epoch if isinstance(epoch, str) else None


@dataclass(frozen=True, slots=True)
class RecoveredCopy:
    """The local replica of ``doc`` as it was when the server's epoch changed under it.

    ``state`` is the whole replica (what the server had acknowledged, and the local edits on
    top, which may refer to it); ``updates`` are the unacknowledged local edits alone, in the
    order they were made. Nothing of it was sent to the server: the application decides what
    to do with it (show it, copy parts into the new document, discard it with
    :meth:`Client.discard_recovered`). It stays in the offline store until discarded.
    """

    id: int
    doc: str
    epoch: str  # the epoch the replica was synced under
    server_epoch: str  # the server's epoch that replaced it
    state: bytes
    updates: tuple[bytes, ...]
    recovered_at: float

    def replica(self) -> pycrdt.Doc:
        """A fresh pycrdt document holding the recovered replica (read it with the schemas)."""
        doc = pycrdt.Doc()
        doc.apply_update(self.state)
        return doc
