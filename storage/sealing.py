"""The sealed envelope of a stored row (encryption at rest, DESIGN.md §1.11). No I/O.

A sealed row is::

    magic (3 bytes, b"\\xffSd") | format version (1 byte) | key generation (4 bytes, big endian)
    | nonce (12 random bytes) | AES-256-GCM ciphertext + 16-byte tag

36 bytes more than the plaintext. The associated data is the header (magic, version,
generation) followed by *where the row belongs*: tenant, document name, kind (``update``,
``snapshot``, ``version``) and number (the update's seq, the snapshot's ``upto_seq``, the
version's id), each length-prefixed so that no two places encode alike. A row copied to another
document, tenant, kind or number — or a snapshot put back under another ``upto_seq`` — fails its
tag, and is refused instead of served.

Why the magic cannot be mistaken for a plaintext Yjs update: an update starts with a varuint
count of client sections, and ``ff 53`` followed by any byte reads as more than 1.3 million
clients, which no update within the message limit holds. Rows written before a master key was
configured are plaintext, told apart by this prefix (docs/privacy.md).
"""

from __future__ import annotations

import enum
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .store import DocKey, StoreUnavailable

__all__ = [
    "OVERHEAD",
    "Kind",
    "SealedRowError",
    "associated_data",
    "generation_of",
    "is_sealed",
    "open_sealed",
    "seal",
]

MAGIC = b"\xffSd"
FORMAT_VERSION = 1
_HEADER = struct.Struct(">3sBI")  # magic, format version, key generation
NONCE_BYTES = 12  # 96 bits, random per seal: see docs/privacy.md for the budget
TAG_BYTES = 16
HEADER_BYTES = _HEADER.size
OVERHEAD = HEADER_BYTES + NONCE_BYTES + TAG_BYTES


class Kind(enum.StrEnum):
    """What a sealed row is; part of its associated data."""

    UPDATE = "update"  # a row of syncd_updates; number: its seq
    SNAPSHOT = "snapshot"  # syncd_snapshots.state; number: upto_seq
    VERSION = "version"  # syncd_versions.state; number: the version's id
    SERVED_STATE = "served-state"  # syncd_served_states.state; number: upto_seq
    DATA_KEY = "data-key"  # a data key wrapped by the master key; number: its generation
    MASTER_CHECK = "master-check"  # proves which master key wrapped the data keys


class SealedRowError(StoreUnavailable):
    """A stored row (or a data key) that does not open: wrong key, moved row, shredded tenant.

    A :class:`StoreUnavailable`, so every caller already refuses the document the way it does
    when the database is away (WebSocket 1013, HTTP 503, the feed 503) and never serves it
    empty or partial; and it is raised before replay, so the quarantine never sees it (a row
    that does not open is not a bad update).
    """

    def __init__(self, message: str, key: DocKey | None = None) -> None:
        super().__init__(message)
        self.key = key


def is_sealed(blob: bytes) -> bool:
    return blob[:3] == MAGIC


def generation_of(blob: bytes) -> int:
    """The data key generation a sealed row names (``ValueError`` for a truncated one)."""
    if len(blob) < OVERHEAD:
        raise ValueError("sealed row is truncated")
    magic, version, generation = _HEADER.unpack_from(blob)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise ValueError(f"unknown envelope format {version}")
    return int(generation)


def associated_data(tenant: str, name: str, kind: Kind, number: int) -> bytes:
    """Where a row belongs, encoded without ambiguity (each field length-prefixed)."""
    parts = [tenant.encode(), name.encode(), kind.value.encode(), str(number).encode()]
    return b"".join(struct.pack(">H", len(p)) + p for p in parts)


def seal(aead: AESGCM, generation: int, where: bytes, plaintext: bytes) -> bytes:
    """The envelope of ``plaintext`` under ``aead`` (generation ``generation``), bound to
    ``where`` (from :func:`associated_data`)."""
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, generation)
    nonce = os.urandom(NONCE_BYTES)
    return header + nonce + aead.encrypt(nonce, plaintext, header + where)


def open_sealed(aead: AESGCM, blob: bytes, where: bytes) -> bytes:
    """The plaintext of a sealed row.

    Raises:
        ValueError: the tag does not verify (another key, another place, altered bytes).
    """
    header = blob[:HEADER_BYTES]
    nonce = blob[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
    try:
        return aead.decrypt(nonce, blob[HEADER_BYTES + NONCE_BYTES :], header + where)
    except InvalidTag:
        raise ValueError("authentication failed (another key, or a row moved or altered)") from None
