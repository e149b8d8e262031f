"""The database engine of :class:`~storage.sql.SqlStore`: URLs, connections, transactions.

One store serves SQLite (aiosqlite) and Postgres (psycopg 3); the differences between them (URL
scheme, pragmas, pool, upsert syntax, isolation) stay in this module. Every transaction runs
under one deadline (``storage/deadline.py``), and every database error leaves it as
:class:`StoreUnavailable` so the daemon can tell "the database is away" from a bug.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import psycopg
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from .deadline import operation_deadline, postgres_connect_args
from .row_security import TenantScope, enter_scope
from .store import StoreUnavailable

__all__ = [
    "Begin",
    "busy_timeout_ms",
    "dialect_insert",
    "engine_url",
    "make_engine",
    "sqlite_file",
    "transaction",
]


class Begin(Protocol):
    """Opens a transaction of the store (``SqlStore._begin``, see :func:`transaction`)."""

    def __call__(
        self,
        *,
        write: bool = ...,
        snapshot: bool = ...,
        timeout: float | None = ...,
        tenants: TenantScope = ...,
    ) -> AbstractAsyncContextManager[AsyncConnection]: ...


def engine_url(url: str) -> str:
    """Map a user-facing URL (``postgresql://…``, ``sqlite:///…``) to its async driver."""
    for plain, driver in (
        ("postgresql://", "postgresql+psycopg://"),
        ("postgres://", "postgresql+psycopg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    if url.startswith(("postgresql+psycopg://", "sqlite+aiosqlite://")):
        return url
    raise ValueError(f"unsupported database URL {url!r}: use postgresql://… or sqlite:///…")


def sqlite_file(url: str) -> str | None:
    """The path of the file a SQLite ``url`` names; ``None`` for an in-memory database."""
    path = url.split(":///", 1)[1] if ":///" in url else ""
    return path if path and path != ":memory:" else None


def busy_timeout_ms(timeout: float) -> int:
    """SQLite's ``busy_timeout`` for a store whose operations have ``timeout`` seconds."""
    # Lock waits are SQLite's only unbounded ones: bound them by the same deadline.
    return max(1, math.ceil(timeout * 1000))


def dialect_insert(dialect: str) -> Callable[..., Any]:
    """The ``insert`` of ``dialect`` ("sqlite" or "postgresql"), with ``on_conflict_do_*``."""
    return sqlite_insert if dialect == "sqlite" else pg_insert


def make_engine(url: str, *, timeout: float, sqlite_synchronous: str) -> AsyncEngine:
    """The engine for ``url`` (an :func:`engine_url`): its pool's waits end at ``timeout``; on
    SQLite every connection gets the store's pragmas and transactions begin as :func:`transaction`
    needs them (the file's directory is created if missing)."""
    if not url.startswith("sqlite"):
        options = make_url(url).query.get("options")
        return create_async_engine(
            url,
            pool_size=8,
            max_overflow=4,
            pool_pre_ping=True,  # bounded by the deadline like every other wait
            pool_timeout=timeout,
            connect_args=postgres_connect_args(
                timeout, options if isinstance(options, str) else None
            ),
        )
    path = sqlite_file(url)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, pool_size=4, max_overflow=4, pool_timeout=timeout)
    busy_ms = busy_timeout_ms(timeout)

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        # The sqlite3 module only opens a transaction before writes, so each SELECT
        # would see its own snapshot; emit BEGIN ourselves (below) instead.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn) -> None:  # type: ignore[no-untyped-def]
        # Writers take the write lock up front: a read transaction that later writes
        # fails at once (no busy wait) if another writer committed meanwhile.
        write = conn.get_execution_options().get("syncd_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


@asynccontextmanager
async def transaction(
    engine: AsyncEngine,
    turn: AbstractAsyncContextManager[None],
    *,
    write: bool,
    snapshot: bool,
    timeout: float,
    tenants: TenantScope,
) -> AsyncIterator[AsyncConnection]:
    """A transaction on ``engine``, entered after ``turn`` (the store's write turn, or nothing).

    ``write=False`` for read-only ones; ``snapshot``: all its reads see one state (Postgres
    REPEATABLE READ; SQLite transactions always do). Everything in it, from taking a connection
    to returning it, shares one deadline (``timeout`` seconds). ``tenants``: the tenants it
    touches; on Postgres row-level security hides every other tenant's rows from it (none named:
    it sees no tenant's rows), and ``ALL_TENANTS`` is for maintenance only
    (storage/row_security.py).
    """
    dialect = engine.dialect.name
    try:
        with operation_deadline(timeout):
            async with turn, engine.connect() as conn:
                if write and dialect == "sqlite":
                    await conn.execution_options(syncd_write=True)
                if snapshot and dialect == "postgresql":
                    await conn.execution_options(isolation_level="REPEATABLE READ")
                async with conn.begin():
                    await enter_scope(conn, tenants)
                    yield conn
    except (SQLAlchemyError, psycopg.Error) as exc:  # psycopg's own: the append path
        raise StoreUnavailable(f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc
    except OSError as exc:
        raise StoreUnavailable(str(exc)) from exc
