"""The daemon's garbage-collector policy (syncd/server.py ``tune_garbage_collector``)."""

from __future__ import annotations

import json
import subprocess
import sys

from syncd.server import GC_THRESHOLDS


def test_start_up_objects_are_frozen_and_thresholds_raised() -> None:
    # In a process of its own: freezing would change this test process's collector.
    probe = (
        "import gc, json; from syncd.server import tune_garbage_collector;"
        "before = gc.get_freeze_count(); tune_garbage_collector();"
        "print(json.dumps([before, gc.get_freeze_count(), gc.get_threshold()]))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True, text=True)
    before, frozen, thresholds = json.loads(out.stdout)
    assert before == 0 and frozen > 10_000  # the imported modules' objects, at least
    assert tuple(thresholds) == GC_THRESHOLDS != (700, 10, 10)
