"""Tables and migrations, shared by SQLite and Postgres (SQLAlchemy Core)."""

from __future__ import annotations

import secrets

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from . import row_security

metadata = MetaData()

# SQLite only makes INTEGER PRIMARY KEY an auto-incrementing rowid; BigInteger there would not be.
_BigId = BigInteger().with_variant(Integer(), "sqlite")

documents = Table(
    "syncd_documents",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("seq", BigInteger, nullable=False, default=0),
    Column("snapshot_seq", BigInteger, nullable=False, default=0),
    Column("size_bytes", BigInteger, nullable=False, default=0),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    # Access: "private" (owner only) or "shared" (owner + rows of syncd_grants).
    Column("mode", String(8), nullable=False, default="private"),
    # A deleted document keeps its row as a tombstone so that its id answers 4404, not "new".
    Column("deleted_at", Double, nullable=True),
    # The highest feed position removed from the log by retention: a feed subscriber whose
    # cursor is below it missed updates of this document and gets a reset instead.
    Column("pruned_pos", BigInteger, nullable=False, default=0),
    # A random id made when the document is created and made anew whenever its history is
    # rewritten (purge): a client holding state of another epoch must not merge it (§1.10).
    Column("epoch", String(32), nullable=False, server_default=""),
    # Set when a deleted document's content was erased (purge, or the end of the trash window);
    # a deleted document without it is in the trash, its content kept for a restore.
    Column("purged_at", Double, nullable=True),
    UniqueConstraint("tenant", "name", name="syncd_documents_tenant_name"),
)

grants = Table(
    "syncd_grants",
    metadata,
    Column(
        "doc_id",
        _BigId,
        ForeignKey("syncd_documents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("principal", String(64), primary_key=True),
    Column("role", String(8), nullable=False),  # "viewer" | "editor"
)

updates = Table(
    "syncd_updates",
    metadata,
    # ``pos`` orders every stored update across the store in commit order (the change feed's
    # position); it is allocated from ``syncd_feed_position``, see ``SqlStore.append``.
    Column("pos", BigInteger, primary_key=True, autoincrement=False),
    Column("doc_id", _BigId, ForeignKey("syncd_documents.id", ondelete="CASCADE"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("principal", String(64), nullable=False),
    Column("origin", String(16), nullable=False),
    Column("at", Double, nullable=False),
    Column("data", LargeBinary, nullable=False),
    UniqueConstraint("doc_id", "seq", name="syncd_updates_doc_seq"),
)
Index("syncd_updates_at", updates.c.doc_id, updates.c.at)

snapshots = Table(
    "syncd_snapshots",
    metadata,
    Column(
        "doc_id",
        _BigId,
        ForeignKey("syncd_documents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("upto_seq", BigInteger, nullable=False),
    Column("upto_pos", BigInteger, nullable=False),  # feed position of the update at upto_seq
    Column("state", LargeBinary, nullable=False),
    Column("at", Double, nullable=False),
    # syncd's mark that ``state`` passed the strict decoder (storage/snapshot_mark.py): an HMAC
    # under a key the database never holds; NULL, or one that does not verify: check it on load.
    Column("checked", LargeBinary, nullable=True),
)

# A document as a new client receives it (sync step 2 for an empty state vector: garbage
# collected, unlike the snapshot, which keeps history), written from the replica when a room
# unloads or its node stops. A cache, valid only while ``upto_seq`` and ``epoch`` are still the
# document's: a cold load then answers the first client with it while the replica is rebuilt
# from the snapshot and tail (storage/served_state.py).
served_states = Table(
    "syncd_served_states",
    metadata,
    Column(
        "doc_id",
        _BigId,
        ForeignKey("syncd_documents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("upto_seq", BigInteger, nullable=False),
    Column("epoch", String(32), nullable=False),
    Column("state_vector", LargeBinary, nullable=False),
    Column("state", LargeBinary, nullable=False),
    Column("at", Double, nullable=False),
)

# Stored updates that cannot be applied or viewed (written before the strict decoder, or hitting
# a yrs bug): kept in syncd_updates for inspection, left out of loads, compaction and the feed.
quarantine = Table(
    "syncd_quarantine",
    metadata,
    Column(
        "doc_id",
        _BigId,
        ForeignKey("syncd_documents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("seq", BigInteger, primary_key=True),  # 0: the document's snapshot
    Column("reason", String(200), nullable=False),
    Column("at", Double, nullable=False),
)

# Versions: pointers into a document's log (``seq``). ``state`` is the document at that seq,
# written only when compaction folds the log past it (the rows it would be rebuilt from may then
# be pruned): see ``storage/history.py``.
versions = Table(
    "syncd_versions",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("doc_id", _BigId, ForeignKey("syncd_documents.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(8), nullable=False),  # "named" | "auto"
    Column("seq", BigInteger, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("state", LargeBinary, nullable=True),
)
Index("syncd_versions_doc_seq", versions.c.doc_id, versions.c.seq)

# Privacy (DESIGN §1.11). Consent per principal and purpose ("analytics", ...): a missing row is
# no consent. Read by the feed on every page served to a purpose-bound service.
consents = Table(
    "syncd_consents",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("principal", String(64), primary_key=True),
    Column("purpose", String(32), primary_key=True),
    Column("granted", Boolean, nullable=False),
    Column("updated_at", Double, nullable=False),
)

# What was served to services: one row per feed page or HTTP read (bounded by retention).
# ``documents`` and ``principals`` are JSON lists of names.
audit = Table(
    "syncd_audit",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("at", Double, nullable=False),
    Column("service", String(64), nullable=False),
    Column("purpose", String(32), nullable=False, server_default=""),
    Column("kind", String(16), nullable=False),  # "feed" | "http" | ...
    Column("documents", Text, nullable=False),
    Column("principals", Text, nullable=False),
)
Index("syncd_audit_tenant_at", audit.c.tenant, audit.c.at)

# Web Push subscriptions (DESIGN §1.12): a browser's PushSubscription, owned by a principal.
push_subscriptions = Table(
    "syncd_push_subscriptions",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("principal", String(64), nullable=False),
    Column("endpoint", String(2048), nullable=False),
    Column("p256dh", String(256), nullable=False),
    Column("auth", String(128), nullable=False),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("tenant", "endpoint", name="syncd_push_subscriptions_tenant_endpoint"),
)
Index(
    "syncd_push_subscriptions_principal",
    push_subscriptions.c.tenant,
    push_subscriptions.c.principal,
)

# Encryption at rest (DESIGN §1.11): each tenant's data keys, wrapped (sealed) by the master key.
# A sealed row names the key generation that sealed it, so a tenant being re-encrypted under a
# new key reads both. ``wrapped`` is NULL once shredded: that generation can never open again.
data_keys = Table(
    "syncd_data_keys",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("generation", Integer, primary_key=True),
    Column("wrapped", LargeBinary, nullable=True),
    Column("created_at", Double, nullable=False),
    Column("state", String(8), nullable=False),  # "active" | "retired" | "shredded"
)

# Principals erased in a tenant (DESIGN §1.11, docs/privacy.md): no name, only a salted hash
# (sha256 of salt, tenant and principal id), so that erasure leaves no identity string while an
# erased principal's old offline replica still cannot create their documents again.
erased_principals = Table(
    "syncd_erased_principals",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("salt", String(32), nullable=False),
    Column("erased_at", Double, nullable=False),
)

# The clocks of lineages a document's history was rewritten away from (erasure): a replica of an
# old lineage (a stock Yjs client with no epoch guard) sends its structs back on reconnect, and
# every struct of ``client`` below ``clock`` is one of those (``storage/lineage_fence.py``).
lineage_fences = Table(
    "syncd_lineage_fences",
    metadata,
    Column(
        "doc_id",
        _BigId,
        ForeignKey("syncd_documents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("client", BigInteger, primary_key=True, autoincrement=False),
    Column("clock", BigInteger, nullable=False),
)

# One row: the last allocated feed position. Appending transactions lock it first and hold it
# until they commit, so positions become visible in order: once a position is visible, every
# smaller one is committed (or was never used). An autoincrement key would not promise that on
# Postgres, where a later key can commit before an earlier one.
feed_position = Table(
    "syncd_feed_position",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("pos", BigInteger, nullable=False),
)

schema_version = Table(
    "syncd_schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
)

SCHEMA_VERSION = 7


def new_epoch() -> str:
    """A fresh document epoch: random, so two lineages of one id never share one."""
    return secrets.token_hex(16)


async def migrate(conn: AsyncConnection) -> None:
    """Create the tables on an empty database; refuse a database newer than this code.

    Version 1 is the first schema; later versions append their DDL here, each step guarded by
    the stored version, so a daemon upgrades its database on start. Version 2 adds
    ``syncd_quarantine``, a new table that ``create_all`` makes on an older database. Version 3
    adds ``syncd_documents.epoch`` (``create_all`` does not alter existing tables): a column
    added empty, then a random epoch for every existing document. Version 4 adds
    ``syncd_versions`` (a new table) and ``syncd_documents.purged_at``: a document deleted
    before it had its content erased at once, so it is marked purged. Version 5 adds the
    privacy and push tables (consents, audit, push subscriptions, data keys): new tables only.
    Version 6 adds ``syncd_snapshots.checked`` (storage/snapshot_mark.py), empty: every older
    snapshot is checked once on its next load, then marked. Version 7 adds
    ``syncd_served_states`` (storage/served_state.py): a new table, empty.
    """
    if conn.dialect.name == "postgresql":
        # Nodes started together on an empty database would race to create the tables.
        await conn.execute(text("SELECT pg_advisory_xact_lock(7370636)"))
    await conn.run_sync(metadata.create_all)
    if (await conn.execute(feed_position.select())).first() is None:
        await conn.execute(feed_position.insert().values(id=1, pos=0))
    row = (await conn.execute(schema_version.select())).first()
    if row is None:
        await conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
    elif row.version > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema version {row.version} is newer than this syncd ({SCHEMA_VERSION})"
        )
    elif row.version < SCHEMA_VERSION:
        if row.version < 3:
            await _add_epochs(conn)
        if row.version < 4:
            await conn.execute(text("ALTER TABLE syncd_documents ADD COLUMN purged_at FLOAT"))
            await conn.execute(
                update(documents)
                .where(documents.c.deleted_at.is_not(None))
                .values(purged_at=documents.c.deleted_at)
            )
        if row.version < 6 and not await _has_column(conn, "syncd_snapshots", "checked"):
            blob = "BYTEA" if conn.dialect.name == "postgresql" else "BLOB"
            await conn.execute(text(f"ALTER TABLE syncd_snapshots ADD COLUMN checked {blob}"))
        await conn.execute(schema_version.update().values(version=SCHEMA_VERSION))
    if conn.dialect.name == "postgresql":
        # Tenant isolation in the database (storage/row_security.py), installed if missing.
        await row_security.install(conn)


async def _has_column(conn: AsyncConnection, table: str, column: str) -> bool:
    # A database turned back to an older version by hand (tests do) may have it already.
    columns = await conn.run_sync(lambda sync: inspect(sync).get_columns(table))
    return any(c["name"] == column for c in columns)


async def _add_epochs(conn: AsyncConnection) -> None:
    await conn.execute(
        text("ALTER TABLE syncd_documents ADD COLUMN epoch VARCHAR(32) NOT NULL DEFAULT ''")
    )
    ids = (await conn.execute(select(documents.c.id))).scalars().all()
    if ids:
        await conn.execute(
            update(documents)
            .where(documents.c.id == bindparam("doc"))
            .values(epoch=bindparam("e")),
            [{"doc": doc_id, "e": new_epoch()} for doc_id in ids],
        )
