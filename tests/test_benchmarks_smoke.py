"""The benchmark harness still measures: its Node load generator of Yjs replicas against a real
Hocuspocus 4 (Hocuspocus framing) and a real syncd (y-websocket framing), at a tiny size.

Needs the pinned packages of ``benchmarks/node`` (``npm ci --prefix benchmarks/node``); fails,
never skips, without them. A few seconds: one second of writing per server.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

from measure import Context as BenchContext  # noqa: E402
from measure import (  # noqa: E402
    build_specs,
    check_convergence,
    connect_all,
    measure_step,
    new_loadgen,
    open_by_doc,
)
from report import render  # noqa: E402
from servers import PEER_URL, POSTGRES_URL, SYNCD_URL, make_server, node_ready  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def node_packages() -> None:
    ok, why = node_ready()
    if not ok:
        pytest.fail(f"the benchmark smoke test needs Node.js 20+ and benchmarks/node: {why}")


def _args() -> argparse.Namespace:
    return argparse.Namespace(
        syncd_cmd=None, syncd_url=SYNCD_URL, peer_url=PEER_URL, peer_ws="auto",
        postgres_url=POSTGRES_URL,
    )  # fmt: skip


@pytest.fixture(params=["hocuspocus", "syncd"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator:
    srv = make_server(request.param, tmp_path, _args())
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
        srv.cleanup()


def test_every_update_reaches_every_replica_and_they_converge(server, tmp_path: Path) -> None:
    ctx = BenchContext(True, 1.0, 2, 100, 10, tmp_path, False)
    docs = ["doc-1", "doc-2"]
    specs = build_specs(server, docs, per_doc=3, writers_per_doc=2)
    lg = new_loadgen(ctx, len(specs))
    try:
        conn = connect_all(lg, specs, ctx)
        assert conn["connected"] == len(specs), conn["failed"]
        assert conn["no_server_step1"] == 0
        step = measure_step(
            lg, server, rate=10, duration=1.0, kind="stroke", prev_seq={},
            clients_by_doc=open_by_doc(lg), quiesce_timeout=10,
        )  # fmt: skip
        converged, ok = check_convergence(lg, server, docs)
    finally:
        lg.shutdown()
    assert step.sent >= 4 * 5  # 4 writers, about 10 strokes each in 1 s
    # every update of a writer reaches the two other replicas of its document
    assert step.expected == 2 * step.sent
    assert step.delivered == step.expected
    assert step.missing == 0 and step.incomplete == 0
    assert len(step.latencies) + step.merged == step.delivered
    assert not step.deviations and not step.closes, (step.deviations, step.closes)
    assert ok, converged
    results = {
        "meta": {"date": "now", "commit": "x", "quick": True, "duration": 1.0, "workers": 2,
                 "machine": {"cpu": "", "memory": "", "os": "", "python": "", "packages": ""}},
        "servers": [server.name], "labels": {server.name: server.label}, "skipped": {},
        "scenarios": [{"key": "k", "number": 1, "title": "R0", "servers": {server.name: {
            "_summary": {"": f"{step.p95:.1f} ms"}, "converged": converged}}}],
    }  # fmt: skip
    table = render(results)
    assert f"| scenario (p95 unless said) | {server.label} |" in table
    assert f"| R0 | {step.p95:.1f} ms |" in table
