"""The storage contract: what the daemon needs from a database, nothing more.

A document is an append-only log of Yjs updates plus at most one snapshot. Every stored update
keeps its attribution (principal, origin, time) and gets two positions: ``seq``, dense and
increasing within its document, and ``pos``, increasing across the whole store (the change feed
will build on it). Compaction folds the log into the snapshot; the folded log rows stay for a
retention window so history is not destroyed with them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .feed import FeedPage
    from .served_state import ServedState

__all__ = [
    "DocKey",
    "DocMeta",
    "DocumentDeleted",
    "LoadedDoc",
    "NewUpdate",
    "Store",
    "StoreUnavailable",
]


class StoreUnavailable(RuntimeError):
    """The database could not be reached or failed a statement; the caller may retry later."""


class DocumentDeleted(Exception):
    """The document is a tombstone: updates to it are refused, now and for good."""

    def __init__(self, key: DocKey) -> None:
        super().__init__(f"document {key} was deleted")
        self.key = key


@dataclass(frozen=True, slots=True, order=True)
class DocKey:
    """A document's identity. The same ``name`` in two tenants is two documents."""

    tenant: str
    name: str  # "OWNER/NAME"

    def __str__(self) -> str:
        return f"{self.tenant}:{self.name}"


@dataclass(frozen=True, slots=True)
class NewUpdate:
    """An update to append, with who wrote it and through which path."""

    data: bytes
    principal: str
    origin: str  # "client", "http", "service", "restore", ...


@dataclass(frozen=True, slots=True)
class LoadedDoc:
    """What loading a document returns: apply ``snapshot`` then ``tail`` in order."""

    snapshot: bytes | None
    snapshot_seq: int
    tail: list[bytes]
    seq: int  # the document's last committed seq (quarantined updates count: seqs are not reused)
    created_at: float
    updated_at: float
    pos: int = 0  # the feed position of the last update in ``tail`` (or of the snapshot)
    tail_seqs: list[int] = field(default_factory=list)  # the seq of each update in ``tail``
    epoch: str = ""  # the document's epoch when read (a purge between makes a new one)
    # Structs of a rewritten lineage: ``{client: clock}``, see ``storage/lineage_fence.py``.
    fence: dict[int, int] = field(default_factory=dict)
    # The snapshot carries syncd's mark that it passed the strict decoder (storage/snapshot_mark.py)
    snapshot_checked: bool = False
    # The replica's last answer to a new client, if it is of this seq and epoch (a cache,
    # storage/served_state.py).
    served: ServedState | None = None

    def numbered_tail(self) -> list[tuple[int, bytes]]:
        """``(seq, update)`` pairs of the tail (dense seqs after the snapshot if not recorded)."""
        first = self.snapshot_seq + 1
        seqs = self.tail_seqs or range(first, first + len(self.tail))
        return list(zip(seqs, self.tail, strict=True))


@dataclass(frozen=True, slots=True)
class DocMeta:
    """A document's metadata and access settings (no content)."""

    key: DocKey
    mode: str  # "private" | "shared"
    grants: dict[str, str]  # principal -> "viewer" | "editor"
    seq: int
    size_bytes: int
    created_at: float
    updated_at: float
    deleted: bool = False  # in the trash, or purged
    # Random, made at creation and anew when the history is rewritten (DESIGN §1.10).
    epoch: str = ""
    deleted_at: float | None = None  # when it was deleted (moved to the trash)
    purged: bool = False  # its content, history and versions were erased: a bare tombstone

    @property
    def owner(self) -> str:
        return self.key.name.split("/", 1)[0]


@runtime_checkable
class Store(Protocol):
    async def open(self) -> None:
        """Connect, and create or migrate the schema."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the database answers."""

    async def create(self, key: DocKey) -> bool:
        """Bring a document into being; ``False`` if it already existed."""

    async def load(self, key: DocKey) -> LoadedDoc | None:
        """The document's snapshot and log tail, read consistently; ``None`` if it never existed."""

    async def append(
        self, batch: Mapping[DocKey, Sequence[NewUpdate]]
    ) -> dict[DocKey, list[int] | DocumentDeleted]:
        """Append updates to several documents in one transaction; return each update's seq.

        Documents that do not exist yet are created. Nothing is visible before the commit and
        everything is once it returns.

        Deletion is final: a document that is a tombstone when the transaction writes (also
        one whose ``delete`` commits while this append runs) stores none of its updates, and
        its entry in the result is a :class:`DocumentDeleted` instead of seqs. The other
        documents of the batch are committed as usual: one deleted document must not fail a
        group commit shared with others (``GroupCommit`` raises the exception to that
        document's submitters only).
        """

    async def compact(self, key: DocKey) -> int:
        """Fold the log into the snapshot; return the seq the snapshot now covers."""

    async def mark_snapshot_checked(self, key: DocKey, upto_seq: int, state: bytes) -> None:
        """Record that the snapshot at ``upto_seq`` (plaintext ``state``) passed the strict
        decoder, so that later loads trust it (storage/snapshot_mark.py)."""

    async def save_served_state(self, key: DocKey, epoch: str, served: ServedState) -> bool:
        """Keep ``served`` for the next cold load, if the document is still at ``served.seq``
        in ``epoch``; returns whether it was stored (storage/served_state.py)."""

    async def quarantine(self, key: DocKey, seqs: Mapping[int, str]) -> None:
        """Flag stored updates (seq → reason; seq 0 is the snapshot) that cannot be applied or
        viewed: they stay in the database for inspection and are left out of loads, compaction
        and the feed from now on."""

    async def quarantined(self, key: DocKey) -> dict[int, str]:
        """The document's quarantined seqs with their reasons."""

    async def updates_between(
        self, key: DocKey, after: int, upto: int
    ) -> list[tuple[int, bytes]] | None:
        """The stored updates with ``after < seq <= upto``, in order, quarantined ones left
        out; ``None`` if the document is gone or part of that range was pruned."""

    async def seqs(self, keys: Sequence[DocKey]) -> dict[DocKey, int]:
        """The committed seq of each (live) document, in one read."""

    async def meta(self, key: DocKey) -> DocMeta | None:
        """Metadata and access settings; ``None`` if it never existed (deleted ones are kept)."""

    async def principal_erased(self, tenant: str, sub: str) -> bool:
        """Whether ``sub`` was erased in ``tenant`` (``DELETE /v1/principals/{sub}``)."""

    async def set_access(self, key: DocKey, mode: str, grants: Mapping[str, str]) -> DocMeta:
        """Replace the access mode and grants (one transaction); ``KeyError`` if absent."""

    async def delete(self, key: DocKey) -> bool:
        """Move the document to the trash: a tombstone from now on (loads, appends and the feed
        refuse it), its content, access and versions kept for a restore (``storage/trash.py``,
        which also purges); ``False`` if absent or already deleted."""

    async def state_before(self, key: DocKey, seq: int) -> bytes | None:
        """The document just before update ``seq``; ``None`` if that history was pruned."""

    async def read_feed(
        self, tenant: str, after: int, *, prefix: str | None = None, limit: int = 100
    ) -> FeedPage:
        """Stored updates of ``tenant`` after feed position ``after``, in position order
        (see ``storage/feed.py`` for the guarantees and resets)."""
