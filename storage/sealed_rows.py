"""Sealing the rows a store writes and opening the rows it reads (encryption at rest).

Every read path of the store (load, compaction, ``updates_between``, ``state_before``, the
feed, versions and the history log) passes what it read through :meth:`RowSealing.open`
before anything else looks at it, and every write of document bytes seals through
:meth:`RowSealing.sealer` (the append paths) or :meth:`RowSealing.seal` (snapshots, version
states). Without a master key the rows stay plaintext and this costs one prefix comparison per
row read; a sealed row met without a key is refused, never handed to replay as an update.

A row that does not open refuses its whole document (:class:`SealedRowError`, with one log line
naming the document, the row and the reason). It is raised before replay, so the quarantine —
which is for updates yrs cannot apply — never sees it: a row that does not open is not poison,
and the next start with the right key serves it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.ext.asyncio import AsyncConnection

from .key_ring import KeyRing
from .row_security import ALL_TENANTS, TenantScope
from .sealing import (
    Kind,
    SealedRowError,
    associated_data,
    generation_of,
    is_sealed,
    open_sealed,
    seal,
)
from .store import DocKey

__all__ = ["RowSealing", "Sealer"]

log = logging.getLogger("syncd.storage.sealing")

_LOG_EVERY = 60.0  # seconds between two error lines for one refused document and reason

# seal(document, seq, update) -> the row's bytes, for the append paths.
Sealer = Callable[[DocKey, int, bytes], bytes]


class _Begin(Protocol):
    def __call__(
        self, *, write: bool = ..., tenants: TenantScope = ...
    ) -> AbstractAsyncContextManager[AsyncConnection]: ...


class RowSealing:
    """A store's sealing: ``ring`` is ``None`` when no master key is configured."""

    def __init__(self, ring: KeyRing | None) -> None:
        self.ring = ring
        self._logged: dict[tuple[DocKey, str, str], float] = {}  # refusals last logged, when

    @property
    def on(self) -> bool:
        return self.ring is not None

    # -- writing ---------------------------------------------------------------------------

    async def sealer(self, begin: _Begin, tenants: Iterable[str]) -> Sealer | None:
        """How the append about to run seals its rows (``None``: no master key). The keys are
        fetched here, before the append's transaction, so that it holds its locks no longer;
        a tenant's first write makes its data key in a transaction of its own."""
        ring = self.ring
        if ring is None:
            return None
        keys: dict[str, tuple[int, AESGCM]] = {}
        missing = []
        for tenant in tenants:
            cached = ring.cached_sealing_key(tenant)
            if cached is None:
                missing.append(tenant)
            else:
                keys[tenant] = cached
        if missing:
            async with begin(write=False, tenants=missing) as conn:
                for tenant in list(missing):
                    found = await ring.sealing_key(conn, tenant, create=False)
                    if found is not None:
                        keys[tenant] = found
                        missing.remove(tenant)
        if missing:
            # A tenant's first data key is made under the master-check row's lock, a row of
            # no tenant: key management, one of the scopes that span tenants.
            async with begin(write=True, tenants=ALL_TENANTS) as conn:
                for tenant in missing:
                    found = await ring.sealing_key(conn, tenant)
                    assert found is not None
                    keys[tenant] = found

        def sealed(key: DocKey, seq: int, data: bytes) -> bytes:
            generation, aead = keys[key.tenant]
            where = associated_data(key.tenant, key.name, Kind.UPDATE, seq)
            return seal(aead, generation, where, data)

        return sealed

    async def ensure_key(self, begin: _Begin, tenant: str) -> None:
        """Make sure ``tenant`` has a data key (for :meth:`seal` in a transaction to come)."""
        await self.sealer(begin, [tenant])

    async def seal(
        self, conn: AsyncConnection, key: DocKey, kind: Kind, number: int, data: bytes
    ) -> bytes:
        """``data`` as stored (sealed with a master key, else as it is). The tenant's key must
        exist: :meth:`ensure_key` before the transaction."""
        if self.ring is None:
            return data
        found = await self.ring.sealing_key(conn, key.tenant, create=False)
        if found is None:
            raise SealedRowError(f"tenant {key.tenant!r} has no data key to seal with", key)
        generation, aead = found
        return seal(aead, generation, associated_data(key.tenant, key.name, kind, number), data)

    async def shredded(self, begin: _Begin, tenants: Iterable[str]) -> set[str]:
        """Which of ``tenants`` had their data keys shredded, read from the table now (one
        read per tenant; nothing without a master key)."""
        names = sorted(set(tenants))
        if self.ring is None or not names:
            return set()
        found: set[str] = set()
        async with begin(write=False, tenants=names) as conn:
            for tenant in names:
                if (await self.ring.tenant(conn, tenant, force=True)).shredded:
                    found.add(tenant)
        return found

    # -- reading ---------------------------------------------------------------------------

    async def open(
        self, conn: AsyncConnection, key: DocKey, rows: Sequence[tuple[Kind, int, bytes]]
    ) -> list[bytes]:
        """The plaintext of each ``(kind, number, stored bytes)`` of document ``key``, in order.

        Raises:
            SealedRowError: one of them does not open (or the tenant was shredded): nothing of
                the document may be served.
        """
        ring = self.ring
        if ring is None:
            for kind, number, blob in rows:
                if is_sealed(blob):
                    self._refuse(key, kind, number, "it is sealed and no master key is configured")
            return [bytes(blob) for _, _, blob in rows]
        tenant = await ring.tenant(conn, key.tenant)
        if tenant.shredded:
            self._refuse(key, None, 0, "the tenant's data keys were shredded")
        generations: dict[int, int] = {}  # row index -> generation
        for i, (kind, number, blob) in enumerate(rows):
            if is_sealed(blob):
                try:
                    generations[i] = generation_of(blob)
                except ValueError as exc:
                    self._refuse(key, kind, number, str(exc))
        opened_keys, reasons = await ring.opening_keys(conn, key.tenant, set(generations.values()))
        out: list[bytes] = []
        for i, (kind, number, blob) in enumerate(rows):
            generation = generations.get(i)
            if generation is None:
                # Written before a master key was configured: served as it is, and sealed by
                # the next `syncd keys rotate` of its tenant (docs/privacy.md).
                out.append(bytes(blob))
                continue
            aead = opened_keys.get(generation)
            if aead is None:
                self._refuse(key, kind, number, reasons[generation])
            where = associated_data(key.tenant, key.name, kind, number)
            try:
                out.append(open_sealed(aead, bytes(blob), where))
            except ValueError as exc:
                self._refuse(key, kind, number, str(exc))
        return out

    async def open_one(
        self, conn: AsyncConnection, key: DocKey, kind: Kind, number: int, blob: bytes
    ) -> bytes:
        return (await self.open(conn, key, [(kind, number, blob)]))[0]

    async def check_tenant(self, conn: AsyncConnection, key: DocKey) -> None:
        """Refuse any document of a shredded tenant, also one without rows."""
        await self.open(conn, key, [])

    def _refuse(self, key: DocKey, kind: Kind | None, number: int, reason: str) -> None:
        where = f"{kind.value} {number}" if kind is not None else "document"
        # Clients retry and a stale room reloads every second: one error line per document
        # and reason a minute is enough to find it, the rest go to debug.
        now = time.monotonic()
        said = (key, where, reason)
        last = self._logged.get(said)
        level = logging.DEBUG if last is not None and now - last < _LOG_EVERY else logging.ERROR
        if level == logging.ERROR:
            self._logged[said] = now
            if len(self._logged) > 1000:  # bounded: forget the oldest
                del self._logged[next(iter(self._logged))]
        log.log(level, "document %s refused: its %s does not open: %s", key, where, reason)
        raise SealedRowError(f"document {key} cannot be opened ({where}: {reason})", key)
