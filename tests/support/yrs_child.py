"""The child process of :mod:`tests.support.yrs_sandbox`: feeds updates to pycrdt, counts outcomes.

Run as a script (``python yrs_child.py``); imports pycrdt and the strict decoder (pure Python),
so that what crashes is yrs. Frames on stdin, each ``kind:u8 length:u32be payload``:

- ``S``: a seed document: JSON ``{"update": hex, "roots": {name: type}}``; numbered in order.
- ``U``: an update to try: ``seed:u32be sv_length:u32be state_vector update``; the state vector
  is what the strict decoder computed (varUint-encoded, sorted by client).
- ``E``: end of a batch: one JSON line goes to stdout with the batch's counts.

For each update: ``pycrdt.get_state`` (compared with the decoder's state vector); apply to a
fresh ``Doc`` and read every root as a map; apply to a ``Doc(skip_gc=True)`` holding the seed
and read every root with the seed's type (others as arrays); encode that document and load it
into another; check that what yrs writes from it (that state, the fresh document's, the merge
with the seed) passes the strict decoder (``rewrite_refused`` otherwise: the daemon stores
such bytes; ``rewrite_refused_with_document`` when only the seeded ones fail); apply once more
on the seed with shallow, deep and transaction observers.
Updates with characters beyond the BMP skip the reads of maps and arrays (see ``_try``). Outcomes:
``ok``; ``error``: a plain exception (``ValueError``...: yrs needs a document to judge, which the
daemon handles); ``panic``: pyo3's ``PanicException`` (a BaseException) — a decoder gap;
``observer_panic``: a panic only in observers and only on the seed's document, which the
decoder cannot see (the daemon's guard catches it; ``docs/yrs-crashes.md``).
A segfault ends the process; the parent notices. ``faulthandler`` prints where to stderr.
"""

from __future__ import annotations

import faulthandler
import json
import re
import struct
import sys

import pycrdt

from crdt.update_format import InvalidUpdate, decode_update

# Filled by _try: what yrs wrote from an accepted update that the decoder then refused.
_REFUSED_REWRITES: list[bytes] = []

# A byte that starts a four-byte UTF-8 sequence (a character beyond the BMP) anywhere: then
# the child does not read maps and arrays (see ``_try``).
_ASTRAL = re.compile(rb"[\xf0-\xf4]")

TYPES = {
    "Text": pycrdt.Text,
    "Map": pycrdt.Map,
    "Array": pycrdt.Array,
    "XmlFragment": pycrdt.XmlFragment,
}


def _decode_sv(sv: bytes) -> dict[int, int]:
    pos = 0

    def uint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = sv[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    return {uint(): uint() for _ in range(uint())}


def _read_all(doc: pycrdt.Doc, types: dict[str, type], content: bool) -> None:
    for name in list(doc.keys()):
        root = doc.get(name, type=types.get(name, pycrdt.Map))
        if content or isinstance(root, pycrdt.Text):
            str(root)
            if not isinstance(root, pycrdt.XmlFragment):  # it has no to_py
                root.to_py()
    doc.get_update()
    doc.get_state()


def _try(
    update: bytes, seed: tuple[bytes, dict[str, type]], expected_sv: bytes, content: bool
) -> str:
    """One update through every step; returns the first step's outcome that is not ok.

    ``content`` False skips reading maps and arrays: yrs hangs reading an array that holds a
    String item with a surrogate pair (docs/yrs-crashes.md), which only the document can tell.
    """
    if _decode_sv(pycrdt.get_state(update)) != _decode_sv(expected_sv):
        return "sv_mismatch"
    fresh = pycrdt.Doc()
    fresh.apply_update(update)
    _read_all(fresh, {}, content)
    seed_update, seed_types = seed
    doc = pycrdt.Doc(skip_gc=True)
    roots = {name: doc.get(name, type=kind) for name, kind in seed_types.items()}
    if seed_update:
        doc.apply_update(seed_update)
    doc.apply_update(update)
    _read_all(doc, seed_types, content)
    if content:
        for name in list(doc.keys()):
            if name not in roots:
                doc.get(name, type=pycrdt.Array).to_py()
    state = doc.get_update()
    copy = pycrdt.Doc()
    copy.apply_update(state)
    _read_all(copy, {}, content)
    # What yrs writes from an accepted update is stored (snapshots, compaction) and read back
    # through the strict decoder: it must pass too.
    try:
        decode_update(fresh.get_update())
    except InvalidUpdate:
        _REFUSED_REWRITES.append(fresh.get_update())
        return "rewrite_refused"
    if seed_update:
        for written in (state, pycrdt.merge_updates(seed_update, update)):
            try:
                decode_update(written)
            except InvalidUpdate:
                # Only with the seed: the update splits a surrogate pair of the seed's text,
                # and yrs then writes clocks that do not match the strings (docs/yrs-crashes.md).
                _REFUSED_REWRITES.append(written)
                return "rewrite_refused_with_document"
    try:
        _observed(seed_update, seed_types, update)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception:
        return "error"
    except BaseException:
        # Only with observers, and only on the seed's document: yrs needs that document to
        # get there (an item inheriting a map key from an origin the update does not hold).
        try:
            _observed(b"", seed_types, update)
        except BaseException as exc:
            if type(exc).__name__ == "PanicException":
                raise
        return "observer_panic"
    return "ok"


def _observed(seed_update: bytes, seed_types: dict[str, type], update: bytes) -> None:
    """Apply ``update`` on ``seed_update`` with every kind of observer on the roots."""
    doc = pycrdt.Doc()
    roots = {name: doc.get(name, type=kind) for name, kind in seed_types.items()}
    if seed_update:
        doc.apply_update(seed_update)
    seen: list[object] = []
    for root in roots.values():
        root.observe(lambda event: seen.append(event))
        root.observe_deep(lambda events: seen.extend(e.path for e in events))
    doc.observe(lambda event: seen.append(event.update))
    doc.apply_update(update)


def main() -> None:
    faulthandler.enable()
    stdin, stdout = sys.stdin.buffer, sys.stdout
    seeds: list[tuple[bytes, dict[str, type]]] = []
    counts: dict[str, int] = {}
    examples: dict[str, list[str]] = {}
    while True:
        header = stdin.read(5)
        if len(header) < 5:
            return
        kind, length = header[:1], struct.unpack(">I", header[1:])[0]
        payload = stdin.read(length)
        if kind == b"S":
            entry = json.loads(payload)
            types = {name: TYPES[kind_name] for name, kind_name in entry["roots"].items()}
            seeds.append((bytes.fromhex(entry["update"]), types))
        elif kind == b"U":
            seed_index, sv_length = struct.unpack(">II", payload[:8])
            expected_sv = payload[8 : 8 + sv_length]
            update = payload[8 + sv_length :]
            try:
                outcome = _try(update, seeds[seed_index], expected_sv, not _ASTRAL.search(update))
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception:
                outcome = "error"
            except BaseException as exc:  # pyo3_runtime.PanicException: a Rust panic
                outcome = "panic" if type(exc).__name__ == "PanicException" else "other"
            counts[outcome] = counts.get(outcome, 0) + 1
            if outcome not in ("ok", "error"):
                found = examples.setdefault(outcome, [])
                if len(found) < 20:
                    shown = _REFUSED_REWRITES[-1] if outcome.startswith("rewrite") else update
                    found.append(shown.hex())
        elif kind == b"E":
            stdout.write(json.dumps({"counts": counts, "examples": examples}) + "\n")
            stdout.flush()
            counts, examples = {}, {}


if __name__ == "__main__":
    main()
