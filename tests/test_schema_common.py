"""crdt.schemas shared rules: ids, timestamps, numbers and strings as JS sees them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pycrdt import Doc, Map, Text

from crdt.schemas import (
    iso_utc,
    new_id,
)
from crdt.schemas._common import as_number, check_str, splice_text
from tests.support.schema_docs import canvas


def test_new_id_is_a_21_char_url_safe_nanoid() -> None:
    minted = {new_id() for _ in range(2000)}
    assert len(minted) == 2000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{21}", value) for value in minted)


def test_iso_utc_matches_js_to_iso_string() -> None:
    assert iso_utc(datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)) == "2024-05-01T12:00:00.123Z"
    east = timezone(timedelta(hours=2))
    assert iso_utc(datetime(2024, 5, 1, 14, 0, tzinfo=east)) == "2024-05-01T12:00:00.000Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        iso_utc(datetime(2024, 5, 1))


@pytest.mark.parametrize("value", [True, "1", None, float("nan"), float("inf"), 2**1100])
def test_as_number_refuses_values_js_cannot_share(value: object) -> None:
    with pytest.raises(ValueError):
        as_number("x", value)


def test_as_number_turns_ints_into_floats() -> None:
    assert as_number("x", 3) == 3.0
    assert type(as_number("x", 2**53 + 1)) is float


def test_check_str_refuses_lone_surrogates_and_non_strings() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        check_str("s", "a\ud800")
    with pytest.raises(ValueError, match="string"):
        check_str("s", 3)
    with pytest.raises(ValueError, match="empty"):
        check_str("s", "", allow_empty=False)


def test_splice_text_counts_characters_not_utf8_bytes() -> None:
    doc: Doc = Doc()
    text = doc.get("t", type=Text)
    text += "a😀b"
    splice_text(text, 2, 1, "é")
    assert str(text) == "a😀é"
    splice_text(text, 1, 1, "")
    assert str(text) == "aé"
    for index, delete in [(3, 0), (-1, 0), (1, 2), (0, -1)]:
        with pytest.raises(ValueError):
            splice_text(text, index, delete, "x")
    assert str(text) == "aé"


def test_large_ints_are_stored_as_js_numbers_not_bigints() -> None:
    board = canvas()
    card = board.add_card("tarot", "fool", 2**53 + 1, 7)
    replica: Doc = Doc()
    replica.apply_update(board.doc.get_update())
    stored = replica.get("elements", type=Map)[card]
    assert type(stored["x"]) is float and type(stored["y"]) is float
