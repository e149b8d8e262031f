"""One-off probes: a fresh client connects, syncs, and reports its timings and content."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from stats import Stats
from yclient import ClientClosed, ClientSpec, YClient
from yprotocol import doc_digest


@dataclass
class FetchResult:
    url: str
    ok: bool
    error: str = ""
    open_ms: float = 0.0  # connect start -> WebSocket open
    step2_ms: float = 0.0  # connect start -> step 2 frame received
    synced_ms: float = 0.0  # connect start -> step 2 applied (the client is synced)
    step2_bytes: int = 0
    got_server_step1: bool = False
    digest: str = ""
    json_bytes: int = 0
    marker_seqs: dict[str, int] = field(default_factory=dict)


async def fetch(url: str, timeout: float, cid: int = 10**6) -> FetchResult:
    """Connect a fresh client, sync, and report its timings and the document's digest."""
    stats = Stats()
    client = YClient(ClientSpec(cid, "probe", url), stats)
    try:
        await client.open(timeout)
    except (ClientClosed, TimeoutError, OSError) as exc:
        client.close()
        detail = f"{type(exc).__name__}: {exc}"
        if client.auth_denied:
            detail += f" (auth: {client.auth_denied!r})"
        if client.close_code:
            detail += f" (close code {client.close_code})"
        return FetchResult(url, False, error=detail)
    # A server step 1 may arrive right after step 2: give it a moment, bounded.
    for _ in range(20):
        if client.got_server_step1:
            break
        await asyncio.sleep(0.01)
    body = client.doc_json()
    markers = {
        key: int(value.partition(":")[0])
        for key, value in client.bench.to_py().items()
        if isinstance(value, str)
    }
    result = FetchResult(
        url,
        True,
        open_ms=(client.t_open_ns - client.t_start_ns) / 1e6,
        step2_ms=(client.t_step2_ns - client.t_start_ns) / 1e6,
        synced_ms=(client.t_synced_ns - client.t_start_ns) / 1e6,
        step2_bytes=client.step2_bytes,
        got_server_step1=client.got_server_step1,
        digest=doc_digest(body),
        json_bytes=len(body),
        marker_seqs=markers,
    )
    if stats.deviations:
        result.error = f"deviations: {dict(stats.deviations)}"
    client.close()
    await client.wait_closed(2.0)
    return result


async def fetch_many(urls: list[str], timeout: float, concurrency: int = 32) -> list[FetchResult]:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int, url: str) -> FetchResult:
        async with sem:
            return await fetch(url, timeout, cid=10**6 + i)

    return list(await asyncio.gather(*(one(i, u) for i, u in enumerate(urls))))
