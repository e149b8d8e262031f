"""The daemon's ingest path under fuzzing: mutated real updates sent over HTTP and WebSockets to
a daemon in a subprocess (a crash shows as a dead process). Every answer is "stored" or "bad
request"; the daemon stays up, and every document it touched still loads after a restart."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest

from crdt.protocol import SyncStep, encode_sync
from syncd.tokens import TokenKeys
from tests.support.servers import SECRET, DaemonProcess
from tests.support.update_corpus import pycrdt_samples
from tests.support.update_mutations import mutate
from tests.support.yclient import YClient

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

KEYS = TokenKeys(secret=SECRET)
ALICE = KEYS.mint("alice")
HTTP_CASES = 1_200
SOCKET_CASES = 100
PER_DOCUMENT = 100  # a rejected update may cost a rebuild of its document: keep them small


async def test_mutated_updates_never_crash_the_daemon(tmp_path: Path):
    rng = random.Random(8)
    seeds = [s.update for s in pycrdt_samples() if s.valid]
    daemon = DaemonProcess(tmp_path / "data", None).start()
    statuses: dict[int, int] = {}
    docs: set[str] = set()
    try:
        auth = {"authorization": f"Bearer {ALICE}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.port}") as http:
            for n in range(HTTP_CASES):
                doc = f"alice/fuzz-{n // PER_DOCUMENT}"
                docs.add(doc)
                update = mutate(rng, rng.choice(seeds), seeds)
                r = await http.post(f"/v1/docs/{doc}/updates", content=update, headers=auth)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                assert r.status_code in (200, 400), (r.status_code, r.text, update.hex())
            for n in range(SOCKET_CASES):
                doc = f"alice/fuzz-ws-{n // PER_DOCUMENT}"
                docs.add(doc)
                update = mutate(rng, rng.choice(seeds), seeds)
                async with YClient(daemon.ws_url(doc, ALICE)) as client:
                    seen = len(client.received_updates)
                    await client.send_raw(encode_sync(SyncStep.UPDATE, update))
                    # A step 1 after it: answered only if the update did not cost the socket.
                    await client.send_raw(encode_sync(SyncStep.STEP1, b"\x00"))
                    await client.wait_until(
                        lambda c=client, k=seen: c.closed.is_set() or len(c.received_updates) > k
                    )
                    assert client.close_code in (None, 4400), client.close_code
            assert daemon.proc is not None and daemon.proc.poll() is None
            assert (await http.get("/healthz")).status_code == 200
        # Both kinds of answer happened: the corpus exercises acceptance and refusal.
        assert statuses.get(200, 0) > 0 and statuses.get(400, 0) > 0, statuses

        daemon.terminate()
        daemon.start()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.port}") as http:
            for doc in sorted(docs):
                r = await http.get(f"/v1/docs/{doc}/state", headers=auth)
                assert r.status_code in (200, 404), (doc, r.status_code)
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.terminate()
