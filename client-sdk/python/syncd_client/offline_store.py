"""The SDK's offline store: each document's last known state and its outbox, in one SQLite file.

Every local edit is written to the outbox (committed, fsync'ed by SQLite) before it is sent,
and leaves it only when the server has acknowledged it as durably stored. A process that dies
or restarts offline therefore loses nothing it typed: on the next start the outbox is applied
to the saved state and sent again. States are a cache (the server holds the truth); outboxes
are not.

Each document's epoch (the server lineage its state belongs to, ``epoch.py``) is kept beside
it. When the server's epoch differs, :meth:`OfflineStore.reset` sets the old replica and its
unsent edits aside as a recovered copy, and empties the state and outbox under the new epoch, in
one SQLite transaction: a crash leaves either the old replica and epoch (the reset happens again
at the next connection) or the new ones, never the old state under the new epoch.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from .epoch import RecoveredCopy

__all__ = ["OfflineStore"]


class OfflineStore:
    def __init__(self, path: str | Path = ":memory:") -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS states (doc TEXT PRIMARY KEY, state BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS outbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                doc TEXT NOT NULL,
                update_data BLOB NOT NULL
            );
            CREATE INDEX IF NOT EXISTS outbox_doc ON outbox (doc, id);
            CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, cursor TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS epochs (doc TEXT PRIMARY KEY, epoch TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS recovered (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                doc TEXT NOT NULL,
                epoch TEXT NOT NULL,
                server_epoch TEXT NOT NULL,
                state BLOB NOT NULL,
                recovered_at REAL NOT NULL
            );
            CREATE TABLE IF NOT EXISTS recovered_updates (
                recovered INTEGER NOT NULL REFERENCES recovered (id) ON DELETE CASCADE,
                n INTEGER NOT NULL,
                update_data BLOB NOT NULL,
                PRIMARY KEY (recovered, n)
            );
            """
        )
        self._db.execute("PRAGMA foreign_keys=ON")

    def close(self) -> None:
        self._db.close()

    def state(self, doc: str) -> bytes | None:
        row = self._db.execute("SELECT state FROM states WHERE doc = ?", (doc,)).fetchone()
        return bytes(row[0]) if row else None

    def save_state(self, doc: str, state: bytes) -> None:
        self._db.execute(
            "INSERT INTO states (doc, state) VALUES (?, ?)"
            " ON CONFLICT (doc) DO UPDATE SET state = excluded.state",
            (doc, state),
        )

    def add(self, doc: str, update: bytes) -> int:
        """Append a local update to the outbox; returns its id (increasing)."""
        cur = self._db.execute("INSERT INTO outbox (doc, update_data) VALUES (?, ?)", (doc, update))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def pending(self, doc: str) -> list[tuple[int, bytes]]:
        rows = self._db.execute(
            "SELECT id, update_data FROM outbox WHERE doc = ? ORDER BY id", (doc,)
        ).fetchall()
        return [(i, bytes(u)) for i, u in rows]

    def last_id(self, doc: str) -> int:
        row = self._db.execute("SELECT MAX(id) FROM outbox WHERE doc = ?", (doc,)).fetchone()
        return int(row[0] or 0)

    def count(self, doc: str | None = None) -> int:
        if doc is None:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        row = self._db.execute("SELECT COUNT(*) FROM outbox WHERE doc = ?", (doc,)).fetchone()
        return int(row[0])

    def acknowledge(self, doc: str, upto_id: int) -> int:
        """The server stored everything up to ``upto_id``: drop it. Returns rows removed."""
        cur = self._db.execute("DELETE FROM outbox WHERE doc = ? AND id <= ?", (doc, upto_id))
        return cur.rowcount

    def epoch(self, doc: str) -> str | None:
        """The server epoch ``doc``'s state was synced under; ``None`` before its first sync."""
        row = self._db.execute("SELECT epoch FROM epochs WHERE doc = ?", (doc,)).fetchone()
        return row[0] if row else None

    def save_epoch(self, doc: str, epoch: str) -> None:
        self._db.execute(
            "INSERT INTO epochs (doc, epoch) VALUES (?, ?)"
            " ON CONFLICT (doc) DO UPDATE SET epoch = excluded.epoch",
            (doc, epoch),
        )

    def reset(
        self, doc: str, server_epoch: str, state: bytes, updates: Sequence[bytes]
    ) -> RecoveredCopy | None:
        """``doc`` starts again, empty, under ``server_epoch``; atomically.

        ``state`` (the old replica) and ``updates`` (its unacknowledged edits) are kept as a
        recovered copy when there are such edits; with none, nothing of this device's would be
        lost and no copy is made. Returns the copy, if any.
        """
        old = self.epoch(doc) or ""
        now = time.time()
        copy_id: int | None = None
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if updates:
                cur = self._db.execute(
                    "INSERT INTO recovered (doc, epoch, server_epoch, state, recovered_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (doc, old, server_epoch, state, now),
                )
                copy_id = cur.lastrowid
                self._db.executemany(
                    "INSERT INTO recovered_updates (recovered, n, update_data) VALUES (?, ?, ?)",
                    [(copy_id, n, u) for n, u in enumerate(updates)],
                )
            self._db.execute("DELETE FROM outbox WHERE doc = ?", (doc,))
            self._db.execute("DELETE FROM states WHERE doc = ?", (doc,))
            self.save_epoch(doc, server_epoch)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        if copy_id is None:
            return None
        return RecoveredCopy(copy_id, doc, old, server_epoch, state, tuple(updates), now)

    def recovered(self, doc: str | None = None) -> list[RecoveredCopy]:
        """Recovered copies (of ``doc``, or of every document), oldest first."""
        query = "SELECT id, doc, epoch, server_epoch, state, recovered_at FROM recovered"
        rows = self._db.execute(
            query + (" WHERE doc = ? ORDER BY id" if doc is not None else " ORDER BY id"),
            (doc,) if doc is not None else (),
        ).fetchall()
        copies = []
        for copy_id, name, epoch, server_epoch, state, at in rows:
            updates = self._db.execute(
                "SELECT update_data FROM recovered_updates WHERE recovered = ? ORDER BY n",
                (copy_id,),
            ).fetchall()
            copies.append(
                RecoveredCopy(
                    copy_id,
                    name,
                    epoch,
                    server_epoch,
                    bytes(state),
                    tuple(bytes(u) for (u,) in updates),
                    at,
                )
            )
        return copies

    def discard_recovered(self, copy_id: int) -> bool:
        """Erase a recovered copy; ``False`` if there is none with that id."""
        cur = self._db.execute("DELETE FROM recovered WHERE id = ?", (copy_id,))
        return cur.rowcount > 0

    def cursor(self, name: str) -> str | None:
        row = self._db.execute("SELECT cursor FROM cursors WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def save_cursor(self, name: str, cursor: str) -> None:
        self._db.execute(
            "INSERT INTO cursors (name, cursor) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor",
            (name, cursor),
        )
