"""Helpers shared by the `journal/1` and `canvas/1` schema wrappers.

Ids are 21-character nanoids drawn from `secrets`, so clients that create entries or elements
while offline never collide (126 random bits, the same alphabet as the JS `nanoid` package).

Timestamps are ISO 8601 UTC strings with millisecond precision and a `Z` suffix, exactly what
JS `Date.prototype.toISOString()` produces (`2024-05-01T12:00:00.000Z`). The fixed width means
that string order is time order on every client.

Number rule: every numeric value is written as a finite Python `float`.
pycrdt turns a Python `float` into a Yjs number (a JS `number`), but a Python `int` outside
±2**53 becomes a Yjs *BigInt*, which a JS reader sees as `typeof "bigint"` and cannot mix with
other numbers, and an `int` beyond 64 bits makes pycrdt panic. Small ints are read back by Python
as floats anyway. Writing floats only therefore gives one shape on both sides: a JS `number`
in JS and a `float` in Python. `bool` is refused (it is an `int` to Python but a boolean to
JS), and so are NaN and infinities, which JSON cannot carry.

Text: `pycrdt.Text` indexes by UTF-8 byte offset; the wrappers take Python string indexes
(code points) and convert, so an edit never splits a character.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pycrdt import Array, Map, Text

__all__ = [
    "Clock",
    "IdFactory",
    "as_number",
    "check_str",
    "iso_utc",
    "new_id",
    "plain",
    "splice_text",
    "utc_now",
]

Clock = Callable[[], datetime]
"""Returns the current time as a timezone-aware `datetime`; injectable for tests."""

IdFactory = Callable[[], str]
"""Returns a fresh, globally unique id; injectable for tests."""

_NANOID_ALPHABET = "useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict"
_NANOID_SIZE = 21


def new_id() -> str:
    """Return a random 21-character nanoid (URL-safe), safe to mint offline."""
    return "".join(secrets.choice(_NANOID_ALPHABET) for _ in range(_NANOID_SIZE))


def utc_now() -> datetime:
    """Return the current time in UTC (the default `Clock`)."""
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """Format an aware `datetime` like JS `toISOString()`: `YYYY-MM-DDTHH:MM:SS.mmmZ`."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware datetimes")
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def as_number(name: str, value: object) -> float:
    """Return `value` as a finite float, or raise `ValueError` (see the number rule above)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{name} is too large: {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, not {value!r}")
    return number


def check_str(name: str, value: object, *, allow_empty: bool = True) -> str:
    """Return `value` if it is a string that UTF-8 (and so Yjs) can carry, else raise."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, not {type(value).__name__}")
    if not allow_empty and not value:
        raise ValueError(f"{name} must not be empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} contains a lone surrogate") from None
    return value


def splice_text(text: Text, index: int, delete: int, insert: str) -> None:
    """Delete `delete` characters at `index`, then insert `insert` there.

    Indexes count Python characters (code points); pycrdt wants UTF-8 byte offsets.
    Must be called inside the caller's transaction.
    """
    if isinstance(index, bool) or not isinstance(index, int):
        raise ValueError("index must be an int")
    if isinstance(delete, bool) or not isinstance(delete, int):
        raise ValueError("delete must be an int")
    check_str("insert", insert)
    current = str(text)
    if not 0 <= index <= len(current):
        raise ValueError(f"index {index} is outside the text (length {len(current)})")
    if delete < 0 or index + delete > len(current):
        raise ValueError(f"cannot delete {delete} characters at {index} of {len(current)}")
    start = len(current[:index].encode("utf-8"))
    if delete:
        stop = start + len(current[index : index + delete].encode("utf-8"))
        del text[start:stop]
    if insert:
        text.insert(start, insert)


def plain(value: Any) -> Any:
    """Convert a shared type to plain JSON values: Map → dict (sorted keys), Array → list,
    Text → str; other values are returned unchanged."""
    if isinstance(value, Map):
        return {key: plain(value[key]) for key in sorted(value.keys())}
    if isinstance(value, Array):
        return [plain(item) for item in value]
    if isinstance(value, Text):
        return str(value)
    return value
