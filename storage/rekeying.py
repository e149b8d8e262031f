"""Changing keys: the master key, a tenant's data key, and shredding (``syncd keys …``).

- :func:`rewrap_master`: every data key is unwrapped with the current master key and wrapped
  with the new one, the master-check row too, in one transaction; no document row changes.
  Running daemons keep the keys they unwrapped and go on serving; restart them with the new key
  file (one that would make a new tenant's key first refuses to: the check row no longer opens
  with its master key).
- :func:`rotate_tenant`: a new generation becomes the tenant's active key (the old one retired:
  it still opens, it no longer seals), then every row of the tenant not sealed under it —
  plaintext rows written before a master key was configured included — is opened and sealed
  again, in batches, each row replaced only if it is still the bytes that were read (a
  compare-and-set: a compaction or erasure rewriting it meanwhile wins). Daemons switch to the
  new key within ``CHECK_SECONDS`` of their next write, and an append that fetched the old key
  commits within the store deadline, so after ``settle_seconds`` a last pass finds what they
  wrote meanwhile; once a pass finds nothing left, the retired keys are destroyed.
- :func:`shred_tenant`: the tenant's data keys are destroyed; its rows stay, unreadable, and
  every read of the tenant is refused.

After a rotation or a shred, what the database freed is scrubbed: on SQLite the file is rebuilt
(``VACUUM`` with ``secure_delete``, then the WAL truncated), which also removes the old copies
of rows a rotation re-sealed; on Postgres ``VACUUM FULL syncd_data_keys`` (the destroyed keys;
old row versions of the document tables are left to autovacuum). Backups and WAL archives keep
what they kept (docs/privacy.md).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .key_ring import (
    ACTIVE,
    CHECK_GENERATION,
    CHECK_SECONDS,
    CHECK_TENANT,
    RETIRED,
    SHREDDED,
    KeyRing,
    master_check_blob,
    unwrap,
    wrap,
)
from .row_security import ALL_TENANTS
from .schema import data_keys
from .sealing import Kind, associated_data, generation_of, is_sealed, seal
from .sql import SqlStore
from .store import DocKey

__all__ = [
    "KeyStatus",
    "RekeyError",
    "Rotation",
    "key_status",
    "rewrap_master",
    "rotate_tenant",
    "shred_tenant",
]

Report = Callable[[str], None]

log = logging.getLogger("syncd.storage.keys")


class RekeyError(RuntimeError):
    """The key operation cannot be done as asked (the message says why and what to do)."""


def _ring(store: SqlStore) -> KeyRing:
    if store.sealing.ring is None:
        raise RekeyError("no master key: set SYNCD_MASTER_KEY_FILE or pass --master-key-file")
    return store.sealing.ring


async def rewrap_master(store: SqlStore, new_master: bytes) -> int:
    """Wrap every data key with ``new_master`` instead (the store opened with the current
    key, which ``SqlStore.open`` verified); returns how many keys were re-wrapped."""
    ring = _ring(store)
    new = AESGCM(new_master)
    async with store._begin(tenants=ALL_TENANTS) as conn:
        await ring.verify(conn)  # the current key file opens every key, under this transaction
        check = (
            data_keys.c.tenant == CHECK_TENANT,
            data_keys.c.generation == CHECK_GENERATION,
        )
        await conn.execute(select(data_keys.c.wrapped).where(*check).with_for_update())
        rows = (
            await conn.execute(
                select(data_keys.c.tenant, data_keys.c.generation, data_keys.c.wrapped).where(
                    data_keys.c.tenant != CHECK_TENANT, data_keys.c.wrapped.is_not(None)
                )
            )
        ).all()
        for tenant, generation, wrapped in rows:
            key = unwrap(ring.master, tenant, generation, wrapped)
            await conn.execute(
                update(data_keys)
                .where(data_keys.c.tenant == tenant, data_keys.c.generation == generation)
                .values(wrapped=wrap(new, tenant, generation, key))
            )
        await conn.execute(update(data_keys).where(*check).values(wrapped=master_check_blob(new)))
    return len(rows)


@dataclass
class Rotation:
    tenant: str
    generation: int  # the new active one
    resealed: int = 0  # rows sealed again (updates, snapshots, version states)
    retired: tuple[int, ...] = ()  # generations destroyed at the end


# (table, SELECT of a batch after a cursor, UPDATE of one row if unchanged). Each SELECT returns
# (cursor, name, kind number, stored bytes, row id for the UPDATE).
_PASSES: tuple[tuple[str, Kind, str, str], ...] = (
    (
        "updates",
        Kind.UPDATE,
        "SELECT u.pos, d.name, u.seq, u.data, u.pos FROM syncd_updates u"
        " JOIN syncd_documents d ON d.id = u.doc_id"
        " WHERE d.tenant = :tenant AND u.pos > :after ORDER BY u.pos LIMIT :n",
        "UPDATE syncd_updates SET data = :new WHERE pos = :id AND data = :old",
    ),
    (
        "snapshots",
        Kind.SNAPSHOT,
        "SELECT s.doc_id, d.name, s.upto_seq, s.state, s.doc_id FROM syncd_snapshots s"
        " JOIN syncd_documents d ON d.id = s.doc_id"
        " WHERE d.tenant = :tenant AND s.doc_id > :after ORDER BY s.doc_id LIMIT :n",
        "UPDATE syncd_snapshots SET state = :new WHERE doc_id = :id AND state = :old",
    ),
    (
        "served states",
        Kind.SERVED_STATE,
        "SELECT s.doc_id, d.name, s.upto_seq, s.state, s.doc_id FROM syncd_served_states s"
        " JOIN syncd_documents d ON d.id = s.doc_id"
        " WHERE d.tenant = :tenant AND s.doc_id > :after ORDER BY s.doc_id LIMIT :n",
        "UPDATE syncd_served_states SET state = :new WHERE doc_id = :id AND state = :old",
    ),
    (
        "versions",
        Kind.VERSION,
        "SELECT v.id, d.name, v.id, v.state, v.id FROM syncd_versions v"
        " JOIN syncd_documents d ON d.id = v.doc_id"
        " WHERE d.tenant = :tenant AND v.state IS NOT NULL AND v.id > :after"
        " ORDER BY v.id LIMIT :n",
        "UPDATE syncd_versions SET state = :new WHERE id = :id AND state = :old",
    ),
)


async def rotate_tenant(
    store: SqlStore,
    tenant: str,
    *,
    batch: int = 500,
    settle_seconds: float | None = None,
    report: Report = lambda _: None,
) -> Rotation:
    """Re-encrypt ``tenant`` under a fresh data key, the daemon running or not (see the
    module's docstring); ``settle_seconds`` defaults to ``CHECK_SECONDS`` plus the store's
    deadline plus one."""
    ring = _ring(store)
    if settle_seconds is None:
        settle_seconds = CHECK_SECONDS + store.timeout + 1.0
    async with store._begin(tenants=ALL_TENANTS) as conn:
        state = await ring.tenant(conn, tenant, force=True)
        if state.shredded:
            raise RekeyError(f"tenant {tenant!r} was shredded: there is nothing to re-encrypt")
        generation = await ring.create_generation(conn, tenant)
        await conn.execute(
            update(data_keys)
            .where(
                data_keys.c.tenant == tenant,
                data_keys.c.generation < generation,
                data_keys.c.state == ACTIVE,
            )
            .values(state=RETIRED)
        )
    switched = time.monotonic()
    report(f"tenant {tenant!r}: data key generation {generation} is active")
    rotation = Rotation(tenant, generation)
    rotation.resealed += await _reseal_all(store, ring, tenant, generation, batch, report)
    wait = switched + settle_seconds - time.monotonic()
    if wait > 0:
        report(f"waiting {wait:.0f} s for running daemons to switch to the new key")
        await asyncio.sleep(wait)  # no event to await: other processes' caches expire by time
    while True:  # what daemons sealed under the old key before they switched, then nothing
        found = await _reseal_all(store, ring, tenant, generation, batch, report)
        rotation.resealed += found
        if found == 0:
            break
    async with store._begin(tenants=[tenant]) as conn:
        retired = (
            await conn.execute(
                update(data_keys)
                .where(
                    data_keys.c.tenant == tenant,
                    data_keys.c.generation < generation,
                    data_keys.c.wrapped.is_not(None),
                    data_keys.c.state != SHREDDED,
                )
                .values(wrapped=None, state=RETIRED)
                .returning(data_keys.c.generation)
            )
        ).scalars()
        rotation.retired = tuple(sorted(retired))
    if rotation.retired:
        report(f"retired (destroyed) generations {', '.join(map(str, rotation.retired))}")
    # Old copies of what was re-sealed (plaintext rows among them) and of the destroyed keys
    # stay in free pages and the WAL until the file is rebuilt.
    await _scrub_freed_bytes(store)
    return rotation


async def _reseal_all(
    store: SqlStore, ring: KeyRing, tenant: str, generation: int, batch: int, report: Report
) -> int:
    total = 0
    for table, kind, query, change in _PASSES:
        after, done = -1, 0
        while True:
            async with store._begin(tenants=[tenant]) as conn:
                rows = (
                    await conn.execute(text(query), {"tenant": tenant, "after": after, "n": batch})
                ).all()
                if not rows:
                    break
                after = rows[-1][0]
                done += await _reseal(conn, store, ring, tenant, generation, kind, rows, change)
            report(f"{table}: {done} re-sealed so far (up to {after})")
        total += done
    return total


async def _reseal(
    conn: AsyncConnection,
    store: SqlStore,
    ring: KeyRing,
    tenant: str,
    generation: int,
    kind: Kind,
    rows: list,  # type: ignore[type-arg]
    change: str,
) -> int:
    stale = [r for r in rows if not is_sealed(r[3]) or generation_of(bytes(r[3])) != generation]
    if not stale:
        return 0
    keys, reasons = await ring.opening_keys(conn, tenant, {generation})
    if generation not in keys:
        raise RekeyError(f"tenant {tenant!r}: new key {generation}: {reasons[generation]}")
    aead = keys[generation]
    params = []
    for _, name, number, stored, row_id in stale:
        plain = await store.sealing.open_one(conn, DocKey(tenant, name), kind, number, stored)
        where = associated_data(tenant, name, kind, number)
        params.append({"new": seal(aead, generation, where, plain), "id": row_id, "old": stored})
    await conn.execute(text(change), params)
    return len(params)


async def shred_tenant(store: SqlStore, tenant: str, *, force: bool = False) -> int:
    """Destroy ``tenant``'s data keys (crypto-shredding); returns how many were destroyed.

    Raises:
        RekeyError: rows of the tenant are plaintext (written before a master key), which no
            shredding can make unreadable; unless ``force``, nothing is done.
    """
    _ring(store)
    async with store._begin(tenants=[tenant]) as conn:
        plaintext = await _plaintext_rows(conn, tenant)
        if plaintext and not force:
            raise RekeyError(
                f"tenant {tenant!r} has {plaintext} plaintext rows (written before a master key "
                "was configured): shredding cannot make them unreadable. Run `syncd keys rotate "
                f"--tenant {tenant}` first (or pass --force)"
            )
        destroyed = (
            await conn.execute(
                update(data_keys)
                .where(data_keys.c.tenant == tenant, data_keys.c.wrapped.is_not(None))
                .values(wrapped=None, state=SHREDDED)
                .returning(data_keys.c.generation)
            )
        ).all()
        await conn.execute(
            update(data_keys).where(data_keys.c.tenant == tenant).values(state=SHREDDED)
        )
        marked = (
            await conn.execute(select(data_keys.c.generation).where(data_keys.c.tenant == tenant))
        ).first()
        if marked is None:  # never had a key: mark it, so that it is refused from now on
            await conn.execute(
                data_keys.insert().values(
                    tenant=tenant,
                    generation=1,
                    wrapped=None,
                    created_at=time.time(),
                    state=SHREDDED,
                )
            )
    await _scrub_freed_bytes(store)
    return len(destroyed)


async def _plaintext_rows(conn: AsyncConnection, tenant: str) -> int:
    magic = "X'ff5364'" if conn.dialect.name == "sqlite" else "'\\xff5364'::bytea"
    head = "substr({c}, 1, 3)" if conn.dialect.name == "sqlite" else "substring({c} from 1 for 3)"
    total = 0
    for table, column in (
        ("syncd_updates", "data"),
        ("syncd_snapshots", "state"),
        ("syncd_served_states", "state"),
        ("syncd_versions", "state"),
    ):
        total += (
            await conn.execute(
                text(
                    f"SELECT COUNT(*) FROM {table} t JOIN syncd_documents d ON d.id = t.doc_id"
                    f" WHERE d.tenant = :tenant AND t.{column} IS NOT NULL"
                    f" AND {head.format(c='t.' + column)} <> {magic}"
                ),
                {"tenant": tenant},
            )
        ).scalar_one()
    return int(total)


async def _scrub_freed_bytes(store: SqlStore) -> None:
    """The destroyed keys' bytes out of the database's files, as far as the database can. The
    key change is committed already: a scrub that cannot run now is a warning, not a failure."""
    try:
        if store.dialect == "sqlite":
            path = store.url.split(":///", 1)[1]
            async with store.write_turn():  # the appender's thread waits meanwhile
                await asyncio.to_thread(_scrub_sqlite, path)
            return
        url = store.url.replace("postgresql+psycopg://", "postgresql://", 1)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("VACUUM FULL syncd_data_keys")
    except (sqlite3.Error, psycopg.Error) as exc:
        log.warning(
            "the keys are changed, but the database's freed pages could not be scrubbed now "
            "(%s): run VACUUM (SQLite) or VACUUM FULL syncd_data_keys (Postgres, as the tables' "
            "owner) later",
            str(exc).strip(),
        )


def _scrub_sqlite(path: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=10000")  # a running daemon's write commits first
        conn.execute("PRAGMA secure_delete=ON")
        # Rewriting the table's pages with secure_delete zeroes what the update freed; the
        # checkpoint then moves them into the file and truncates the WAL that held old copies.
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


@dataclass(frozen=True, slots=True)
class KeyStatus:
    tenant: str
    generation: int
    state: str  # active | retired | shredded
    created_at: float
    destroyed: bool  # its wrapped key is gone
    updates_since: int  # updates the tenant stored since it was made (the seals, about)


async def key_status(store: SqlStore) -> list[KeyStatus]:
    """Every tenant's data key generations, with the updates stored since each was made: a
    lower bound of its seals (rows pruned by retention are not counted; compactions add one
    seal each), to compare with the nonce budget (docs/privacy.md)."""
    async with store._begin(write=False, tenants=ALL_TENANTS) as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT k.tenant, k.generation, k.state, k.created_at, k.wrapped IS NULL,"
                    " (SELECT COUNT(*) FROM syncd_updates u JOIN syncd_documents d"
                    "  ON d.id = u.doc_id WHERE d.tenant = k.tenant AND u.at >= k.created_at)"
                    " FROM syncd_data_keys k WHERE k.tenant <> :check"
                    " ORDER BY k.tenant, k.generation"
                ),
                {"check": CHECK_TENANT},
            )
        ).all()
    return [KeyStatus(r[0], r[1], r[2], r[3], bool(r[4]), int(r[5])) for r in rows]
