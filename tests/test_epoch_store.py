"""The document epoch (DESIGN §1.10): made at creation, kept, readable, and added by migration."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from storage import DocKey, NewUpdate, SqlStore
from storage.schema import SCHEMA_VERSION
from tests.support.servers import RunningDaemon

pytestmark = pytest.mark.anyio


async def test_a_document_gets_a_random_epoch_when_created(store: SqlStore):
    a, b = DocKey("default", "alice/a"), DocKey("default", "alice/b")
    await store.create(a)
    await store.append({b: [NewUpdate(b"\x00\x00", "alice", "client")]})  # created by writing
    meta_a, meta_b = await store.meta(a), await store.meta(b)
    assert meta_a is not None and meta_b is not None
    assert len(meta_a.epoch) == 32 and len(meta_b.epoch) == 32
    assert meta_a.epoch != meta_b.epoch
    await store.append({a: [NewUpdate(b"\x00\x00", "alice", "client")]})
    again = await store.meta(a)
    assert again is not None and again.epoch == meta_a.epoch  # writing never changes it


def _sync_url(database_url: str) -> str:
    return database_url.replace("postgresql://", "postgresql+psycopg://", 1)


async def test_migration_gives_existing_documents_an_epoch(database_url: str):
    store = SqlStore(database_url)
    await store.open()
    await store.create(DocKey("default", "alice/old1"))
    await store.create(DocKey("default", "alice/old2"))
    await store.close()
    # Turn the database back into a version 2 one: no epoch, purged_at, versions.
    engine = sa.create_engine(_sync_url(database_url))
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE syncd_documents DROP COLUMN epoch"))
        conn.execute(sa.text("ALTER TABLE syncd_documents DROP COLUMN purged_at"))
        conn.execute(sa.text("DROP TABLE syncd_versions"))
        conn.execute(sa.text("UPDATE syncd_schema_version SET version = 2"))
    store = SqlStore(database_url)
    await store.open()
    try:
        old1 = await store.meta(DocKey("default", "alice/old1"))
        old2 = await store.meta(DocKey("default", "alice/old2"))
        assert old1 is not None and old2 is not None
        assert len(old1.epoch) == 32 and old1.epoch != old2.epoch
        await store.create(DocKey("default", "alice/new"))
        new = await store.meta(DocKey("default", "alice/new"))
        assert new is not None and len(new.epoch) == 32
    finally:
        await store.close()
    with engine.begin() as conn:
        version = conn.execute(sa.text("SELECT version FROM syncd_schema_version")).scalar_one()
    engine.dispose()
    assert version == SCHEMA_VERSION


async def test_get_doc_returns_the_epoch(daemon: RunningDaemon):
    alice = daemon.token("alice")
    auth = {"authorization": f"Bearer {alice}"}
    async with httpx.AsyncClient(base_url=daemon.http) as http:
        r = await http.put("/v1/docs/alice/x/access", json={"mode": "private"}, headers=auth)
        assert r.status_code == 200
        epoch = r.json()["epoch"]
        got = await http.get("/v1/docs/alice/x", headers=auth)
        assert got.status_code == 200 and got.json()["epoch"] == epoch and len(epoch) == 32
    meta = await daemon.daemon.store.meta(DocKey("default", "alice/x"))
    assert meta is not None and meta.epoch == epoch
