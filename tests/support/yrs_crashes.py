"""The crashes of yrs (pycrdt 0.14) we know, as bytes, and a way to watch each happen.

``docs/yrs-crashes.md`` describes them; ``tests/test_update_fuzz.py`` checks that each still
does what the page says (so the page cannot go stale when pycrdt is upgraded) and that the
strict decoder refuses every one it can judge without the document.

Each runs in a fresh ``python`` process: a segfault or a hang there is an outcome, not the end
of the test run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field

from tests.support.update_bytes import (
    any_int,
    any_item,
    item,
    item_after,
    item_between,
    nested_arrays,
    one,
    type_chain,
    update,
    vs,
    vu,
)

# A harmless run of the script takes well under a second; a hang is forever.
HANG_TIMEOUT = 5.0


@dataclass(frozen=True)
class Reproducer:
    name: str
    update: bytes
    what: str  # how to touch yrs: get_state | apply | read | observe | roundtrip
    expect: str  # segfault | panic | hang | key_error | diverges | an exception's name
    before: bytes = b""  # applied first, to the same document
    root: tuple[str, str] = ("t", "Map")  # the root read or observed, and its type
    needs_document: bool = False  # True: the decoder cannot tell without the document
    notes: dict[str, str] = field(default_factory=dict)


_ONE_NUMBER = update([(1, 0, [item(8, vu(1) + any_int(1))])])  # root "t": Y.Array [1]
_MAP_ENTRY = update([(1, 0, [item(8, vu(1) + any_int(1), key="k")])])  # root "t": {"k": 1}
_ASTRAL_TEXT = update([(1, 0, [item(4, vs("a🌙b"))])])  # root "t" written as a Y.Text

REPRODUCERS = [
    Reproducer(
        "deep Any array: get_state overflows the stack",
        one(any_item(nested_arrays(30_000))),
        "get_state",
        "segfault",
    ),
    Reproducer(
        "deep Any array: converting it to Python overflows the stack",
        one(any_item(nested_arrays(20_000))),
        "read",
        "segfault",
    ),
    Reproducer(
        "deep shared types: to_json overflows the stack",
        type_chain(30_000),
        "read",
        "segfault",
    ),
    Reproducer(
        "item of length 0 after the client's last clock",
        update([(1, 1, [any_item(key=None)])]),
        "apply",
        "panic",
        before=_ONE_NUMBER,
        root=("t", "Array"),
    ),
    Reproducer(
        "client block without structs after the client's last clock",
        vu(1) + vu(0) + vu(1) + vu(1) + b"\x00",
        "apply",
        "panic",
        before=_ONE_NUMBER,
        root=("t", "Array"),
    ),
    Reproducer(
        "struct clock past 2**31 with a delete set",
        update([(1, 2**31 + 1, [item(4, vs("a"))])], [(1, [(1, 3)])]),
        "apply",
        "panic",
    ),
    Reproducer(
        "Format item under a map key, observed",
        one(item(6, vs("bold") + vs("true"), key="k")),
        "observe",
        "panic",
    ),
    Reproducer(
        "Format item right of a map entry: the map breaks",
        update([(1, 1, [item_after(6, vs("bold") + vs("true"), (1, 0))])]),
        "read",
        "key_error",
        before=_MAP_ENTRY,
        needs_document=True,
    ),
    Reproducer(
        "Format item right of a map entry, observed",
        update([(1, 1, [item_after(6, vs("bold") + vs("true"), (1, 0))])]),
        "observe",
        "panic",
        before=_MAP_ENTRY,
        needs_document=True,
    ),
    Reproducer(
        "insertion inside a surrogate pair: yrs re-encodes a different text",
        update([(2, 0, [item_between(4, vs("x"), (1, 1), (1, 2))])]),
        "roundtrip",
        "diverges",
        before=_ASTRAL_TEXT,
        root=("t", "Text"),
        needs_document=True,
    ),
    Reproducer(
        "ContentJSON as yjs writes it: yrs reads one string more",
        one(item(2, vu(1) + vs("1"), key="k")),
        "get_state",
        "ValueError",
    ),
    Reproducer(
        "Y.XmlHook as yjs writes it: yrs does not read its name",
        one(item(7, b"\x05" + vs("hook"), key="k")),
        "get_state",
        "ValueError",
    ),
    Reproducer(
        "array holding a string with a surrogate pair: reading it never ends",
        _ASTRAL_TEXT,
        "read",
        "hang",
        root=("t", "Array"),
        needs_document=True,
    ),
]

_SCRIPT = r"""
import json, sys
import pycrdt
job = json.loads(sys.stdin.read())
update, before = bytes.fromhex(job["update"]), bytes.fromhex(job["before"])
name, kind = job["root"]
if job["what"] == "get_state":
    try:
        pycrdt.get_state(update)
    except Exception as exc:
        print(type(exc).__name__)
        sys.exit(0)
else:
    doc = pycrdt.Doc()
    root = doc.get(name, type=getattr(pycrdt, kind))
    if before:
        doc.apply_update(before)
    if job["what"] == "observe":
        root.observe(lambda event: None)
        root.observe_deep(lambda events: [e.path for e in events])
    try:
        doc.apply_update(update)
    except BaseException as exc:
        print(type(exc).__name__)
        sys.exit(0)
    if job["what"] == "read":
        try:
            str(root)
            root.to_py()
        except KeyError:
            print("KeyError")
            sys.exit(0)
    if job["what"] == "roundtrip":
        copy = pycrdt.Doc()
        copied = copy.get(name, type=getattr(pycrdt, kind))
        copy.apply_update(doc.get_update())
        if str(copied) != str(root):
            print("diverges")
            sys.exit(0)
print("ok")
"""


def run(reproducer: Reproducer) -> str:
    """What happens to a fresh process that does what ``reproducer`` says."""
    job = {
        "update": reproducer.update.hex(),
        "before": reproducer.before.hex(),
        "root": list(reproducer.root),
        "what": reproducer.what,
    }
    try:
        done = subprocess.run(
            [sys.executable, "-c", _SCRIPT],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=HANG_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return "hang"
    if done.returncode < 0:
        return "segfault" if done.returncode == -11 else f"signal {-done.returncode}"
    last = done.stdout.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
    return {"PanicException": "panic", "KeyError": "key_error"}.get(last[0], last[0])
