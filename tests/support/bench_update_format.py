"""How fast the strict decoder is, next to yrs decoding the same bytes (``pycrdt.get_state``).

Run: ``.venv/bin/python -m tests.support.bench_update_format`` (a few seconds). Prints µs per
small update (a keystroke, a canvas stroke point) and MB/s on whole document states of a few
MiB: a long text, a canvas of many strokes, a map of many small values.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pycrdt

from crdt.update_format import decode_update


def _best(fn: Callable[[], object], repeat: int) -> float:
    """Best of five runs of ``repeat`` calls, in seconds per call."""
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        times.append((time.perf_counter() - start) / repeat)
    return min(times)


def _keystroke() -> bytes:
    doc = pycrdt.Doc()
    text = doc.get("t", type=pycrdt.Text)
    text += "Hello wor"
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(e.update))
    text += "l"
    return updates[-1]


def _stroke_point() -> bytes:
    doc = pycrdt.Doc()
    elements = doc.get("elements", type=pycrdt.Map)
    elements["stroke-1"] = pycrdt.Map({"kind": "stroke", "points": pycrdt.Array([1.5, 2.5, 0.5])})
    points = elements["stroke-1"]["points"]
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(e.update))
    points.extend([10.25, 20.75, 0.6])
    return updates[-1]


def _long_text(mib: float) -> bytes:
    doc = pycrdt.Doc(skip_gc=True)
    text = doc.get("t", type=pycrdt.Text)
    line = "Dreams of the moon 🌙 and of ünïcödé seas. "
    # Many small inserts at different places: a realistic struct count, not one long string.
    while len(doc.get_update()) < mib * 2**20:
        with doc.transaction():
            for i in range(200):
                current = str(text)
                at = len(current[: i * 37 % (len(current) + 1)].encode())  # a character boundary
                text.insert(at, line[i % 20 :])
    return doc.get_update()


def _canvas(mib: float) -> bytes:
    doc = pycrdt.Doc()
    elements = doc.get("elements", type=pycrdt.Map)
    n = 0
    while len(doc.get_update()) < mib * 2**20:
        with doc.transaction():
            for _ in range(200):
                points = pycrdt.Array()
                elements[f"stroke-{n}"] = pycrdt.Map(
                    {"kind": "stroke", "x": n * 1.5, "y": 2.0, "color": "#112233", "points": points}
                )
                for j in range(10):  # one push per point, as a pen does
                    points.extend([n + j * 0.5, j * 0.25, 0.5])
                n += 1
    return doc.get_update()


def _map_values(mib: float) -> bytes:
    doc = pycrdt.Doc()
    root = doc.get("m", type=pycrdt.Map)
    n = 0
    while len(doc.get_update()) < mib * 2**20:
        with doc.transaction():
            for _ in range(2000):
                root[f"key-{n}"] = {"n": n, "tags": ["a", "b"], "ok": True, "t": f"value {n}"}
                n += 1
    return doc.get_update()


def main() -> None:
    for name, u in (("keystroke", _keystroke()), ("stroke point", _stroke_point())):
        ours = _best(lambda u=u: decode_update(u), 20_000)
        yrs = _best(lambda u=u: pycrdt.get_state(u), 20_000)
        print(f"{name:14} {len(u):5} B  decoder {ours * 1e6:6.1f} µs  get_state {yrs * 1e6:.1f} µs")
    documents = (("long text", _long_text), ("canvas", _canvas), ("map values", _map_values))
    for name, build in documents:
        u = build(3)
        shape = decode_update(u)
        ours = _best(lambda u=u: decode_update(u), 3)
        yrs = _best(lambda u=u: pycrdt.get_state(u), 3)
        mb = len(u) / 1e6
        print(
            f"{name:14} {len(u) / 2**20:4.1f} MiB {shape.struct_count:7} structs  "
            f"decoder {mb / ours:5.1f} MB/s ({ours * 1e3:5.0f} ms)   "
            f"get_state {mb / yrs:6.1f} MB/s"
        )


if __name__ == "__main__":
    main()
