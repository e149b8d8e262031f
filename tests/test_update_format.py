"""The strict decoder of Yjs updates (crdt.update_format) against real updates and crafted ones.

Real updates, from pycrdt and from stock yjs (``tests/interop/update_corpus.mjs``), must be
accepted with the state vector pycrdt computes and the clock ranges, delete set and struct count
yjs reads (``tests/interop/update_inspect.mjs``). Every shape yrs cannot survive or would read
differently from yjs has a test with its bytes; each also shows the same update without the
flaw passing, so that the test fails if the flaw stops being what is refused. No crafted
update here reaches pycrdt unless the decoder accepted it: some of them would crash the test
process.
"""

from __future__ import annotations

import contextlib
import json
import random
import time

import pycrdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crdt.protocol import ProtocolError
from crdt.update_format import (
    MAX_CLOCK,
    MAX_DEPTH,
    MAX_TYPE_DEPTH,
    InvalidUpdate,
    decode_delete_set,
    decode_update,
)
from crdt.updates import decode_state_vector, validate_update
from tests.support.update_bytes import (
    ANY_ARRAY,
    ANY_OBJECT,
    any_int,
    any_item,
    item,
    item_after,
    item_in,
    nested_arrays,
    nested_objects,
    one,
    string,
    type_chain,
    update,
    vs,
    vu,
)
from tests.support.update_corpus import (
    Sample,
    pycrdt_samples,
    yjs_inspect,
    yjs_samples,
)
from tests.support.update_mutations import mutate


def pycrdt_state_vector(u: bytes) -> dict[int, int]:
    return decode_state_vector(pycrdt.get_state(u))


def rejected(u: bytes, reason: str) -> None:
    with pytest.raises(InvalidUpdate, match=reason):
        decode_update(u)


# --- real updates -------------------------------------------------------------------------


def _check_against_yjs(samples: tuple[Sample, ...]) -> None:
    answers = yjs_inspect([s.update for s in samples])
    for sample, yjs in zip(samples, answers, strict=True):
        if not sample.valid:  # Y.XmlHook: yjs reads it, yrs would misread it
            assert yjs["ok"], (sample.label, yjs)
            rejected(sample.update, "XmlHook")
            continue
        shape = decode_update(sample.update)
        assert yjs["ok"], (sample.label, yjs)
        assert shape.state_vector == pycrdt_state_vector(sample.update), sample.label
        assert shape.state_vector == yjs["sv"], sample.label
        assert shape.clients == yjs["clients"], sample.label
        assert shape.delete_set == yjs["ds"], sample.label
        assert shape.struct_count == yjs["structs"], sample.label
        assert decode_delete_set(sample.update) == shape.delete_set


@pytest.mark.node
def test_pycrdt_updates_decode_as_yjs_and_pycrdt_read_them():
    _check_against_yjs(pycrdt_samples())


@pytest.mark.node
def test_yjs_updates_decode_as_yjs_and_pycrdt_read_them():
    samples = yjs_samples()
    labels = {s.label for s in samples}
    # The corpus covers what it says it does (a renamed step would silently drop a case).
    for needed in (
        "yjs_map_state",
        "yjs_text_state",
        "yjs_xml_state",
        "yjs_subdoc_state",
        "yjs_merged_skip",
        "yjs_gc_state",
        "yjs_big_client",
        "yjs_xml_hook",
    ):
        assert needed in labels
    _check_against_yjs(samples)


EVERY_KIND = {
    "GC",
    "Skip",
    "ContentDeleted",
    "ContentBinary",
    "ContentString",
    "ContentEmbed",
    "ContentFormat",
    "ContentType",
    "ContentAny",
    "ContentDoc",
}  # all but ContentJSON, which no yjs since 13.0 writes and the decoder refuses


@pytest.mark.node
@pytest.mark.parametrize(
    ("corpus", "expected"),
    [
        # pycrdt writes bytes as an Any buffer, never as ContentBinary
        (pycrdt_samples, EVERY_KIND - {"ContentBinary"}),
        (yjs_samples, EVERY_KIND),
    ],
)
def test_each_corpus_holds_every_kind_of_struct(corpus, expected):
    """So that "every real update is accepted" means something for each kind."""
    kinds: set[str] = set()
    for answer in yjs_inspect([s.update for s in corpus() if s.valid]):
        kinds.update(answer["kinds"])
    assert kinds == expected


def test_accepted_shape_of_a_small_update():
    doc = pycrdt.Doc(client_id=7)
    text = doc.get("t", type=pycrdt.Text)
    text += "a🌙b"  # 4 UTF-16 code units
    with doc.transaction():
        del text[0:1]
    shape = validate_update(doc.get_update())
    assert shape.clients == {7: (0, 4)}
    assert shape.state_vector == {7: 4}
    assert shape.delete_set == {7: [(0, 1)]}
    assert (shape.max_depth, shape.type_depth) == (0, 0)


def test_depth_is_reported():
    assert decode_update(one(any_item(nested_arrays(3)))).max_depth == 3
    assert decode_update(type_chain(4)).type_depth == 5  # root, then four maps


def test_skip_stops_the_state_vector_as_in_yjs():
    u = update([(5, 0, [string("ab"), b"\x0a\x03", string("c")]), (6, 2, [string("x")])])
    shape = decode_update(u)
    assert shape.clients == {5: (0, 6), 6: (2, 3)}
    assert shape.state_vector == {5: 2} == pycrdt_state_vector(u)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_pycrdt_edits_decode_with_pycrdt_state_vector(data):
    doc = pycrdt.Doc(
        client_id=data.draw(st.integers(1, 2**53 - 1)), skip_gc=data.draw(st.booleans())
    )
    text = doc.get("t", type=pycrdt.Text)
    items = doc.get("m", type=pycrdt.Map)
    array = doc.get("a", type=pycrdt.Array)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    chars = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
    values = st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**63 - 1)
        | st.floats()
        | chars
        | st.binary(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(chars, inner, max_size=3),
        max_leaves=8,
    )
    for _ in range(data.draw(st.integers(1, 12))):
        action = data.draw(st.sampled_from(["insert", "delete", "format", "set", "del", "push"]))
        current = str(text)
        # pycrdt's Text offsets are UTF-8 bytes: keep them on character boundaries.
        at = len(current[: data.draw(st.integers(0, len(current)))].encode())
        if action == "insert":
            text.insert(at, data.draw(chars))
        elif action == "delete" and current:
            start = data.draw(st.integers(0, len(current) - 1))
            stop = data.draw(st.integers(start + 1, len(current)))
            del text[len(current[:start].encode()) : len(current[:stop].encode())]
        elif action == "format" and current:
            text.format(0, len(current.encode()), {"bold": data.draw(st.booleans() | st.none())})
        elif action == "set":
            key = data.draw(st.sampled_from("abc"))
            nested = data.draw(st.booleans())
            items[key] = pycrdt.Map({"v": data.draw(values)}) if nested else data.draw(values)
        elif action == "del" and items:
            del items[data.draw(st.sampled_from(sorted(items.keys())))]
        elif action == "push":
            array.append(data.draw(values))
    for u in [*updates, doc.get_update(), pycrdt.merge_updates(*updates) if updates else b""]:
        if u:
            assert decode_update(u).state_vector == pycrdt_state_vector(u)


@settings(max_examples=300, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(0, 10_000))
def test_mutated_updates_are_accepted_or_invalid_never_another_error(rng: random.Random, k):
    samples = pycrdt_samples()
    base = samples[k % len(samples)].update
    mutant = mutate(rng, base, [s.update for s in samples])
    with contextlib.suppress(InvalidUpdate):  # any other exception fails the test
        decode_update(mutant)


@given(st.binary(max_size=64))
def test_random_bytes_are_accepted_or_invalid(raw: bytes):
    with contextlib.suppress(InvalidUpdate):
        decode_update(raw)


# --- refused shapes -----------------------------------------------------------------------


def test_deep_any_array_is_refused_before_pycrdt_sees_it():
    deep = one(any_item(nested_arrays(30_000)))  # get_state overflows yrs's stack: SIGSEGV
    rejected(deep, "nested deeper than 32")
    with pytest.raises(ProtocolError):
        validate_update(deep)


def test_any_depth_limit():
    assert MAX_DEPTH == 32
    assert decode_update(one(any_item(nested_arrays(MAX_DEPTH)))).max_depth == MAX_DEPTH
    rejected(one(any_item(nested_arrays(MAX_DEPTH + 1))), "nested deeper")
    assert decode_update(one(any_item(nested_objects(MAX_DEPTH)))).max_depth == MAX_DEPTH
    rejected(one(any_item(nested_objects(MAX_DEPTH + 1))), "nested deeper")
    doc_options = item(9, vs("guid") + nested_objects(MAX_DEPTH + 1), key="d")
    rejected(one(doc_options), "nested deeper")


def test_json_depth_limit():
    def embed(depth: int) -> bytes:
        return one(item(5, vs("[" * depth + "]" * depth)))

    assert decode_update(embed(MAX_DEPTH)).max_depth == MAX_DEPTH
    rejected(embed(MAX_DEPTH + 1), "JSON nested deeper")
    rejected(embed(100_000), "JSON nested deeper")  # beyond Python's own recursion limit
    rejected(one(item(6, vs("bold") + vs('{"a":' * 40 + "1" + "}" * 40))), "JSON nested deeper")


def test_type_nesting_limit():
    assert decode_update(type_chain(MAX_TYPE_DEPTH - 1)).type_depth == MAX_TYPE_DEPTH
    rejected(type_chain(MAX_TYPE_DEPTH), "shared types nested deeper")
    rejected(type_chain(30_000), "shared types nested deeper")  # str() of it: SIGSEGV


def test_type_nesting_through_origins_is_counted():
    """A type right of an item inherits that item's parent: nesting through origins counts."""
    client, structs = 1, []
    parent = None
    for _ in range(MAX_TYPE_DEPTH):
        clock = len(structs) // 2 * 4  # each round: a 3-unit Any and a type
        if parent is None:
            structs.append(item(8, vu(3) + any_int(1) * 3, root="t"))  # a 3-unit Any at root
        else:
            structs.append(item_in(8, vu(3) + any_int(1) * 3, parent))
        # The new type sits right of the Any's middle unit: same parent as the Any.
        structs.append(item_after(7, b"\x00", (client, clock + 1)))
        parent = (client, clock + 3)
    u = update([(client, 0, structs)])
    rejected(u, "shared types nested deeper")
    assert decode_update(update([(client, 0, structs[:-2])])).type_depth == MAX_TYPE_DEPTH


@pytest.mark.parametrize(
    ("struct", "label"),
    [
        (any_item(), "Any with no values"),
        (item(1, vu(0)), "Deleted of length 0"),
        (string(""), "empty String"),
        (b"\x00" + vu(0), "GC of length 0"),
        (b"\x0a" + vu(0), "Skip of length 0"),
    ],
)
def test_zero_length_structs_are_refused(struct: bytes, label: str):
    # Items of length 0 make yrs panic when they are all a block holds at the client's next
    # clock (docs/yrs-crashes.md); no writer means to make any of these.
    rejected(update([(1, 1, [struct])]), "length 0")


def test_the_same_structs_with_length_one_pass():
    for struct in (any_item(any_int(1)), item(1, vu(1)), string("a"), b"\x00\x01", b"\x0a\x01"):
        decode_update(update([(1, 1, [struct])]))


def test_json_content_is_refused():
    rejected(one(item(2, vu(1) + vs("1"))), "ContentJSON")  # valid as yjs reads it
    rejected(one(item(2, vu(0))), "length 0")
    rejected(one(item(2, vu(1) + vs("NaN"))), "NaN")


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "[1, NaN]", "1e400", "-1e999"])
def test_json_that_javascript_or_serde_refuses(bad: str):
    rejected(one(item(5, vs(bad))), "NaN|Infinity|overflow")
    rejected(one(item(6, vs("bold") + vs(bad))), "NaN|Infinity|overflow")


@pytest.mark.parametrize(
    "bad", ["", "{", "[1,]", "'x'", '"\\x"', "01", "1 2", "\ufeff1", '"\u0001"', '"\\ud800"']
)
def test_text_that_is_not_strict_json(bad: str):
    rejected(one(item(5, vs(bad))), "not JSON|surrogate")


def test_good_json_passes():
    for good in ('{"a": [1, 2.5, null, true, "é🌙"]}', " 1 ", "null", '"\\ud83c\\udf19"', "-0"):
        decode_update(one(item(5, vs(good))))
        decode_update(one(item(6, vs("k") + vs(good))))


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(json_values, st.sampled_from([(",", ":"), (", ", ": ")]), st.booleans())
def test_json_content_is_read_at_its_depth(value, separators, ascii_only):
    text = json.dumps(value, separators=separators, ensure_ascii=ascii_only)
    assert decode_update(one(item(5, vs(text)))).max_depth == _depth(value)


HUGE = vu(2**40)


@pytest.mark.parametrize(
    ("u", "where"),
    [
        (HUGE + b"\x00", "client blocks"),
        (vu(1) + HUGE + vu(1) + vu(0) + b"\x00\x01\x00", "structs"),
        (one(item(8, HUGE)), "Any values"),
        (one(item(8, vu(1) + bytes([ANY_ARRAY]) + HUGE)), "Any array"),
        (one(item(8, vu(1) + bytes([ANY_OBJECT]) + HUGE)), "Any object"),
        (one(item(2, HUGE)), "JSON values"),
        (one(item(1, HUGE)), "clock beyond"),
        (one(item(4, HUGE + b"abc")), "string runs past"),
        (one(item(3, HUGE + b"abc")), "buffer runs past"),
        (b"\x00" + HUGE + b"\x01\x01\x00\x01", "delete-set clients"),
        (b"\x00\x01\x01" + HUGE + b"\x00\x01", "delete ranges"),
    ],
)
def test_counts_beyond_the_bytes_fail_fast(u: bytes, where: str):
    started = time.perf_counter()
    rejected(u, where)
    # Looping 2**40 times would take days; a generous bound, not a benchmark.
    assert time.perf_counter() - started < 1.0


def test_every_truncation_of_real_updates_is_refused():
    count = 0
    for sample in pycrdt_samples():
        for end in range(len(sample.update)):
            with pytest.raises(InvalidUpdate):
                decode_update(sample.update[:end])
            count += 1
    assert count > 1000


def test_trailing_bytes_are_refused():
    u = one(string("a"))
    decode_update(u)
    rejected(u + b"\x00", "1 trailing byte")


def test_varints():
    decode_update(one(string("a"), client=2**53 - 1))
    rejected(one(string("a"), client=2**53), "beyond 2\\*\\*53")
    rejected(b"\x80" * 8 + b"\x01\x00", "longer than 8 bytes")
    rejected(b"\x81", "truncated")
    decode_update(one(any_item(any_int(2**53 - 1))))
    rejected(one(any_item(any_int(2**53))), "beyond 2\\*\\*53")
    decode_update(one(any_item(any_int(-(2**53 - 1)))))


def test_clocks_beyond_yrs_range():
    assert MAX_CLOCK == 2**31 - 1
    decode_update(one(string("a"), clock=MAX_CLOCK - 1))
    rejected(one(string("a"), clock=MAX_CLOCK), "clock beyond")  # its end would be 2**31
    rejected(one(string("a"), clock=MAX_CLOCK + 2), "clock beyond")
    rejected(one(item_after(4, vs("a"), (2, 2**31)), clock=5), "clock beyond")
    decode_update(update(delete_set=[(1, [(MAX_CLOCK - 1, 1)])]))
    rejected(update(delete_set=[(1, [(MAX_CLOCK, 1)])]), "clock beyond")
    rejected(update(delete_set=[(1, [(0, 2**32)])]), "clock beyond")


def test_unknown_refs_and_tags():
    for ref in range(11, 32):
        rejected(one(bytes([ref]) + vu(1) + vs("t") + b"\x01"), "unknown content ref")
    for flags in (0x20, 0x40, 0x80):
        rejected(one(bytes([flags]) + b"\x01"), "GC/Skip with flags")
        rejected(one(bytes([flags | 10]) + b"\x01"), "GC/Skip with flags")
    for tag in [*range(0, 116), *range(128, 256)]:
        rejected(one(any_item(bytes([tag]))), "unknown Any tag")
    for type_ref in (7, 8, 9, 15, 0x80):
        rejected(one(item(7, bytes([type_ref]) + vs("x"))), "unknown type ref")
    for parent_info in (2, 0x80):
        rejected(one(b"\x04" + bytes([parent_info]) + vs("t") + vs("a")), "unknown parent info")


def test_types_yrs_reads_differently():
    decode_update(one(item(7, b"\x03" + vs("paragraph"))))  # XmlElement with its name
    rejected(one(item(7, b"\x05" + vs("hook-name"))), "XmlHook")
    rejected(one(item(9, vs("guid") + any_int(1), key="d")), "options are not an object")


@pytest.mark.parametrize(
    "raw", [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"a\x80"]
)
def test_invalid_utf8_is_refused_everywhere(raw: bytes):
    bad = vu(len(raw)) + raw
    rejected(one(item(4, bad)), "UTF-8")  # String content
    rejected(one(b"\x04\x01" + bad + vs("a")), "UTF-8")  # root name
    rejected(one(b"\x24\x01" + vs("t") + bad + vs("a")), "UTF-8")  # parentSub
    rejected(one(any_item(b"\x77" + bad)), "UTF-8")  # Any string
    rejected(one(any_item(bytes([ANY_OBJECT, 1]) + bad + b"\x7e")), "UTF-8")  # Any key
    rejected(one(item(7, b"\x03" + bad)), "UTF-8")  # XmlElement name
    rejected(one(item(6, bad + vs("true"))), "UTF-8")  # Format key
    rejected(one(item(9, bad + bytes([ANY_OBJECT, 0]), key="d")), "UTF-8")  # subdoc guid


def test_strings_count_utf16_code_units():
    for text, units in (("a", 1), ("é", 1), ("€", 1), ("🌙", 2), ("a🌙é🌙", 6)):
        u = update([(1, 0, [string(text), string("z")])])  # "z" starts where text ends
        assert decode_update(u).clients == {1: (0, units + 1)}
        assert pycrdt_state_vector(u) == {1: units + 1}


def test_repeated_clients_are_refused():
    rejected(update([(1, 0, [string("a")]), (1, 1, [string("b")])]), "two blocks")
    decode_update(update([(1, 0, [string("a")]), (2, 0, [string("b")])]))
    rejected(update(delete_set=[(1, [(0, 1)]), (1, [(5, 1)])]), "twice in the delete set")


def test_delete_ranges():
    decode_update(update(delete_set=[(1, [(0, 2), (2, 1), (9, 3)])]))  # adjacent is fine
    rejected(update(delete_set=[(1, [(0, 0)])]), "delete range of length 0")
    rejected(update(delete_set=[(1, [(5, 1), (0, 1)])]), "out of order")
    rejected(update(delete_set=[(1, [(0, 3), (2, 1)])]), "overlapping")


def test_block_without_structs_is_refused():
    rejected(vu(1) + vu(0) + vu(1) + vu(1) + b"\x00", "without structs")


def test_references_must_point_before_the_item():
    decode_update(update([(1, 0, [string("a"), item_after(4, vs("b"), (1, 0))])]))
    rejected(update([(1, 0, [string("a"), item_after(4, vs("b"), (1, 1))])]), "origin is not")
    right = b"\x44" + vu(1) + vu(3) + vs("b")
    rejected(update([(1, 0, [string("a"), right])]), "right origin is not")
    rejected(one(item_in(4, vs("a"), (1, 0))), "parent is not")
    decode_update(one(item_in(4, vs("a"), (2, 0))))  # another client's item: the doc decides


def test_summary_dataclass_is_plain_data():
    shape = decode_update(update([(3, 0, [string("ab")])], [(3, [(0, 1)])]))
    assert shape.deletes_anything
    assert not decode_update(update([(3, 0, [string("ab")])])).deletes_anything
    assert shape == decode_update(update([(3, 0, [string("ab")])], [(3, [(0, 1)])]))


def test_format_under_a_map_key_is_refused():
    decode_update(one(item(6, vs("bold") + vs("true"))))  # in a text
    rejected(one(item(6, vs("bold") + vs("true"), key="k")), "Format item under a map key")


def test_references_inside_a_surrogate_pair_are_refused():
    moon = item(4, vs("a🌙b"))  # clocks 0 "a", 1-2 the moon, 3 "b"

    def left_of(clock: int) -> bytes:  # a String "x" with right origin (1, clock)
        return bytes([0x44]) + vu(1) + vu(clock) + vs("x")

    for fine in (item_after(4, vs("x"), (1, 0)), item_after(4, vs("x"), (1, 2)), left_of(1)):
        decode_update(update([(1, 0, [moon, fine])]))
    rejected(update([(1, 0, [moon, item_after(4, vs("x"), (1, 1))])]), "surrogate pair")
    rejected(update([(1, 0, [moon, left_of(2)])]), "surrogate pair")
    two = [moon, item_after(4, vs("🌙c"), (1, 3))]  # clocks 4-5 the second moon, 6 "c"
    decode_update(update([(1, 0, [*two, item_after(4, vs("x"), (1, 5))])]))
    rejected(update([(1, 0, [*two, item_after(4, vs("x"), (1, 4))])]), "surrogate pair")
    decode_update(update([(1, 0, [moon])], [(1, [(1, 2)])]))  # the whole moon
    rejected(update([(1, 0, [moon])], [(1, [(2, 2)])]), "surrogate pair")
    rejected(update([(1, 0, [moon])], [(1, [(0, 2)])]), "surrogate pair")
