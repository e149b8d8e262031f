"""The SQLite write path's hand-over from its thread: outcomes, a stuck thread, a caller gone."""

from __future__ import annotations

import asyncio
import threading

import pytest

from storage.sqlite_appender import SqliteAppender
from storage.store import DocKey, StoreUnavailable

pytestmark = pytest.mark.anyio


@pytest.fixture
def appender(tmp_path):
    app = SqliteAppender(str(tmp_path / "a.db"), synchronous="FULL", busy_ms=50, timeout=0.05)
    yield app
    app.close()


def _loop_errors() -> list[dict[str, object]]:
    errors: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    return errors


async def test_the_threads_result_and_its_error_reach_the_caller(appender, monkeypatch):
    key = DocKey("t", "alice/doc")
    monkeypatch.setattr(SqliteAppender, "_append", lambda self, *a: {key: [7, 8]})
    assert await appender.append({}, {}, 0.0) == {key: [7, 8]}

    def broken(self, *a):
        raise StoreUnavailable("OperationalError: disk I/O error")

    monkeypatch.setattr(SqliteAppender, "_append", broken)
    with pytest.raises(StoreUnavailable, match="disk I/O"):
        await appender.append({}, {}, 0.0)


async def test_a_real_sqlite_failure_is_store_unavailable(appender):
    # No schema in this file: the first statement fails inside the transaction.
    with pytest.raises(StoreUnavailable, match="no such table"):
        await appender.append({}, {}, 0.0)


async def test_a_stuck_thread_fails_the_append_and_its_late_end_is_harmless(appender, monkeypatch):
    errors = _loop_errors()
    release, ended = threading.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def stuck(self, *a):
        release.wait(10)
        loop.call_soon_threadsafe(ended.set)
        return {}

    monkeypatch.setattr(SqliteAppender, "_append", stuck)
    with pytest.raises(StoreUnavailable, match=r"stuck for 1\.1s"):
        await appender.append({}, {}, 0.0)  # deadline: 2 x 0.05 + 1 s
    release.set()
    await ended.wait()
    await asyncio.sleep(0)  # the hand-over's callback, queued after ended.set, runs
    assert errors == []


async def test_a_cancelled_caller_leaves_the_transaction_to_finish(appender, monkeypatch):
    errors = _loop_errors()
    started, release = threading.Event(), threading.Event()
    finished = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow(self, *a):
        started.set()
        release.wait(10)
        loop.call_soon_threadsafe(finished.set)
        return {}

    monkeypatch.setattr(SqliteAppender, "_append", slow)
    task = asyncio.create_task(appender.append({}, {}, 0.0))
    await asyncio.to_thread(started.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    await finished.wait()
    await asyncio.sleep(0)
    assert errors == []
