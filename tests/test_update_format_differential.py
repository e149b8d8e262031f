"""The optimised strict decoder gives exactly the verdicts of the frozen reference.

``tests/reference_update_format.py`` is the decoder as it was before it was sped up. Random
valid updates from pycrdt (text, map, array and XML edits, deletes, merges) and random byte
mutations of them (flip, truncate, insert, splice) must give the same :class:`UpdateShape`, or
an exception of the same type, from both. Run with more examples locally:
``SYNCD_DIFF_EXAMPLES=20000 .venv/bin/python -m pytest tests/test_update_format_differential.py``.
"""

from __future__ import annotations

import os

import pycrdt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crdt import update_format
from tests import reference_update_format as reference

EXAMPLES = int(os.environ.get("SYNCD_DIFF_EXAMPLES", "200"))
_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=10,
)
_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=16)
_op = st.tuples(
    st.sampled_from(["text", "text_delete", "map", "map_type", "array", "array_delete", "xml"]),
    st.integers(0, 1000),
    _text,
    _values,
)


def _apply(doc: pycrdt.Doc, op: tuple[str, int, str, object]) -> None:
    kind, at, text, value = op
    t = doc.get("t", type=pycrdt.Text)
    m = doc.get("m", type=pycrdt.Map)
    a = doc.get("a", type=pycrdt.Array)
    if kind == "text" and text:
        t.insert(at % (len(t) + 1), text)
    elif kind == "text_delete" and len(t):
        start = at % len(t)
        del t[start : min(len(t), start + 1 + at % 3)]
    elif kind == "map":
        m[text[:4] or "k"] = value
    elif kind == "map_type":
        m[text[:4] or "k"] = pycrdt.Map({"points": pycrdt.Array([value, 1.5])})
    elif kind == "array":
        a.insert(at % (len(a) + 1), value)
    elif kind == "array_delete" and len(a):
        del a[at % len(a)]
    elif kind == "xml":
        x = doc.get("x", type=pycrdt.XmlFragment)
        x.children.append(pycrdt.XmlElement("p", {"k": text[:3]}, [pycrdt.XmlText(text or "a")]))


@st.composite
def _updates(draw: st.DrawFn) -> bytes:
    # A drawn client id: pycrdt's random ones would make the bytes differ between replays.
    doc = pycrdt.Doc(client_id=draw(st.sampled_from([1, 300, 2**31 + 5, 2**53 - 1])))
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(e.update))
    for op in draw(st.lists(_op, min_size=1, max_size=8)):
        try:
            _apply(doc, op)
        except BaseException as e:  # pycrdt panics on some index edge cases: stop editing there
            if isinstance(e, KeyboardInterrupt):
                raise
            break
    if not updates:
        return doc.get_update()
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return updates[-1]
    if choice == 1:
        return pycrdt.merge_updates(*updates)
    return doc.get_update()


@st.composite
def _mutants(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(_updates()))
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["flip", "truncate", "insert", "splice", "byte"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if how == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "byte" and data:
            data[at] = draw(st.integers(0, 255))
        elif how == "truncate":
            del data[at:]
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif how == "splice" and data:
            end = draw(st.integers(at, len(data)))
            other = draw(st.integers(0, len(data)))
            data[at:end] = data[other : other + draw(st.integers(0, 8))]
    return bytes(data)


def _verdict(decode, data: bytes) -> object:
    try:
        return decode(data)
    except Exception as e:  # the verdict is the exception's type
        return type(e)


def _same(data: bytes) -> None:
    expected = _verdict(reference.decode_update, data)
    got = _verdict(update_format.decode_update, data)
    assert got == expected, data.hex()


@_SETTINGS
@given(_updates())
def test_valid_updates_decode_the_same(data: bytes) -> None:
    # Not every pycrdt update is accepted (a delete may split a surrogate pair): same verdict.
    _same(data)


@_SETTINGS
@given(_mutants())
def test_mutated_updates_get_the_same_verdict(data: bytes) -> None:
    _same(data)
