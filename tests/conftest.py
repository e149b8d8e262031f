"""Fixtures: a database URL per backend (SQLite file, a fresh Postgres schema) and a daemon.

Postgres: ``SYNCD_TEST_POSTGRES_URL`` (default: the local server, database ``test``). When it is
unreachable the Postgres tests fail under ``SYNCD_REQUIRE_POSTGRES=1``, which ``scripts/test``
(and so CI) sets unless told otherwise: a run never passes by skipping them. Only a bare
``pytest`` on a machine without Postgres, or ``SYNCD_REQUIRE_POSTGRES=0``, skips them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from storage import SqlStore
from syncd.settings import Settings
from tests.support.servers import RunningDaemon, start_daemon

# Fixtures shared by the decoded-changes tests (``journal``, ``canvas``: a document and a Follower).
pytest_plugins = ["tests.support.change_docs"]

POSTGRES_URL = os.environ.get(
    "SYNCD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("SYNCD_REQUIRE_POSTGRES") == "1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _postgres_available() -> str | None:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except psycopg.Error as exc:
        return str(exc).strip()


@pytest.fixture(scope="session")
def postgres_server() -> str:
    problem = _postgres_available()
    if problem is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL required but unreachable at {POSTGRES_URL}: {problem}")
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES_URL}: {problem}")
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose connections use a fresh, empty schema (dropped afterwards)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in postgres_server else "?"
    yield f"{postgres_server}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'syncd.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    """An open store on each backend."""
    s = SqlStore(database_url)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", idle_unload_seconds=60.0)


@pytest.fixture
async def daemon(settings: Settings) -> AsyncIterator[RunningDaemon]:
    """A daemon on the embedded SQLite default, serving on a free loopback port."""
    running = await start_daemon(settings)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def any_daemon(settings: Settings, database_url: str) -> AsyncIterator[RunningDaemon]:
    """The same daemon, once on SQLite and once on Postgres."""
    from dataclasses import replace

    running = await start_daemon(replace(settings, database_url=database_url))
    try:
        yield running
    finally:
        await running.stop()
