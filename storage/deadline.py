"""Client-side deadlines for database operations: a database that stops answering costs each
operation a bounded wait, never a hang.

The hard case is a silent partition: packets to the database are dropped, nothing resets the
connection, and a query waits for an answer that never comes. The server's
``statement_timeout`` cannot help (the server never hears from us), TCP keepalives and
``tcp_user_timeout`` act only after tens of seconds and not at all while a middlebox keeps
acknowledging; only the client can bound its own wait.

Every store operation runs under :func:`operation_deadline`. On Postgres every wait of psycopg
on its socket (connect, query, commit, rollback, the pool's pre-ping) is bounded by what is
left of it (:class:`DeadlineConnection`). A wait that reaches the deadline closes the socket
(libpq's ``finish``: non-blocking, never a round trip) and fails with :class:`DatabaseTimeout`.
SQLAlchemy then sees a closed connection: it invalidates it instead of rolling back over the
dead socket or returning it to the pool half-way through a transaction.

Why not ``asyncio.timeout`` around the operation: when a psycopg wait is cancelled, psycopg
sends the server a cancel request over a new connection and waits for the query to end, up to
5 + 5 seconds more (psycopg 3.3 ``AsyncConnection.wait``) — on a partitioned link exactly the
hang this module exists to avoid.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import psycopg
from psycopg import errors as pg_errors

__all__ = [
    "DatabaseTimeout",
    "DeadlineConnection",
    "operation_deadline",
    "postgres_connect_args",
    "remaining",
]

# The deadline (time.monotonic()) of the store operation running in this task. A context
# variable because the driver is called from deep inside SQLAlchemy, which has no per-call
# timeout to hand down; psycopg's coroutines run in the calling task's context, so they see it.
_deadline: ContextVar[float | None] = ContextVar("syncd_store_deadline", default=None)


class DatabaseTimeout(psycopg.OperationalError):
    """The database did not answer before the operation's deadline; its connection is closed."""


@contextmanager
def operation_deadline(seconds: float) -> Iterator[None]:
    """Bound every database wait of this task inside the block to ``seconds`` in total."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left before this task's operation deadline; ``None`` outside an operation."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


class DeadlineConnection(psycopg.AsyncConnection[Any]):
    """A psycopg connection whose waits end at the current operation's deadline."""

    @classmethod
    async def connect(cls, conninfo: str = "", **kwargs: Any) -> DeadlineConnection:  # type: ignore[override]
        left = remaining()
        if left is None:
            return await super().connect(conninfo, **kwargs)
        if left <= 0:
            raise pg_errors.ConnectionTimeout("no time left to connect to the database")
        try:
            # Cancelling a connection attempt is safe (unlike a query): nothing was asked yet,
            # and the half-open connection is dropped with its generator.
            async with asyncio.timeout(left):
                return await super().connect(conninfo, **kwargs)
        except TimeoutError as exc:
            raise pg_errors.ConnectionTimeout(
                f"no connection to the database within {left:.1f} s"
            ) from exc

    async def wait(self, gen: Any, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        left = remaining()
        if left is None:
            return await super().wait(gen, *args, timeout=timeout, **kwargs)
        bound = max(left, 0.0) if timeout is None else min(timeout, max(left, 0.0))
        try:
            return await super().wait(gen, *args, timeout=bound, **kwargs)
        except psycopg.OperationalError as exc:
            if isinstance(exc, DatabaseTimeout) or (remaining() or 0.0) > 0:
                raise  # a real database error, or a timeout psycopg asked for itself
            # The protocol stopped half-way: the connection is unusable. Close the socket now
            # (non-blocking) so that nothing waits on it again.
            self.pgconn.finish()
            raise DatabaseTimeout("the database did not answer before the deadline") from exc


def postgres_connect_args(timeout: float, url_options: str | None) -> dict[str, Any]:
    """libpq parameters that bound waits on their own side, as defence in depth.

    ``connect_timeout`` (whole seconds, libpq's minimum is 2); TCP keepalives, which detect a
    dead peer of an idle pooled connection; ``tcp_user_timeout``, which closes a connection
    whose sent data stays unacknowledged; and, on the server, ``statement_timeout`` plus
    ``idle_in_transaction_session_timeout`` — the latter frees the locks of a transaction
    whose client gave up (our transactions never outlive ``timeout``), e.g. the feed-position
    row that every appender needs. ``url_options`` (the URL's own ``options``, such as a
    ``search_path``) are kept.
    """
    seconds = max(1, math.ceil(timeout))
    millis = max(1, math.ceil(timeout * 1000))
    server = f"-c statement_timeout={millis} -c idle_in_transaction_session_timeout={millis}"
    return {
        "async_creator_fn": DeadlineConnection.connect,
        "connect_timeout": max(2, seconds),
        "keepalives": 1,
        "keepalives_idle": seconds,
        "keepalives_interval": max(1, math.ceil(seconds / 3)),
        "keepalives_count": 3,
        "tcp_user_timeout": millis,
        "options": f"{url_options} {server}" if url_options else server,
    }
