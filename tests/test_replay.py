"""``crdt.replay``: rebuilding a document from what is stored, leaving out only what would
break it."""

from __future__ import annotations

import pycrdt

from crdt.replay import SNAPSHOT_SEQ, replay
from crdt.update_format import InvalidUpdate, decode_update
from tests.support import yrs_crashes
from tests.support.crafted import deep_any, zero_length

ASTRAL = next(r for r in yrs_crashes.REPRODUCERS if "surrogate pair: yrs re-encodes" in r.name)


def test_a_snapshot_yrs_wrote_is_kept_even_if_the_strict_decoder_refuses_it():
    # A client inserted inside a surrogate pair: yrs takes it, and its own encoding of the
    # result is something the strict decoder refuses. Leaving it out would lose the document.
    doc = pycrdt.Doc()
    doc.apply_update(yrs_crashes._ASTRAL_TEXT)
    doc.apply_update(ASTRAL.update)
    snapshot = doc.get_update()
    try:
        decode_update(snapshot)
        refused = False
    except InvalidUpdate:
        refused = True
    assert refused
    result = replay(snapshot, [])
    assert result.skipped == []
    # Nothing lost; the order is yrs's own re-encoding divergence (docs/yrs-crashes.md).
    kept = str(result.doc.get("t", type=pycrdt.Text))
    assert sorted(kept) == sorted(str(doc.get("t", type=pycrdt.Text)))


def test_deep_nesting_and_what_yrs_refuses_are_left_out_and_the_rest_kept():
    good = pycrdt.Doc()
    good.get("m", type=pycrdt.Map)["k"] = "v"
    tail = [(1, deep_any(77, depth=5_000)), (2, zero_length(78)), (3, good.get_update())]
    result = replay(None, tail)
    assert dict(result.skipped).keys() == {1}  # the depth bomb; yrs takes the empty item
    assert result.doc.get("m", type=pycrdt.Map).to_py() == {"k": "v"}
    assert SNAPSHOT_SEQ not in dict(result.skipped)
