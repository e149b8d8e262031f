"""fetch_rows hands bytes over unchanged on both databases (storage/binary_rows.py)."""

from __future__ import annotations

import os

import pytest

from storage import SqlStore
from storage.binary_rows import fetch_rows

pytestmark = pytest.mark.anyio


async def test_bytes_and_numbers_come_back_as_they_went_in(store: SqlStore) -> None:
    blob = os.urandom(1 << 20) + b"\x00\\x00:id"
    async with store._begin(tenants=["default"], write=False) as conn:
        cast = ":blob::bytea" if conn.dialect.name == "postgresql" else ":blob"  # a :: cast
        rows = await fetch_rows(conn, f"SELECT {cast}, :n + 1, NULL", {"blob": blob, "n": 41})
    assert [tuple(r) for r in rows] == [(blob, 42, None)]
