"""Typed helpers for the shared document schemas `journal/1` and `canvas/1` (DESIGN.md §1.8).

Pure code over `pycrdt.Doc`: no I/O, no asyncio. Each mutating method is one transaction and so
one Yjs update. Numbers are always written as finite floats (a JS `number`); see `_common`.
"""

from ._common import Clock, IdFactory, iso_utc, new_id, utc_now
from .canvas import CANVAS_SCHEMA, KINDS, Canvas, Kind
from .journal import JOURNAL_SCHEMA, MODES, Journal, Mode

__all__ = [
    "CANVAS_SCHEMA",
    "JOURNAL_SCHEMA",
    "KINDS",
    "MODES",
    "Canvas",
    "Clock",
    "IdFactory",
    "Journal",
    "Kind",
    "Mode",
    "iso_utc",
    "new_id",
    "utc_now",
]
