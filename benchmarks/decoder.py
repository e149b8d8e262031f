"""Time the strict update decoder (``crdt.update_format.decode_update``) per update kind.

The updates are built with pycrdt the way the load generator's replicas make them
(``benchmarks/node/yclient.mjs``): R1's text append, R3's pen stroke (a Y.Map with a Y.Array of
48 flat numbers, a bench key), a few-KiB paste, and a sync step 2 of 100 merged updates.

Run: ``.venv/bin/python benchmarks/decoder.py [--runs 7] [--profile]``. Prints best and median
µs per decode over ``--runs`` runs; ``--profile`` runs cProfile over the stroke and the merged
step 2 and prints the top functions by tottime.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import sys
import time
from pathlib import Path

import pycrdt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crdt.update_format import decode_update


def _capture(doc: pycrdt.Doc, edit) -> bytes:
    updates: list[bytes] = []
    sub = doc.observe(lambda e: updates.append(e.update))
    edit()
    doc.unobserve(sub)
    return updates[-1]


def _text_edit(rng: random.Random) -> bytes:
    doc = pycrdt.Doc(client_id=2_873_104_211)  # fixed: a random id changes the byte count
    body = doc.get("body", type=pycrdt.Text)
    bench = doc.get("bench", type=pycrdt.Map)
    body += "w1.0 w1.1 w1.2 "

    def edit() -> None:
        with doc.transaction():
            body.insert(len(body), "w1.3 ")
            bench["w1"] = f"3:{rng.getrandbits(40)}"

    return _capture(doc, edit)


def _stroke(rng: random.Random) -> bytes:
    doc = pycrdt.Doc(client_id=2_873_104_211)  # fixed: a random id changes the byte count
    elements = doc.get("elements", type=pycrdt.Map)
    bench = doc.get("bench", type=pycrdt.Map)

    def edit() -> None:
        with doc.transaction():
            flat: list[float] = []
            x, y = rng.random() * 2000, rng.random() * 2000
            for _ in range(16):
                x += rng.random() * 8
                y += rng.random() * 8
                flat += [round(x * 10) / 10, round(y * 10) / 10, 0.5]
            stroke = pycrdt.Map(
                {
                    "kind": "stroke",
                    "x": flat[0],
                    "y": flat[1],
                    "w": 0,
                    "h": 0,
                    "rotation": 0,
                    "z": 7,
                    "color": "#073b4c",
                    "author": "w1",
                    "width": 2,
                    "points": pycrdt.Array(flat),
                }
            )
            elements["w1-7"] = stroke
            bench["w1"] = f"7:{rng.getrandbits(40)}"

    return _capture(doc, edit)


def _paste(rng: random.Random) -> bytes:
    doc = pycrdt.Doc(client_id=2_873_104_211)  # fixed: a random id changes the byte count
    body = doc.get("body", type=pycrdt.Text)
    body += "Before. "
    words = ["sync", "offline", "journal", "canvas", "über", "naïve", "moon 🌙", "déjà vu"]
    paste = " ".join(rng.choice(words) for _ in range(600))[:4000]

    def edit() -> None:
        body.insert(4, paste)

    return _capture(doc, edit)


def _merged_step2(rng: random.Random) -> bytes:
    doc = pycrdt.Doc(client_id=2_873_104_211)  # fixed: a random id changes the byte count
    body = doc.get("body", type=pycrdt.Text)
    elements = doc.get("elements", type=pycrdt.Map)
    updates: list[bytes] = []
    sub = doc.observe(lambda e: updates.append(e.update))
    for i in range(100):
        if i % 2:
            body.insert(rng.randrange(len(body) + 1), f"w{i} ")
        else:
            elements[f"s{i}"] = pycrdt.Map(
                {"kind": "stroke", "points": pycrdt.Array([i, 1.5, 0.5])}
            )
    doc.unobserve(sub)
    return pycrdt.merge_updates(*updates)


KINDS = {
    "text edit (R1)": _text_edit,
    "stroke (R3)": _stroke,
    "paste 4 KiB": _paste,
    "step 2, 100 merged": _merged_step2,
}


def _per_call(update: bytes, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        decode_update(update)
    return (time.perf_counter() - start) / repeat * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    rng = random.Random(10)
    updates = {name: make(rng) for name, make in KINDS.items()}
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(3000):
            decode_update(updates["stroke (R3)"])
        for _ in range(300):
            decode_update(updates["step 2, 100 merged"])
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
        return
    print(f"{'update':<22}{'bytes':>7}{'best µs':>10}{'median µs':>11}")
    for name, update in updates.items():
        decode_update(update)
        # About 50 ms per run whatever the size.
        once = _per_call(update, 20)
        repeat = max(20, int(50_000 / max(once, 1)))
        times = [_per_call(update, repeat) for _ in range(args.runs)]
        print(f"{name:<22}{len(update):>7}{min(times):>10.2f}{statistics.median(times):>11.2f}")


if __name__ == "__main__":
    main()
