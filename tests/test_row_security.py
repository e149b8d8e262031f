"""Tenant isolation in Postgres (issue 12, acceptance 6): row-level security on syncd's tables.

Every test connects as an ordinary role made here with the GRANTs docs/deployment.md gives
(never a superuser, which bypasses every policy); the tables are owned by the test's superuser,
as they would be by a separate owner role in a deployment.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace

import httpx
import psycopg
import pytest
from psycopg import errors as pg_errors
from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage import DocKey, NewUpdate, SqlStore
from storage.history import SqlHistory
from storage.row_security import ALL_TENANTS, DOCUMENT_TABLES, TENANT_TABLES, scope_value
from storage.trash import SqlTrash
from syncd.settings import Settings
from tests.support.servers import start_daemon
from tests.support.updates import text_updates

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

ALL_TABLES = TENANT_TABLES + DOCUMENT_TABLES
A = DocKey("tenant-a", "alice/notes")
B = DocKey("tenant-b", "bob/notes")


@dataclass(frozen=True)
class Database:
    owner_url: str  # the superuser: owns the tables (and bypasses the policies)
    app_url: str  # the ordinary role the daemon runs as
    role: str

    def owner(self) -> psycopg.Connection:
        return psycopg.connect(_libpq(self.owner_url), autocommit=True)

    def app(self) -> psycopg.Connection:
        return psycopg.connect(_libpq(self.app_url))


def _libpq(url: str) -> str:
    return make_url(url).render_as_string(hide_password=False).replace("+psycopg", "")


def _grant(conn: psycopg.Connection, role: str) -> None:
    """The GRANTs of docs/deployment.md, for the test's schema."""
    schema = conn.execute("SELECT current_schema()").fetchone()[0]  # type: ignore[index]
    conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
    conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}")
    conn.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")


@pytest.fixture
def database(postgres_url: str) -> Iterator[Database]:
    role = f"syncd_rls_{uuid.uuid4().hex[:10]}"
    app_url = make_url(postgres_url).set(username=role).render_as_string(hide_password=False)
    db = Database(postgres_url, app_url, role)
    with db.owner() as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
    try:
        yield db
    finally:
        with db.owner() as conn:
            conn.execute(f"DROP OWNED BY {role}")  # its privileges in this database
            conn.execute(f"DROP ROLE {role}")


async def _open(url: str) -> SqlStore:
    store = SqlStore(url)
    await store.open()
    return store


@pytest.fixture
async def seeded(database: Database) -> AsyncIterator[Database]:
    """Tables made by the owner, rows of two tenants in every table, GRANTs to the role."""
    store = await _open(database.owner_url)
    try:
        for key, who in ((A, "alice"), (B, "bob")):
            ups, _ = text_updates(3)
            await store.append({key: [NewUpdate(u, who, "client") for u in ups]})
            await store.compact(key)  # a snapshot
            await store.append({key: [NewUpdate(text_updates(1, client_id=9)[0][0], who, "http")]})
            await store.set_access(key, "shared", {"carol": "viewer"})
            await store.quarantine(key, {99: "planted"})
            await SqlHistory(store).create_version(key, "v1", "named", who)
    finally:
        await store.close()
    now = time.time()
    with database.owner() as conn:
        for key in (A, B):
            t = key.tenant
            conn.execute(
                "INSERT INTO syncd_consents VALUES (%s, 'p', 'analytics', true, %s)", (t, now)
            )
            conn.execute(
                "INSERT INTO syncd_audit (tenant, at, service, purpose, kind, documents,"
                " principals) VALUES (%s, %s, 'svc', '', 'feed', '[]', '[]')",
                (t, now),
            )
            conn.execute(
                "INSERT INTO syncd_push_subscriptions (tenant, principal, endpoint, p256dh, auth,"
                " created_at) VALUES (%s, 'p', 'https://push.example/x', 'k', 'a', %s)",
                (t, now),
            )
            conn.execute(
                "INSERT INTO syncd_data_keys VALUES (%s, 1, 'wrapped', %s, 'active')", (t, now)
            )
            conn.execute(
                "INSERT INTO syncd_erased_principals VALUES (%s, 'digest', 'salt', %s)", (t, now)
            )
            conn.execute(
                "INSERT INTO syncd_lineage_fences SELECT id, 5, 10 FROM syncd_documents"
                " WHERE tenant = %s AND name = %s",
                (t, key.name),
            )
            conn.execute(
                "INSERT INTO syncd_served_states SELECT id, seq, epoch, 'sv', 'state', 0"
                " FROM syncd_documents WHERE tenant = %s AND name = %s",
                (t, key.name),
            )
        _grant(conn, database.role)
    return database


def _counts(conn: psycopg.Connection) -> dict[str, int]:
    return {
        table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
        for table in ALL_TABLES
    }


def _tenant_counts(conn: psycopg.Connection, tenant: str) -> dict[str, int]:
    """Rows of ``tenant`` per table, counted by the owner (who sees everything)."""
    out = {}
    for table in ALL_TABLES:
        if table in TENANT_TABLES:
            sql = f"SELECT count(*) FROM {table} WHERE tenant = %s"
        else:
            sql = (
                f"SELECT count(*) FROM {table} t JOIN syncd_documents d ON d.id = t.doc_id"
                " WHERE d.tenant = %s"
            )
        out[table] = conn.execute(sql, (tenant,)).fetchone()[0]  # type: ignore[index]
    return out


def _doc_id(conn: psycopg.Connection, key: DocKey) -> int:
    row = conn.execute(
        "SELECT id FROM syncd_documents WHERE tenant = %s AND name = %s", (key.tenant, key.name)
    ).fetchone()
    assert row is not None
    return row[0]


def _insert_one(conn: psycopg.Connection, table: str, tenant: str, doc_id: int) -> None:
    """One plausible new row of ``table`` for ``tenant`` (``doc_id``: a document of it)."""
    now = time.time()
    rows = {
        "syncd_documents": (
            "INSERT INTO syncd_documents (tenant, name, seq, snapshot_seq, size_bytes, created_at,"
            " updated_at, mode, pruned_pos, epoch) VALUES (%s, 'eve/new', 0, 0, 0, 0, 0,"
            " 'private', 0, 'e')",
            (tenant,),
        ),
        "syncd_consents": (
            "INSERT INTO syncd_consents VALUES (%s, 'eve', 'analytics', true, %s)",
            (tenant, now),
        ),
        "syncd_audit": (
            "INSERT INTO syncd_audit (tenant, at, service, purpose, kind, documents, principals)"
            " VALUES (%s, %s, 'eve', '', 'feed', '[]', '[]')",
            (tenant, now),
        ),
        "syncd_push_subscriptions": (
            "INSERT INTO syncd_push_subscriptions (tenant, principal, endpoint, p256dh, auth,"
            " created_at) VALUES (%s, 'eve', 'https://push.example/eve', 'k', 'a', %s)",
            (tenant, now),
        ),
        "syncd_data_keys": (
            "INSERT INTO syncd_data_keys VALUES (%s, 7, 'k', %s, 'active')",
            (tenant, now),
        ),
        "syncd_grants": ("INSERT INTO syncd_grants VALUES (%s, 'eve', 'editor')", (doc_id,)),
        "syncd_updates": (
            "INSERT INTO syncd_updates VALUES (1000000, %s, 1000, 'eve', 'client', 0, 'x')",
            (doc_id,),
        ),
        "syncd_snapshots": None,  # one per document, which the seed made: updated below
        "syncd_quarantine": (
            "INSERT INTO syncd_quarantine VALUES (%s, 1000, 'eve', 0)",
            (doc_id,),
        ),
        "syncd_versions": (
            "INSERT INTO syncd_versions (doc_id, name, kind, seq, created_at, created_by)"
            " VALUES (%s, 'eve', 'named', 1, 0, 'eve')",
            (doc_id,),
        ),
        "syncd_erased_principals": (
            "INSERT INTO syncd_erased_principals VALUES (%s, 'eve', 'salt', %s)",
            (tenant, now),
        ),
        "syncd_lineage_fences": (
            "INSERT INTO syncd_lineage_fences VALUES (%s, 77, 1)",
            (doc_id,),
        ),
        "syncd_served_states": None,  # one per document, which the seed made: replaced below
    }[table]
    if rows is None:  # a table of one row per document
        conn.execute(f"DELETE FROM {table} WHERE doc_id = %s", (doc_id,))
        values = "1, 1, 'x', 0" if table == "syncd_snapshots" else "1, 'e', 'sv', 'x', 0"
        conn.execute(f"INSERT INTO {table} VALUES (%s, {values})", (doc_id,))
        return
    conn.execute(*rows)


def _scoped(conn: psycopg.Connection, scope: str) -> None:
    conn.execute("SELECT set_config('syncd.tenants', %s, true)", (scope,))


def test_scope_names_cannot_widen_the_scope() -> None:
    assert scope_value(["b", "a", "a"]) == "a,b"
    assert scope_value("tenant-a") == "tenant-a"  # one name, not its letters
    assert scope_value(ALL_TENANTS) == "*"
    assert scope_value([]) == ""
    for bad in ("a,b", "*", ""):
        with pytest.raises(ValueError):
            scope_value([bad])


async def test_without_the_tenant_setting_a_session_reads_and_writes_nothing(
    seeded: Database,
) -> None:
    with seeded.owner() as owner:
        everything = _counts(owner)
        ids = {key: _doc_id(owner, key) for key in (A, B)}
    assert all(n > 0 for n in everything.values()), everything  # every table has rows
    with seeded.app() as conn:
        role = conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        assert role.fetchone() == (False, False)
        assert _counts(conn) == dict.fromkeys(ALL_TABLES, 0)
        conn.rollback()
        for table in ALL_TABLES:
            with pytest.raises(pg_errors.InsufficientPrivilege, match="row-level security"):
                _insert_one(conn, table, A.tenant, ids[A])
            conn.rollback()
        # Updates and deletes find nothing to touch.
        assert conn.execute("UPDATE syncd_documents SET mode = 'private'").rowcount == 0
        assert conn.execute("DELETE FROM syncd_updates").rowcount == 0
        conn.commit()
    with seeded.owner() as owner:
        assert _counts(owner) == everything


async def test_with_tenant_a_set_a_session_sees_and_writes_only_a(seeded: Database) -> None:
    with seeded.owner() as owner:
        expected_a = _tenant_counts(owner, A.tenant)
        ids = {key: _doc_id(owner, key) for key in (A, B)}
    assert all(n > 0 for n in expected_a.values())
    with seeded.app() as conn:
        _scoped(conn, A.tenant)
        assert _counts(conn) == expected_a
        names = conn.execute("SELECT DISTINCT tenant FROM syncd_documents").fetchall()
        assert names == [(A.tenant,)]
        # B's rows cannot be reached, even by id.
        assert (
            conn.execute("SELECT 1 FROM syncd_updates WHERE doc_id = %s", (ids[B],)).rowcount == 0
        )
        assert (
            conn.execute("UPDATE syncd_documents SET mode = 'private' WHERE id = %s", (ids[B],))
        ).rowcount == 0
        # Moving A's row into B is a write B's scope would need.
        with pytest.raises(pg_errors.InsufficientPrivilege):
            conn.execute("UPDATE syncd_documents SET tenant = %s WHERE id = %s", (B.tenant, ids[A]))
        conn.rollback()
        for table in ALL_TABLES:
            _scoped(conn, A.tenant)
            _insert_one(conn, table, A.tenant, ids[A])  # A's own: accepted
            conn.rollback()
            _scoped(conn, A.tenant)
            with pytest.raises(pg_errors.InsufficientPrivilege, match="row-level security"):
                _insert_one(conn, table, B.tenant, ids[B])
            conn.rollback()
        # The setting is the transaction's: the next one on this connection sees nothing.
        _scoped(conn, A.tenant)
        conn.commit()
        assert _counts(conn) == dict.fromkeys(ALL_TABLES, 0)
        # Several tenants (a group commit) see both, and still nothing of a third.
        _scoped(conn, f"{A.tenant},{B.tenant},tenant-c")
        with seeded.owner() as owner:
            both = {t: n + _tenant_counts(owner, B.tenant)[t] for t, n in expected_a.items()}
        assert _counts(conn) == both


async def test_the_store_works_as_an_ordinary_role(
    seeded: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The store contract's paths, across two tenants, through SqlStore as the role."""
    caplog.set_level(logging.WARNING, "syncd.storage")
    store = await _open(seeded.app_url)  # the policies exist: the role migrates nothing
    assert not [r for r in caplog.records if "bypasses row-level security" in r.message]
    try:
        a2, b2 = DocKey(A.tenant, "alice/more"), DocKey(B.tenant, "bob/more")
        assert await store.create(a2) and await store.create(b2)
        ups, _ = text_updates(4)
        # One group commit spanning both tenants.
        seqs = await store.append({k: [NewUpdate(u, "w", "client") for u in ups] for k in (a2, b2)})
        assert seqs == {a2: [1, 2, 3, 4], b2: [1, 2, 3, 4]}
        loaded = await store.load(a2)
        assert loaded is not None and len(loaded.tail) == 4
        seeded_a = await store.load(A)
        assert seeded_a is not None and seeded_a.snapshot is not None  # the owner's rows
        assert await store.seqs([A, a2, B, b2]) == {A: 4, a2: 4, B: 4, b2: 4}
        page_a = await store.read_feed(A.tenant, 0)
        page_b = await store.read_feed(B.tenant, 0)
        assert {e.doc for e in page_a.events} == {A.name, a2.name}
        assert {e.doc for e in page_b.events} == {B.name, b2.name}
        meta = await store.set_access(b2, "shared", {"carol": "editor"})
        assert meta.grants == {"carol": "editor"}
        assert (await store.meta(A)).grants == {"carol": "viewer"}  # type: ignore[union-attr]
        assert await store.quarantined(A) == {99: "planted"}
        assert await store.compact(a2) == 4
        assert await store.updates_between(a2, 1, 3) is not None
        assert await store.state_before(a2, 3) is not None
        history = SqlHistory(store)
        version = await history.create_version(b2, "named", "named", "bob")
        assert [v.id for v in await history.versions(b2) or []] == [version.id]
        assert await history.version_state(b2, version.id) is not None
        assert await history.auto_versions(0, 5)  # the sweep: every tenant
        assert await store.delete(a2) and await store.delete(B)
        trash = SqlTrash(store)
        assert [e.key for e in await trash.list(A.tenant, None)] == [a2]
        assert set(await trash.expired(0)) == {a2, B}  # the sweep: every tenant
        assert await trash.purge(B)
        assert await store.load(B) is None and await store.load(b2) is not None
        assert await trash.recreate(B) is not None
        # A transaction that names no tenant (the default) sees nothing, also on a pooled
        # connection that just served a tenant; the maintenance scope sees every tenant.
        count = text("SELECT count(*) FROM syncd_documents")
        async with store._begin(write=False) as conn:
            assert (await conn.execute(count)).scalar_one() == 0
        async with store._begin(write=False, tenants=[A.tenant]) as conn:
            assert (await conn.execute(count)).scalar_one() == 2
        async with store._begin(write=False, tenants=ALL_TENANTS) as conn:
            assert (await conn.execute(count)).scalar_one() == 4
    finally:
        await store.close()
    with seeded.owner() as owner:  # what the role wrote is really there, in the right tenant
        tenants = owner.execute(
            "SELECT d.tenant, count(*) FROM syncd_updates u JOIN syncd_documents d"
            " ON d.id = u.doc_id WHERE d.name LIKE '%%/more' GROUP BY d.tenant ORDER BY 1"
        ).fetchall()
        assert tenants == [(A.tenant, 4), (B.tenant, 4)]


async def test_the_daemon_serves_two_tenants_as_an_ordinary_role(
    seeded: Database, settings: Settings
) -> None:
    running = await start_daemon(replace(settings, database_url=seeded.app_url))
    try:
        async with httpx.AsyncClient(base_url=running.http) as http:
            for key, who in ((A, "alice"), (B, "bob")):
                auth = {"authorization": f"Bearer {running.token(who, tenant=key.tenant)}"}
                ups, _ = text_updates(2, client_id=5)
                for u in ups:
                    r = await http.post(f"/v1/docs/{who}/daemon/updates", content=u, headers=auth)
                    assert r.status_code == 200, r.text
                r = await http.get(f"/v1/docs/{who}/daemon/state", headers=auth)
                assert r.status_code == 200 and r.content
                service = running.token("svc", tenant=key.tenant, role="service")
                r = await http.get(
                    "/v1/feed",
                    headers={"authorization": f"Bearer {service}", "accept": "application/json"},
                )
                assert r.status_code == 200, r.text
                assert {e["doc"] for e in r.json()["events"]} == {key.name, f"{who}/daemon"}
                r = await http.delete(f"/v1/docs/{who}/daemon", headers=auth)
                assert r.status_code in (200, 204), r.text
    finally:
        await running.stop()


async def test_a_role_that_does_not_own_the_tables_cannot_install_and_says_so(
    seeded: Database, caplog: pytest.LogCaptureFixture
) -> None:
    with seeded.owner() as owner:
        owner.execute("ALTER TABLE syncd_audit NO FORCE ROW LEVEL SECURITY")
    with pytest.raises(RuntimeError, match="does not own"):
        await _open(seeded.app_url)
    # The owner's start puts it back (idempotently, touching nothing else), and warns that
    # this superuser bypasses the policies.
    caplog.set_level(logging.WARNING, "syncd.storage")
    store = await _open(seeded.owner_url)
    await store.close()
    assert any("bypasses row-level security (superuser)" in r.message for r in caplog.records)
    with seeded.owner() as owner:
        flags = owner.execute(
            "SELECT relname, relrowsecurity AND relforcerowsecurity FROM pg_class"
            " WHERE oid = ANY (%s::regclass[])",
            (list(ALL_TABLES),),
        ).fetchall()
        policies = owner.execute(
            "SELECT count(*) FROM pg_policy WHERE polrelid = ANY (%s::regclass[])",
            (list(ALL_TABLES),),
        ).fetchone()
    assert dict(flags) == dict.fromkeys(ALL_TABLES, True)
    assert policies == (len(ALL_TABLES),)
    store = await _open(seeded.app_url)
    await store.close()


async def test_an_ordinary_role_that_owns_the_tables_is_bound_by_them_too(
    database: Database,
) -> None:
    """The single-role setup: the daemon's role creates the tables; FORCE binds their owner."""
    with database.owner() as owner:
        schema = owner.execute("SELECT current_schema()").fetchone()[0]  # type: ignore[index]
        owner.execute(f"GRANT USAGE, CREATE ON SCHEMA {schema} TO {database.role}")
    store = await _open(database.app_url)  # creates the tables and installs the policies
    try:
        await store.append({A: [NewUpdate(text_updates(1)[0][0], "alice", "client")]})
        assert (await store.load(A)) is not None
    finally:
        await store.close()
    with database.app() as conn:
        owned = conn.execute(
            "SELECT bool_and(tableowner = current_user) FROM pg_tables"
            " WHERE schemaname = current_schema() AND tablename = ANY (%s)",
            (list(ALL_TABLES),),
        ).fetchone()
        assert owned == (True,)
        assert _counts(conn)["syncd_documents"] == 0
        assert _counts(conn)["syncd_updates"] == 0
        _scoped(conn, A.tenant)
        assert _counts(conn)["syncd_updates"] == 1
