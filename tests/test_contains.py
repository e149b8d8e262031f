"""``crdt.contains``: "would this update change the document?" from shapes alone, checked
against the truth (apply the update to a copy and watch for a change)."""

from __future__ import annotations

import pycrdt
from hypothesis import given, settings
from hypothesis import strategies as st

from crdt.contains import Knowledge, contains_update, normalize_ranges
from crdt.update_format import decode_delete_set, decode_update
from crdt.updates import decode_state_vector


def knowledge(doc: pycrdt.Doc) -> Knowledge:
    state = doc.get_state()
    return Knowledge.of(decode_state_vector(state), decode_delete_set(doc.get_update(state)))


def changes(doc: pycrdt.Doc, update: bytes) -> bool:
    copy = pycrdt.Doc()
    copy.apply_update(doc.get_update())
    seen: list[bytes] = []
    copy.observe(lambda event: seen.append(event.update))
    copy.apply_update(update)
    return bool(seen)


def test_normalize_merges_overlapping_and_adjacent_ranges():
    assert normalize_ranges({1: [(5, 2), (0, 3), (3, 2), (10, 1)]}) == {1: [(0, 7), (10, 1)]}


# An edit script: (replica 0 or 1, insert position, text, delete count).
edits = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, 20), st.text("ab", max_size=3), st.integers(0, 3)),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(edits, st.integers(0, 12))
def test_contains_matches_applying_the_update(script, split):
    a, b = pycrdt.Doc(), pycrdt.Doc()
    replicas = (a, b)
    snapshots: list[bytes] = []
    for n, (who, at, text, delete) in enumerate(script):
        doc = replicas[who]
        t = doc.get("t", type=pycrdt.Text)
        at = min(at, len(t))
        if text:
            t.insert(at, text)
        if delete and len(t) > at:
            del t[at : min(len(t), at + delete)]
        if n == split:  # the server holds what both had at this point
            a.apply_update(b.get_update())
            b.apply_update(a.get_update())
        snapshots.append(doc.get_update())
    server = pycrdt.Doc()
    server.apply_update(a.get_update())
    known = knowledge(server)
    for update in [b.get_update(), a.get_update(), *snapshots]:
        assert contains_update(known, decode_update(update)) == (not changes(server, update))
