"""Times on the wire: ISO 8601 UTC with milliseconds and a ``Z``, as JavaScript prints them."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["iso_time"]


def iso_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
