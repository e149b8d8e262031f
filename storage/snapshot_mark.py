"""The mark that a stored snapshot passed syncd's strict decoder: a load need not decode it again.

A cold load used to run every snapshot through the strict decoder (``crdt.replay.check_stored``)
before applying it: hundreds of milliseconds for a long history, before the first client is
served. The check is there for data syncd did not vet (written by an older version, restored
from elsewhere, damaged, crafted): nesting deep enough to overflow yrs's stack is a SIGSEGV that
no ``except`` survives.

Compaction checks the snapshot it folds before storing it, and a load that checked an unmarked
snapshot once marks it (``Rooms``); the mark is stored with the row (``syncd_snapshots.checked``).
It is an HMAC-SHA256, under a key only the daemon holds (derived from its token secret, never
stored in the database), of the document's row id, the snapshot's seq and its plaintext bytes.
So a mark is trusted only for the exact bytes syncd checked, in that document, at that seq: a
row someone else wrote or changed (a forged mark, another document's marked snapshot copied in,
a flipped bit) does not verify and is checked again as before. What trust skips is the strict
decoder only: the apply stays guarded (``crdt.yrs_guard``), so a marked snapshot yrs refuses is
still left out and quarantined, never a crash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["SnapshotMarks", "snapshot_key_from_secret"]

# Versioned: a change of what a mark means (or of the checks behind it) changes the label, and
# every older mark stops verifying (each snapshot is then checked once more).
_LABEL = b"syncd snapshot checked by the strict decoder v1"


def snapshot_key_from_secret(secret: str | bytes) -> bytes:
    """The marking key for a daemon whose token secret is ``secret`` (one key per purpose)."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(raw, _LABEL, hashlib.sha256).digest()


class SnapshotMarks:
    """Makes and verifies marks. ``key=None``: a random key, so only what this process marked is
    trusted (a restart checks every snapshot once more: safe, not fast)."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)

    def mark(self, doc_id: int, upto_seq: int, state: bytes) -> bytes:
        mac = hmac.new(self._key, _LABEL, hashlib.sha256)
        mac.update(doc_id.to_bytes(8, "big", signed=True))
        mac.update(upto_seq.to_bytes(8, "big", signed=True))
        mac.update(state)
        return mac.digest()

    def verifies(self, mark: bytes | None, doc_id: int, upto_seq: int, state: bytes) -> bool:
        if not mark:
            return False
        return hmac.compare_digest(bytes(mark), self.mark(doc_id, upto_seq, state))
