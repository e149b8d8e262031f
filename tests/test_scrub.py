"""``crdt/scrub.py``: a document copied without a principal's identity (erasure, issue 12).

The property: for any document built from random maps, texts and arrays whose keys and values
draw on the identity strings (and some of whose keys were deleted again), the scrubbed copy
holds none of the identity's bytes, and its content is exactly the source's content with
identity keys dropped and identity values replaced (a pure model of the rule, on plain JSON).
"""

from __future__ import annotations

from typing import Any

import pycrdt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crdt.schemas import Canvas, Journal
from crdt.scrub import ERASED, Scrubber, scrub

BOB = "bob-7f3a"
EMAIL = "bob.k@example.org"
SCRUBBER = Scrubber([BOB, EMAIL], fragments=[EMAIL])

words = st.sampled_from(["alice", "card", "x", BOB, EMAIL, "bobsled", "note"])
keys = st.one_of(words, st.text(alphabet="abcdef", min_size=1, max_size=4))
leaf = st.one_of(words, st.integers(-5, 5), st.booleans(), st.none())


def _value(depth: int) -> st.SearchStrategy[Any]:
    if depth == 0:
        return leaf
    inner = _value(depth - 1)
    return st.one_of(
        leaf,
        st.builds(lambda d: ("map", d), st.dictionaries(keys, inner, max_size=3)),
        st.builds(lambda xs: ("array", xs), st.lists(inner, max_size=3)),
        st.builds(lambda parts: ("text", " ".join(parts)), st.lists(words, max_size=3)),
    )


def _shared(value: Any) -> Any:
    if isinstance(value, tuple):
        kind, inner = value
        if kind == "map":
            return pycrdt.Map({k: _shared(v) for k, v in inner.items()})
        if kind == "array":
            return pycrdt.Array([_shared(v) for v in inner])
        return pycrdt.Text(inner)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        kind, inner = value
        if kind == "map":
            return {k: _plain(v) for k, v in inner.items()}
        if kind == "array":
            return [_plain(v) for v in inner]
        return inner
    return value


def _expected(value: Any) -> Any:
    """The rule, on plain values: identity keys dropped, identities (and the e-mail inside
    strings) replaced."""
    if isinstance(value, dict):
        return {k: _expected(v) for k, v in value.items() if k not in (BOB, EMAIL)}
    if isinstance(value, list):
        return [_expected(v) for v in value]
    if isinstance(value, str):
        return ERASED if value in (BOB, EMAIL) else value.replace(EMAIL, ERASED)
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def _content(update: bytes, roots: list[str]) -> dict[str, Any]:
    doc = pycrdt.Doc()
    doc.apply_update(update)
    return {name: doc.get(name, type=pycrdt.Map).to_py() for name in roots}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    roots=st.dictionaries(
        st.sampled_from(["elements", "meta", "votes"]),
        st.dictionaries(keys, _value(2), max_size=4),
        min_size=1,
        max_size=3,
    ),
    deleted=st.lists(st.sampled_from([BOB, EMAIL, "gone"]), max_size=3),
)
def test_the_copy_holds_no_identity_and_exactly_the_rest(roots, deleted):
    doc = pycrdt.Doc()
    for name, entries in roots.items():
        root = doc.get(name, type=pycrdt.Map)
        for key, value in entries.items():
            root[key] = _shared(value)
        # A key set then deleted: its name survives in the encoded document (the reason
        # erasure copies instead of editing).
        for key in deleted:
            if key not in entries:
                root[key] = "temporary"
                del root[key]
    source = doc.get_update()
    out = scrub(source, SCRUBBER)
    assert EMAIL.encode() not in out
    # The principal id is matched whole: it may stay only inside a longer string of the source.
    plain = [{k: _plain(v) for k, v in entries.items()} for entries in roots.values()]
    if not any(BOB in s and s != BOB for s in _strings(plain)):
        assert BOB.encode() not in out
    names = sorted(roots)
    assert _content(out, names) == {
        name: _expected({k: _plain(v) for k, v in roots[name].items()}) for name in names
    }
    # Scrubbing again changes nothing more.
    assert _content(scrub(out, SCRUBBER), names) == _content(out, names)


def test_a_deleted_map_key_survives_gc_but_not_the_copy():
    doc = pycrdt.Doc()
    votes = doc.get("votes", type=pycrdt.Map)
    votes[EMAIL] = 1
    del votes[EMAIL]
    gc = pycrdt.Doc()
    gc.apply_update(doc.get_update())
    assert EMAIL.encode() in gc.get_update()  # what makes erasure a rewrite
    assert EMAIL.encode() not in scrub(gc.get_update(), SCRUBBER)


def test_journal_and_canvas_keep_their_schema_and_lose_the_author():
    journal = Journal.create("Diary")
    entry = journal.create_entry("Monday", f"met {EMAIL} and {BOB} today")
    canvas = Canvas.create("Board", author=BOB)
    canvas.add_text("hello", 1.0, 2.0)
    j = pycrdt.Doc()
    j.apply_update(scrub(journal.doc.get_update(), SCRUBBER))
    [kept] = Journal(j).entries()
    assert kept["id"] == entry and kept["title"] == "Monday"
    # The principal id is matched whole only; the e-mail (a fragment) also inside the text.
    assert kept["body"] == f"met {ERASED} and {BOB} today"
    c = pycrdt.Doc()
    c.apply_update(scrub(canvas.doc.get_update(), SCRUBBER))
    [element] = Canvas(c).elements()
    assert element["author"] == ERASED and element["text"] == "hello"
    assert Canvas(c).to_json()["meta"]["schema"] == "canvas/1"


def test_a_text_root_and_an_array_root_are_copied():
    doc = pycrdt.Doc()
    doc.get("notes", type=pycrdt.Text).insert(0, BOB)
    doc.get("list", type=pycrdt.Array).extend(["a", BOB, EMAIL + "!"])
    out = pycrdt.Doc()
    out.apply_update(scrub(doc.get_update(), SCRUBBER))
    assert str(out.get("notes", type=pycrdt.Text)) == ERASED
    assert out.get("list", type=pycrdt.Array).to_py() == ["a", ERASED, ERASED + "!"]
