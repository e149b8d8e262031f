"""Real Yjs updates of every kind, for the strict decoder's tests and its fuzz run.

Two writers: pycrdt (yrs) here, and stock yjs through ``tests/interop/update_corpus.mjs``.
Each sample says which root types it has, so that a reader can look at its content with the
right type (pycrdt needs the type of a root to read it).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pycrdt
import pytest

INTEROP = Path(__file__).resolve().parent.parent / "interop"
YJS_WRITER = INTEROP / "update_corpus.mjs"
YJS_INSPECTOR = INTEROP / "update_inspect.mjs"

# Python values pycrdt stores as lib0 Any: every kind it can write.
ANY_VALUES: list[object] = [
    None,
    True,
    False,
    0,
    -1,
    2**31 - 1,
    -(2**31),
    2**53 - 1,
    2**62,  # beyond a double's integers: pycrdt writes a BigInt
    -(2**63),
    0.5,
    -1.25,
    1e300,
    float("nan"),
    float("inf"),
    "",
    "plain",
    "héllo 🌙 wörld",
    b"",
    b"\x00\x01\xff",
    [],
    {},
    [1, [2, [3, [4]]]],
    {"a": {"b": {"c": ["d", None, 1.5]}}, "e": b"bytes"},
]


@dataclass(frozen=True)
class Sample:
    label: str
    update: bytes
    roots: dict[str, str] = field(default_factory=dict)  # name -> Text|Map|Array|XmlFragment
    valid: bool = True  # False: yjs writes it, but the strict decoder must refuse it
    before: bytes = b""  # the document this update was made on (b"": an empty one)


def _recorded(
    build: Callable[[pycrdt.Doc], None], label: str, roots: dict[str, str], client: int
) -> list[Sample]:
    """The updates ``build`` makes, one per transaction, and the final state."""
    doc = pycrdt.Doc(client_id=client)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    build(doc)
    samples = [
        Sample(f"{label}_{i}", u, roots, before=_merged(updates[:i]))
        for i, u in enumerate(updates)
    ]
    samples.append(Sample(f"{label}_state", doc.get_update(), roots))
    return samples


def _merged(updates: Sequence[bytes]) -> bytes:
    return pycrdt.merge_updates(*updates) if updates else b""


def _text(doc: pycrdt.Doc) -> None:
    text = doc.get("t", type=pycrdt.Text)
    # pycrdt's Text offsets are UTF-8 bytes; splitting a character corrupts the text (and
    # makes yrs write an empty String item), so every offset here is on a character boundary.
    text.insert(0, "Hello 🌙 world, ünïcödé")
    text.format(0, 5, {"bold": True, "link": {"href": "https://example.com"}})
    text.insert_embed(6, {"image": "a.png", "size": [10, 20]})
    text.insert(3, "x", {"italic": True})
    del text[1:4]
    text.format(2, 4, {"bold": None})
    text += " 🌙🌙"
    with doc.transaction():
        del text[0:1]
        text.insert(0, "é")


def _map(doc: pycrdt.Doc) -> None:
    root = doc.get("m", type=pycrdt.Map)
    with doc.transaction():
        for i, value in enumerate(ANY_VALUES):
            root[f"k{i}"] = value
    root["k0"] = "overwritten"
    del root["k1"]


def _array(doc: pycrdt.Doc) -> None:
    array = doc.get("a", type=pycrdt.Array)
    array.extend(ANY_VALUES)
    del array[3:8]
    array.insert(2, "between")


def _nested(doc: pycrdt.Doc) -> None:
    root = doc.get("root", type=pycrdt.Map)
    root["inner"] = pycrdt.Map({"list": pycrdt.Array([pycrdt.Text("nested"), pycrdt.Map()])})
    root["inner"]["list"][0].insert(0, ">> ")
    root["temp"] = pycrdt.Map({"a": pycrdt.Array([1, 2])})
    del root["temp"]


def _xml(doc: pycrdt.Doc) -> None:
    frag = doc.get("prosemirror", type=pycrdt.XmlFragment)
    paragraph = frag.children.append(pycrdt.XmlElement("paragraph", {"class": "lead"}))
    text = paragraph.children.append(pycrdt.XmlText("xml text"))
    text.format(0, 3, {"bold": True})
    quote = frag.children.append(pycrdt.XmlElement("blockquote"))
    quote.children.append(pycrdt.XmlElement("paragraph"))
    del text[0:4]


def _subdocs(doc: pycrdt.Doc) -> None:
    docs = doc.get("docs", type=pycrdt.Map)
    docs["a"] = pycrdt.Doc()
    docs["b"] = pycrdt.Doc()
    doc.get("list", type=pycrdt.Array).append(pycrdt.Doc())
    del docs["a"]


def _concurrent() -> list[Sample]:
    """Two replicas editing one text; merges with a gap (a Skip) and remote deletions."""
    a, b = pycrdt.Doc(client_id=301), pycrdt.Doc(client_id=302)
    ups: list[bytes] = []
    a.observe(lambda event: ups.append(event.update))
    ta, tb = a.get("t", type=pycrdt.Text), b.get("t", type=pycrdt.Text)
    for word in ("one ", "two ", "three "):
        ta += word
    b.apply_update(a.get_update())
    before = b.get_state()
    del tb[0:4]
    tb.insert(0, "zero ")
    remote = b.get_update(before)
    a.apply_update(remote)
    roots = {"t": "Text"}
    return [
        Sample("merged_skip", pycrdt.merge_updates(ups[0], ups[2]), roots),
        Sample("merged_all", pycrdt.merge_updates(*ups, remote), roots),
        Sample("remote_delete", remote, roots),
        Sample("both_state", a.get_update(), roots),
        Sample("empty", pycrdt.Doc().get_update(), {}),
    ]


def _no_gc() -> list[Sample]:
    doc = pycrdt.Doc(client_id=303, skip_gc=True)
    text = doc.get("t", type=pycrdt.Text)
    text += "abcdef"
    del text[1:4]
    doc.get("a", type=pycrdt.Array).append(pycrdt.Map({"x": pycrdt.Text("gone")}))
    del doc.get("a", type=pycrdt.Array)[0]
    return [Sample("no_gc_state", doc.get_update(), {"t": "Text", "a": "Array"})]


@cache
def pycrdt_samples() -> tuple[Sample, ...]:
    """Updates pycrdt writes: text, maps, arrays, nesting, XML, subdocs, merges."""
    samples = []
    samples += _recorded(_text, "text", {"t": "Text"}, 201)
    samples += _recorded(_map, "map", {"m": "Map"}, 202)
    samples += _recorded(_array, "array", {"a": "Array"}, 203)
    samples += _recorded(_nested, "nested", {"root": "Map"}, 204)
    samples += _recorded(_xml, "xml", {"prosemirror": "XmlFragment"}, 205)
    samples += _recorded(_subdocs, "subdoc", {"docs": "Map", "list": "Array"}, 206)
    samples += _concurrent()
    samples += _no_gc()
    return tuple(samples)


def _node() -> str:
    """The node executable; fails (never skips) without it or the pinned yjs package."""
    node = shutil.which("node")
    if node is None or not (INTEROP / "node_modules" / "yjs").is_dir():
        problem = "node is not on PATH" if node is None else "the yjs package is not installed"
        pytest.fail(
            f"{problem}: these tests need Node.js 20+ and `npm ci --prefix tests/interop`",
            pytrace=False,
        )
    return node


@cache
def yjs_samples() -> tuple[Sample, ...]:
    """Updates stock yjs writes (``update_corpus.mjs``)."""
    done = subprocess.run(
        [_node(), str(YJS_WRITER)], cwd=INTEROP, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    samples = []
    earlier: dict[str, list[bytes]] = {}  # "map" -> the updates of map_0, map_1, ... so far
    for line in done.stdout.splitlines():
        entry = json.loads(line)
        update = base64.b64decode(entry["update"])
        group, _, step = entry["label"].rpartition("_")
        before = b""
        if step.isdigit():  # the steps of one document, in order
            before = _merged(earlier.setdefault(group, []))
            earlier[group].append(update)
        samples.append(
            Sample("yjs_" + entry["label"], update, entry["roots"], entry["valid"], before)
        )
    return tuple(samples)


def yjs_inspect(updates: Sequence[bytes]) -> list[dict[str, Any]]:
    """How stock yjs reads each update (``update_inspect.mjs``): clients' clock ranges, state
    vector and delete set with int keys, or ``{"ok": False, "error": ...}``."""
    stdin = "".join(base64.b64encode(u).decode() + "\n" for u in updates)
    done = subprocess.run(
        [_node(), str(YJS_INSPECTOR)],
        cwd=INTEROP,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(answers) == len(updates), done.stderr
    for answer in answers:
        if answer["ok"]:
            answer["clients"] = {int(c): tuple(r) for c, r in answer["clients"].items()}
            answer["sv"] = {int(c): clock for c, clock in answer["sv"].items()}
            answer["ds"] = {int(c): [tuple(r) for r in rs] for c, rs in answer["ds"].items()}
    return answers
