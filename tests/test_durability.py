"""Restart and SIGKILL: what anyone has seen survives (DESIGN.md §2, durability)."""

from __future__ import annotations

import asyncio
import contextlib

import pycrdt
import pytest

from tests.support.servers import DaemonProcess
from tests.support.yclient import YClient

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def _mint(sub: str) -> str:
    from syncd.tokens import TokenKeys
    from tests.support.servers import SECRET

    return TokenKeys(secret=SECRET).mint(sub)


def _state(doc: pycrdt.Doc) -> dict:
    return {
        "m": doc.get("m", type=pycrdt.Map).to_py(),
        "t": str(doc.get("t", type=pycrdt.Text)),
        "a": doc.get("a", type=pycrdt.Array).to_py(),
    }


async def test_restart_serves_the_same_document(tmp_path, database_url):
    proc = DaemonProcess(tmp_path / "data", database_url).start()
    token = _mint("alice")
    url = proc.ws_url("alice/restart", token)
    try:
        async with YClient(url) as a, YClient(url) as b:
            with a.doc.transaction():
                a.doc.get("m", type=pycrdt.Map)["k"] = "v"
                a.doc.get("a", type=pycrdt.Array).extend([1, 2, 3])
            text = b.doc.get("t", type=pycrdt.Text)
            text += "héllo wörld"
            want = {"m": {"k": "v"}, "t": "héllo wörld", "a": [1.0, 2.0, 3.0]}
            await a.wait_until(lambda: _state(a.doc) == want)
            await b.wait_until(lambda: _state(b.doc) == want)
            before = _state(a.doc)
        assert proc.terminate() in (0, -15)
        proc.start()
        async with YClient(url) as fresh:
            assert _state(fresh.doc) == before
    finally:
        with contextlib.suppress(Exception):
            proc.terminate()


async def test_sigkill_loses_nothing_anyone_saw(tmp_path, database_url):
    proc = DaemonProcess(tmp_path / "data", database_url).start()
    token = _mint("alice")
    url = proc.ws_url("alice/stream", token)
    observed: set[int] = set()
    try:
        writer = await YClient(url).connect()
        observer = await YClient(url).connect()
        numbers = observer.doc.get("n", type=pycrdt.Array)
        numbers.observe(lambda e: observed.update(int(x) for x in numbers.to_py()))
        seq = writer.doc.get("n", type=pycrdt.Array)

        async def stream() -> None:
            i = 0
            while not writer.closed.is_set() and i < 100_000:
                seq.append(i)
                i += 1
                await asyncio.sleep(0)  # one update per loop turn, so they are sent separately

        streaming = asyncio.create_task(stream())
        await observer.wait_until(lambda: len(observed) >= 300, timeout=30)
        proc.kill()  # SIGKILL mid-stream
        await observer.wait(observer.closed, 10)
        streaming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await streaming
        seen = set(observed)
        await writer.close()
        await observer.close()

        proc.start()
        async with YClient(url) as fresh:
            stored = {int(x) for x in fresh.doc.get("n", type=pycrdt.Array).to_py()}
        assert len(seen) >= 300
        missing = seen - stored
        assert not missing, f"{len(missing)} updates seen before the kill were lost"
    finally:
        with contextlib.suppress(Exception):
            proc.terminate()


async def test_sigterm_closes_peers_with_1001(tmp_path):
    proc = DaemonProcess(tmp_path / "data", None).start()
    url = proc.ws_url("alice/bye", _mint("alice"))
    client = await YClient(url).connect()
    client.doc.get("m", type=pycrdt.Map)["last"] = "edit"
    other = await YClient(url).connect()
    await other.wait_until(lambda: other.doc.get("m", type=pycrdt.Map).get("last") == "edit")
    loop = asyncio.get_running_loop()
    code = await loop.run_in_executor(None, proc.terminate)
    await client.wait(client.closed)
    assert client.close_code == 1001
    assert code in (0, -15)
    await client.close()
    await other.close()


async def test_tokens_never_reach_the_log(tmp_path):
    # At debug, uvicorn's line per socket opened (with its ?token=) is written.
    proc = DaemonProcess(tmp_path / "data", None, env={"SYNCD_LOG_LEVEL": "debug"}).start()
    token = _mint("alice")
    try:
        async with YClient(proc.ws_url("alice/logged", token)):
            pass
    finally:
        proc.terminate()
    log = proc.log_path.read_text()
    assert "/v1/docs/alice/logged" in log  # the connection was logged...
    assert token not in log and token.split(".")[2] not in log  # ...without its token


async def test_a_socket_opened_writes_no_log_line_at_info(tmp_path):
    proc = DaemonProcess(tmp_path / "data", None).start()
    try:
        async with YClient(proc.ws_url("alice/quiet", _mint("alice"))):
            pass
    finally:
        proc.terminate()
    assert "alice/quiet" not in proc.log_path.read_text()
