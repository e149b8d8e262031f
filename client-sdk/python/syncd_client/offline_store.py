"""The SDK's offline store: each document's last known state and its outbox, in one SQLite file.

Every local edit is written to the outbox (committed, fsync'ed by SQLite) before it is sent,
and leaves it only when the server has acknowledged it as durably stored. A process that dies
or restarts offline therefore loses nothing it typed: on the next start the outbox is applied
to the saved state and sent again. States are a cache (the server holds the truth); outboxes
are not.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
            """
        )

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

    def cursor(self, name: str) -> str | None:
        row = self._db.execute("SELECT cursor FROM cursors WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def save_cursor(self, name: str, cursor: str) -> None:
        self._db.execute(
            "INSERT INTO cursors (name, cursor) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor",
            (name, cursor),
        )
