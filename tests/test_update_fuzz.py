"""Fuzzing the strict decoder: nothing it accepts may crash yrs, and yjs must read it the same.

100,000 mutations (seeded, so every run tries the same ones) of real updates from pycrdt and
from stock yjs go through ``crdt.update_format.decode_update``, which must answer each with a
shape or ``InvalidUpdate`` and nothing else. Every accepted one then goes to pycrdt in a child
process (``tests/support/yrs_child.py``), applied alone and on the document the original update
was made on, read back, re-encoded and observed: a segfault, hang or panic there is a gap in
the decoder, reported with the bytes that caused it, and so is a re-encoding by yrs that the
decoder refuses (the daemon stores what yrs writes). Plain errors (yrs needs the document to
judge, e.g. a parent it does not have) are fine: the daemon applies to the room's document
before committing.
The accepted ones also go to yjs, which must read the same clocks, state vector and delete set.

``test_known_crashes`` keeps ``docs/yrs-crashes.md`` honest: each crash it lists still happens
with the pinned pycrdt, and the decoder refuses every one that can be judged without the
document.
"""

from __future__ import annotations

import random

import pytest

from crdt.update_format import InvalidUpdate, decode_update
from tests.support.update_bytes import any_int, any_item, item, nested_arrays, one, update, vu
from tests.support.update_corpus import Sample, pycrdt_samples, yjs_inspect, yjs_samples
from tests.support.update_mutations import mutate
from tests.support.yrs_crashes import REPRODUCERS, Reproducer, run
from tests.support.yrs_sandbox import run_in_child

pytestmark = pytest.mark.node  # half the corpus comes from yjs

MUTANTS = 100_000
SEED = 20_240_611


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    return [s for s in pycrdt_samples() + yjs_samples() if s.valid]


@pytest.fixture(scope="module")
def accepted(samples: list[Sample]) -> list[tuple[int, dict[int, int], bytes]]:
    """The mutants the decoder accepts, as (sample index, state vector, bytes)."""
    rng = random.Random(SEED)
    originals = [s.update for s in samples]
    accepted, refused, surprises = [], 0, []
    for _ in range(MUTANTS):
        index = rng.randrange(len(samples))
        mutant = mutate(rng, originals[index], originals)
        try:
            shape = decode_update(mutant)
        except InvalidUpdate:
            refused += 1
            continue
        except Exception as exc:  # the decoder itself must never fail otherwise
            surprises.append(f"{type(exc).__name__}: {exc}: {mutant.hex()}")
            continue
        accepted.append((index, shape.state_vector, mutant))
    assert not surprises, "\n".join(surprises[:10])
    # Both sides are exercised: most mutants are refused, many thousands accepted.
    assert refused > MUTANTS // 2
    assert len(accepted) > MUTANTS // 20
    return accepted


def test_accepted_mutants_never_crash_yrs(samples, accepted):
    report = run_in_child(samples, accepted)
    assert not report.crashes, report.describe()
    assert report.counts["panic"] == report.counts["sv_mismatch"] == 0, report.describe()
    assert report.counts["other"] == 0, report.describe()
    assert report.counts["rewrite_refused"] == 0, report.describe()
    # What needs the document the mutant is applied to (docs/yrs-crashes.md: a Format item
    # right of one of its map entries panics observers; a reference inside a surrogate pair of
    # its text makes yrs write clocks that do not match its strings) the decoder cannot see:
    # the daemon's guard and its check of what it stores catch those. They stay rare.
    assert report.counts["observer_panic"] < len(accepted) // 100, report.describe()
    assert report.counts["rewrite_refused_with_document"] < len(accepted) // 100, report.describe()
    assert sum(report.counts.values()) == len(accepted)
    assert report.counts["ok"] > len(accepted) // 2, report.describe()


def test_accepted_mutants_read_the_same_in_yjs(accepted):
    mutants = [mutant for _, _, mutant in accepted]
    differ = []
    for mutant, yjs in zip(mutants, yjs_inspect(mutants), strict=True):
        shape = decode_update(mutant)
        mine = {
            "clients": shape.clients,
            "sv": shape.state_vector,
            "ds": shape.delete_set,
            "structs": shape.struct_count,
        }
        if not yjs["ok"] or any(yjs[key] != value for key, value in mine.items()):
            differ.append(f"{mutant.hex()}: ours {mine}, yjs {yjs}")
    assert not differ, "\n".join(differ[:10])


def test_the_child_reports_panics_and_names_the_update_that_killed_it():
    before = update([(1, 0, [item(8, vu(1) + any_int(1))])])
    seed = Sample("array [1]", before, {"t": "Array"}, before=before)
    fine = update([(1, 1, [item(8, vu(1) + any_int(2))])])
    panics = update([(1, 1, [any_item(key=None)])])  # length 0 right after clock 0
    report = run_in_child([seed], [(0, {}, fine), (0, {}, panics)])
    assert report.counts == {"ok": 1, "panic": 1}
    assert report.examples["panic"] == [panics]
    segfaults = one(any_item(nested_arrays(30_000)))
    report = run_in_child([seed], [(0, {}, fine), (0, {}, segfaults), (0, {}, fine)])
    assert [crash.update for crash in report.crashes] == [segfaults]
    assert report.crashes[0].returncode == -11


@pytest.mark.parametrize("reproducer", REPRODUCERS, ids=lambda r: r.name)
def test_known_crashes(reproducer: Reproducer):
    assert run(reproducer) == reproducer.expect
    if reproducer.needs_document:
        decode_update(reproducer.update)  # nothing in the bytes alone says it is bad
    else:
        with pytest.raises(InvalidUpdate):
            decode_update(reproducer.update)
