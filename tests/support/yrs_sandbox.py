"""Feeding updates to pycrdt in a child process, so that a crash of yrs is a finding, not a
dead test run.

One long-lived child (``yrs_child.py``) applies the updates it is sent in batches and answers
each batch with its outcome counts; a child that dies (SIGSEGV, abort) or stops answering is
noticed, and the batch is replayed one update per fresh child to name the bytes that did it.
"""

from __future__ import annotations

import contextlib
import json
import select
import struct
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from crdt.protocol import write_var_uint
from tests.support.update_corpus import Sample

CHILD = Path(__file__).with_name("yrs_child.py")
BATCH = 500
# A batch of 500 small updates takes the child well under a second; yrs looping forever on
# one is what this bound is for, with a wide margin for a loaded 2-core machine.
BATCH_TIMEOUT = 60.0
PROBE_TIMEOUT = 10.0


def encode_state_vector(sv: dict[int, int]) -> bytes:
    parts = [write_var_uint(len(sv))]
    for client in sorted(sv):
        parts.append(write_var_uint(client) + write_var_uint(sv[client]))
    return b"".join(parts)


@dataclass
class Crash:
    update: bytes
    returncode: int | None  # -11 SIGSEGV, -6 abort, -9 killed for not answering (a hang)
    stderr: str


@dataclass
class Report:
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[bytes]] = field(default_factory=dict)
    crashes: list[Crash] = field(default_factory=list)

    def describe(self) -> str:
        lines = [f"outcomes: {dict(self.counts)}"]
        for outcome, found in self.examples.items():
            lines += [f"{outcome}: {u.hex()}" for u in found[:5]]
        for crash in self.crashes:
            lines.append(f"crash (rc {crash.returncode}): {crash.update.hex()}")
            lines.append(crash.stderr[-2000:])
        return "\n".join(lines)


class _Child:
    def __init__(self, seeds: Sequence[Sample]) -> None:
        # A file, not a pipe: yrs prints every panic there, and a full pipe would block it.
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
        )
        for seed in seeds:
            entry = json.dumps({"update": seed.before.hex(), "roots": seed.roots}).encode()
            self._send(b"S", entry)

    def _send(self, kind: bytes, payload: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(kind + struct.pack(">I", len(payload)) + payload)

    def _write(self, frames: bytes) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):  # the child died, or was killed for hanging
            self.proc.stdin.write(frames)
            self.proc.stdin.flush()

    def run(
        self, batch: Sequence[tuple[int, bytes, bytes]], timeout: float = BATCH_TIMEOUT
    ) -> dict | None:
        """Send a batch of (seed, state vector, update); its outcome counts, or None if the
        child died or hung on it."""
        assert self.proc.stdout is not None
        frames = [
            b"U" + struct.pack(">III", 8 + len(sv) + len(update), seed, len(sv)) + sv + update
            for seed, sv, update in batch
        ]
        frames.append(b"E" + struct.pack(">I", 0))
        # A thread writes, so that a child that stops reading (it hangs) cannot block us.
        writer = threading.Thread(target=self._write, args=(b"".join(frames),), daemon=True)
        writer.start()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.proc.kill()
        writer.join()
        return json.loads(line) if line else None

    def stop(self) -> tuple[int | None, str]:
        """End the child; its return code (None if it had to be killed) and stderr."""
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # end of input: a live child exits
        try:
            returncode: int | None = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # it hangs
            self.proc.kill()
            self.proc.wait()
            returncode = None
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.stderr.seek(0)
        text = self.stderr.read().decode(errors="replace")
        self.stderr.close()
        return returncode, text


def run_in_child(
    seeds: Sequence[Sample], updates: Iterable[tuple[int, dict[int, int], bytes]]
) -> Report:
    """Apply each ``(sample index, expected state vector, update)`` in a child, on a fresh
    document and on the one the sample was made on (``Sample.before``); report outcomes."""
    report = Report()
    items = [(seed, encode_state_vector(sv), update) for seed, sv, update in updates]
    child = _Child(seeds)
    try:
        for start in range(0, len(items), BATCH):
            batch = items[start : start + BATCH]
            answer = child.run(batch)
            if answer is None:
                child.stop()
                report.crashes.append(_find_culprit(seeds, batch))
                child = _Child(seeds)
                continue
            report.counts.update(answer["counts"])
            for outcome, found in answer["examples"].items():
                report.examples.setdefault(outcome, []).extend(bytes.fromhex(h) for h in found)
    finally:
        child.stop()
    return report


def _find_culprit(seeds: Sequence[Sample], batch: Sequence[tuple[int, bytes, bytes]]) -> Crash:
    """Halve the batch, each half in a fresh child, until one update is left that kills it."""
    while len(batch) > 1:
        half = batch[: len(batch) // 2]
        if _crash(seeds, half) is None:
            half = batch[len(batch) // 2 :]
            if _crash(seeds, half) is None:
                return Crash(b"", None, "the batch killed the child, but neither half of it did")
        batch = half
    crash = _crash(seeds, batch)
    return crash or Crash(batch[0][2], None, "killed the child once, but not again")


def _crash(seeds: Sequence[Sample], batch: Sequence[tuple[int, bytes, bytes]]) -> Crash | None:
    child = _Child(seeds)
    # Small batches take milliseconds: a hang is told apart sooner.
    answer = child.run(batch, timeout=BATCH_TIMEOUT if len(batch) > 20 else PROBE_TIMEOUT)
    returncode, stderr = child.stop()
    if answer is not None:
        return None
    return Crash(batch[0][2], returncode, f"seed {seeds[batch[0][0]].label}: {stderr}")
