"""The SQLite write path of :meth:`SqlStore.append`: one thread, one connection, one hop.

Every live update is appended here, so this path is the daemon's hot path. Through SQLAlchemy
and aiosqlite a commit of a batch costs five thread hops (``BEGIN IMMEDIATE``, the feed
position, the documents' seqs, the rows, ``COMMIT``) and a statement compiled anew each time
(the ``CASE`` over the batch's documents has a different shape every batch). Here the whole
transaction runs in one call on a thread of its own, with fixed SQL that the ``sqlite3``
module's statement cache prepares once, and the rows go in with ``executemany``.

The SQL is the same as the SQLAlchemy path's, statement for statement (see
``SqlStore.append``); only the driver differs. Everything else — reads, compaction, access,
deletion — stays on SQLAlchemy: SQLite has one writer at a time, and ``busy_timeout`` makes
this connection and the pool's wait for each other, bounded by the store's deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from .sealed_rows import Sealer
from .store import DocKey, DocumentDeleted, NewUpdate, StoreUnavailable

__all__ = ["SqliteAppender"]

_Seqs = dict[DocKey, list[int] | DocumentDeleted]

_BUMP_POSITION = "UPDATE syncd_feed_position SET pos = pos + ? WHERE id = 1 RETURNING pos"
_BUMP_DOCUMENT = (
    "UPDATE syncd_documents SET seq = seq + ?, size_bytes = size_bytes + ?, updated_at = ?"
    " WHERE id = ? AND deleted_at IS NULL RETURNING seq"
)
_INSERT_UPDATE = (
    "INSERT INTO syncd_updates (pos, doc_id, seq, principal, origin, at, data)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


class SqliteAppender:
    """Appends batches to a SQLite database file through a connection of its own.

    Args:
        path: the database file (WAL mode is set by the store when it opens it).
        synchronous: SQLite's ``synchronous`` pragma, as the store's.
        busy_ms: how long to wait for the write lock held by another connection.
        timeout: the deadline of one append, as the store's other operations (SQLite's wait
            for the write lock is ``busy_ms``).
    """

    def __init__(self, path: str, *, synchronous: str, busy_ms: int, timeout: float) -> None:
        self._path = path
        self._synchronous = synchronous
        self._busy_ms = busy_ms
        self._timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="syncd-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # close() against an append still running

    async def append(
        self,
        batch: Mapping[DocKey, Sequence[NewUpdate]],
        ids: Mapping[DocKey, int],
        now: float,
        seal: Sealer | None = None,
    ) -> dict[DocKey, list[int] | DocumentDeleted]:
        """Store ``batch`` in one transaction (``ids``: the documents' row ids, all known;
        ``seal``: how rows are sealed, with a master key).

        Raises:
            StoreUnavailable: the database failed or its lock stayed taken past ``busy_ms``;
                nothing is stored.
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[_Seqs] = loop.create_future()
        job = self._executor.submit(self._append, batch, ids, now, seal)
        job.add_done_callback(lambda finished: _hand_over(loop, finished, done))
        # The deadline proper is SQLite's busy_timeout (a lock held elsewhere: the thread gives
        # up, rolls back, nothing is stored). This one only bounds a thread stuck in the file
        # system (an fsync that never returns), which nothing can interrupt. The transaction may
        # yet commit: the room refuses the batch and clients send it again (an update applied
        # twice is harmless), so nothing acknowledged is lost.
        stuck = loop.call_later(2 * self._timeout + 1, _give_up, done, 2 * self._timeout + 1)
        try:
            # Not wait_for(shield(run_in_executor(...))): each of those layers is a callback of
            # its own, so the result reached the committer four loop turns after the thread
            # finished, each turn queued behind every socket read of that turn. Here it is one.
            return await done
        finally:
            stuck.cancel()

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- on the thread -----------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, cached_statements=64
            )
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
            self._conn = conn
        return self._conn

    def _append(
        self,
        batch: Mapping[DocKey, Sequence[NewUpdate]],
        ids: Mapping[DocKey, int],
        now: float,
        seal: Sealer | None,
    ) -> dict[DocKey, list[int] | DocumentDeleted]:
        with self._lock:
            try:
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
            try:
                seqs = self._write(conn, batch, ids, now, seal)
                conn.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
                raise
            return seqs

    @staticmethod
    def _write(
        conn: sqlite3.Connection,
        batch: Mapping[DocKey, Sequence[NewUpdate]],
        ids: Mapping[DocKey, int],
        now: float,
        seal: Sealer | None,
    ) -> dict[DocKey, list[int] | DocumentDeleted]:
        total = sum(len(items) for items in batch.values())
        (last_pos,) = conn.execute(_BUMP_POSITION, (total,)).fetchone()
        next_pos = last_pos - total + 1
        seqs: dict[DocKey, list[int] | DocumentDeleted] = {}
        rows: list[tuple[object, ...]] = []
        # Documents in key order, as the SQLAlchemy path: feed positions follow it.
        for key in sorted(batch):
            items = batch[key]
            size = sum(len(u.data) for u in items)
            bumped = conn.execute(_BUMP_DOCUMENT, (len(items), size, now, ids[key])).fetchone()
            if bumped is None:
                # A tombstone: nothing of it is stored; its feed positions stay unused (a gap,
                # like a rolled-back transaction's).
                seqs[key] = DocumentDeleted(key)
                continue
            first = bumped[0] - len(items) + 1
            seqs[key] = list(range(first, first + len(items)))
            doc_id = ids[key]
            for seq, item in enumerate(items, first):
                data = item.data if seal is None else seal(key, seq, item.data)
                rows.append((next_pos, doc_id, seq, item.principal, item.origin, now, data))
                next_pos += 1
        if rows:
            conn.executemany(_INSERT_UPDATE, rows)
        return seqs


def _hand_over(
    loop: asyncio.AbstractEventLoop, finished: Future[_Seqs], done: asyncio.Future[_Seqs]
) -> None:
    """On the writer thread: pass the transaction's outcome to the loop, in one callback."""
    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is waiting
        loop.call_soon_threadsafe(_settle, finished, done)


def _settle(finished: Future[_Seqs], done: asyncio.Future[_Seqs]) -> None:
    if done.done():  # given up on (stuck), or its caller was cancelled
        return
    exc = finished.exception()
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(finished.result())


def _give_up(done: asyncio.Future[_Seqs], seconds: float) -> None:
    if not done.done():
        done.set_exception(StoreUnavailable(f"append stuck for {seconds:g}s"))
