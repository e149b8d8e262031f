"""The master key and the tenants' data keys (encryption at rest, DESIGN.md §1.11).

The master key (``SYNCD_MASTER_KEY_FILE``: 32 random bytes, base64) never seals a document: it
wraps the per-tenant data keys stored in ``syncd_data_keys`` (each sealed with AES-GCM, its
associated data naming tenant and generation, so a wrapped key copied to another tenant or
generation does not open). One more row, tenant ``""`` generation 0, holds a known plaintext
sealed by the master key: it tells at start (and before a new data key is made) whether this is
the master key that wrapped the others, so that a daemon started with an old key file is refused
with a clear error instead of wrapping new keys that nobody could open later.

Data keys are made on a tenant's first write, unwrapped once and cached in memory. The cache of
a tenant is checked against the table every ``check_seconds`` (5 s), on the next use after that:
a generation made by ``syncd keys rotate`` elsewhere is found at once (a row names its
generation), and a shredded tenant is refused from the next check on.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .schema import data_keys
from .sealing import Kind, SealedRowError, associated_data, open_sealed, seal

__all__ = [
    "ACTIVE",
    "CHECK",
    "CHECK_GENERATION",
    "CHECK_SECONDS",
    "CHECK_TENANT",
    "RETIRED",
    "SHREDDED",
    "KeyRing",
    "MasterKeyError",
    "check_row",
    "master_check_blob",
    "opens_master_check",
    "read_master_key",
    "refuse_keyless_start",
    "unwrap",
    "wrap",
]

log = logging.getLogger("syncd.storage.keys")

CHECK_SECONDS = 5.0
ACTIVE, RETIRED, SHREDDED, CHECK = "active", "retired", "shredded", "check"
# The master-check row: no real tenant is empty (tokens refuse it).
CHECK_TENANT, CHECK_GENERATION = "", 0
_CHECK_PLAINTEXT = b"syncd master key check v1"


class MasterKeyError(ValueError):
    """The master key file is missing or malformed, or it is not the key that wrapped the
    stored data keys. A configuration error: the daemon does not start."""


def read_master_key(path: Path) -> bytes:
    """The 32-byte master key in ``path`` (base64, surrounding whitespace ignored)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MasterKeyError(f"master key file {path}: {exc.strerror or exc}") from None
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(
            f"master key file {path} is not base64 (make one with: openssl rand -base64 32)"
        ) from None
    if len(key) != 32:
        raise MasterKeyError(
            f"master key file {path} holds {len(key)} bytes, not 32 (openssl rand -base64 32)"
        )
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("master key file %s is readable by others (chmod 600 it)", path)
    return key


def wrap(master: AESGCM, tenant: str, generation: int, data_key: bytes) -> bytes:
    return seal(master, 0, associated_data(tenant, "", Kind.DATA_KEY, generation), data_key)


def unwrap(master: AESGCM, tenant: str, generation: int, wrapped: bytes) -> bytes:
    """``ValueError`` unless ``master`` wrapped this key for this tenant and generation."""
    return open_sealed(
        master, bytes(wrapped), associated_data(tenant, "", Kind.DATA_KEY, generation)
    )


def master_check_blob(master: AESGCM) -> bytes:
    where = associated_data(CHECK_TENANT, "", Kind.MASTER_CHECK, CHECK_GENERATION)
    return seal(master, 0, where, _CHECK_PLAINTEXT)


def opens_master_check(master: AESGCM, blob: bytes) -> bool:
    where = associated_data(CHECK_TENANT, "", Kind.MASTER_CHECK, CHECK_GENERATION)
    try:
        return open_sealed(master, bytes(blob), where) == _CHECK_PLAINTEXT
    except ValueError:
        return False


async def check_row(conn: AsyncConnection) -> bytes | None:
    """The master-check row's sealed text; ``None`` if no master key was ever used here."""
    found = (
        await conn.execute(
            select(data_keys.c.wrapped).where(
                data_keys.c.tenant == CHECK_TENANT, data_keys.c.generation == CHECK_GENERATION
            )
        )
    ).scalar()
    return bytes(found) if found is not None else None


async def refuse_keyless_start(conn: AsyncConnection) -> None:
    """Without a master key, refuse a database that holds sealed data: its documents would be
    refused and new updates stored in plaintext beside them.

    Raises:
        MasterKeyError: a master key was used with this database.
    """
    if await check_row(conn) is not None:
        raise MasterKeyError(
            "this database holds sealed data (encryption at rest): start with its "
            "SYNCD_MASTER_KEY_FILE (without it, documents are refused and new updates would be "
            "stored in plaintext)"
        )


@dataclass
class _Tenant:
    """What the ring knows of one tenant since ``checked_at``."""

    checked_at: float
    active: int | None = None
    keys: dict[int, AESGCM] = field(default_factory=dict)  # generation -> opened data key
    unusable: dict[int, str] = field(default_factory=dict)  # generation -> why it cannot open
    shredded: bool = False


class KeyRing:
    """The unwrapped data keys of every tenant seen, and how to get more.

    Args:
        master: the 32-byte master key.
        check_seconds: how long a tenant's cached keys are used before the table is read again.
    """

    def __init__(self, master: bytes, *, check_seconds: float = CHECK_SECONDS) -> None:
        self._master = AESGCM(master)
        self.check_seconds = check_seconds
        self._tenants: dict[str, _Tenant] = {}

    @classmethod
    def from_file(cls, path: Path, **kw: float) -> KeyRing:
        return cls(read_master_key(path), **kw)

    @property
    def master(self) -> AESGCM:
        return self._master

    # -- start -----------------------------------------------------------------------------

    async def verify(self, conn: AsyncConnection) -> None:
        """Refuse a master key that did not wrap the stored data keys (in a write transaction:
        the check row is made on first use).

        Raises:
            MasterKeyError: naming what does not open, and what to do.
        """
        check = await self._check_row(conn)
        if not opens_master_check(self._master, check):
            raise MasterKeyError(
                "the master key (SYNCD_MASTER_KEY_FILE) is not the one that wrapped this "
                "database's data keys: it was rotated (syncd keys rotate-master) or belongs to "
                "another database; start with the current key file"
            )
        rows = await conn.execute(
            select(data_keys.c.tenant, data_keys.c.generation, data_keys.c.wrapped).where(
                data_keys.c.tenant != CHECK_TENANT, data_keys.c.wrapped.is_not(None)
            )
        )
        for tenant, generation, wrapped in rows:
            try:
                unwrap(self._master, tenant, generation, wrapped)
            except ValueError:
                raise MasterKeyError(
                    f"data key generation {generation} of tenant {tenant!r} does not open with "
                    "this master key (wrapped by another one, or altered)"
                ) from None

    async def _check_row(self, conn: AsyncConnection) -> bytes:
        found = await check_row(conn)
        if found is not None:
            return found
        where = (data_keys.c.tenant == CHECK_TENANT, data_keys.c.generation == CHECK_GENERATION)
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        await conn.execute(
            insert(data_keys)
            .values(
                tenant=CHECK_TENANT,
                generation=CHECK_GENERATION,
                wrapped=master_check_blob(self._master),
                created_at=time.time(),
                state=CHECK,
            )
            .on_conflict_do_nothing(index_elements=["tenant", "generation"])
        )
        return bytes((await conn.execute(select(data_keys.c.wrapped).where(*where))).scalar_one())

    # -- sealing ---------------------------------------------------------------------------

    def cached_sealing_key(self, tenant: str) -> tuple[int, AESGCM] | None:
        """The tenant's active key if checked less than ``check_seconds`` ago (no I/O)."""
        t = self._tenants.get(tenant)
        if t is None or t.shredded or t.active not in t.keys or self._stale(t):
            return None  # (an active key that does not open: sealing_key says why)
        assert t.active is not None
        return t.active, t.keys[t.active]

    async def sealing_key(
        self, conn: AsyncConnection, tenant: str, *, create: bool = True
    ) -> tuple[int, AESGCM] | None:
        """The tenant's active data key, made on its first write (``create``; in a write
        transaction). ``None`` only when it has none and ``create`` is false.

        Raises:
            SealedRowError: the tenant was shredded, or its active key does not open.
            MasterKeyError: no key may be made: this master key did not wrap the others.
        """
        t = await self.tenant(conn, tenant)
        if t.shredded:
            raise SealedRowError(f"tenant {tenant!r}: its data keys were shredded")
        if t.active is None:
            if not create:
                return None
            await self.create_generation(conn, tenant, unless_active=True)
            t = await self.tenant(conn, tenant, force=True)
            if t.active is None:
                raise SealedRowError(f"tenant {tenant!r}: no active data key could be made")
        if t.active not in t.keys:
            reason = t.unusable.get(t.active, "missing")
            raise SealedRowError(f"tenant {tenant!r}: active data key {t.active}: {reason}")
        return t.active, t.keys[t.active]

    async def create_generation(
        self, conn: AsyncConnection, tenant: str, *, unless_active: bool = False
    ) -> int:
        """A new active data key generation for ``tenant`` (in a write transaction scoped to
        all tenants: it locks the master-check row); returns it. ``unless_active``: a tenant's
        first write, where another node may have made the key while this one waited for the
        lock; then that one is returned."""
        # Under the check row's lock (Postgres; SQLite writers are serialised anyway), so that
        # a master-key rotation committing meanwhile cannot leave this key wrapped by the old
        # master key.
        check = (
            await conn.execute(
                select(data_keys.c.wrapped)
                .where(
                    data_keys.c.tenant == CHECK_TENANT,
                    data_keys.c.generation == CHECK_GENERATION,
                )
                .with_for_update()
            )
        ).scalar()
        if check is None:
            check = await self._check_row(conn)
        if not opens_master_check(self._master, check):
            raise MasterKeyError(
                "the master key was rotated since this process started: restart it with the "
                "new key file before it makes data keys"
            )
        if unless_active:
            made = (
                await conn.execute(
                    select(data_keys.c.generation).where(
                        data_keys.c.tenant == tenant, data_keys.c.state == ACTIVE
                    )
                )
            ).scalar()
            if made is not None:
                return int(made)
        last = (
            await conn.execute(
                select(data_keys.c.generation)
                .where(data_keys.c.tenant == tenant)
                .order_by(data_keys.c.generation.desc())
                .limit(1)
            )
        ).scalar()
        generation = (last or 0) + 1
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        await conn.execute(
            insert(data_keys)
            .values(
                tenant=tenant,
                generation=generation,
                wrapped=wrap(self._master, tenant, generation, AESGCM.generate_key(256)),
                created_at=time.time(),
                state=ACTIVE,
            )
            .on_conflict_do_nothing(index_elements=["tenant", "generation"])
        )
        log.info("tenant %r: made data key generation %d", tenant, generation)
        return generation

    # -- opening ---------------------------------------------------------------------------

    async def opening_keys(
        self, conn: AsyncConnection, tenant: str, generations: set[int]
    ) -> tuple[dict[int, AESGCM], dict[int, str]]:
        """The opened keys of ``generations`` and, for those that do not open, why."""
        t = await self.tenant(conn, tenant)
        if not generations <= t.keys.keys():
            t = await self.tenant(conn, tenant, force=True)  # made by a rotation elsewhere?
        keys = {g: t.keys[g] for g in generations if g in t.keys}
        reasons = {
            g: t.unusable.get(g, f"no data key generation {g} for this tenant")
            for g in generations
            if g not in keys
        }
        return keys, reasons

    async def tenant(self, conn: AsyncConnection, tenant: str, *, force: bool = False) -> _Tenant:
        """The tenant's keys, read again from the table if older than ``check_seconds``."""
        t = self._tenants.get(tenant)
        if t is not None and not force and not self._stale(t):
            return t
        rows = (
            await conn.execute(
                select(data_keys.c.generation, data_keys.c.wrapped, data_keys.c.state).where(
                    data_keys.c.tenant == tenant
                )
            )
        ).all()
        fresh = _Tenant(time.monotonic())
        for generation, wrapped, state in rows:
            if state == SHREDDED:
                fresh.shredded = True
                fresh.unusable[generation] = "the tenant's data keys were shredded"
                continue
            if wrapped is None:
                fresh.unusable[generation] = f"sealed under retired key generation {generation}"
                continue
            if state == ACTIVE:
                fresh.active = max(generation, fresh.active or 0)
            known = t.keys.get(generation) if t is not None else None
            if known is not None:  # unwrapped before: a rewrap by rotate-master changes nothing
                fresh.keys[generation] = known
                continue
            try:
                fresh.keys[generation] = AESGCM(unwrap(self._master, tenant, generation, wrapped))
            except ValueError:
                fresh.unusable[generation] = (
                    f"data key generation {generation} does not open with this master key "
                    "(rotated? restart with the current key file)"
                )
        self._tenants[tenant] = fresh
        return fresh

    def forget(self, tenant: str) -> None:
        self._tenants.pop(tenant, None)

    def _stale(self, t: _Tenant) -> bool:
        return time.monotonic() - t.checked_at >= self.check_seconds
