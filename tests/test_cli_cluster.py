"""``syncd serve --redis-url``: a node of a cluster needs the database every node shares
(DESIGN.md §1.9), so Redis with SQLite is refused at start, in one line, with exit code 2."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.redis_server import (  # noqa: F401 - fixtures
    redis_server_fixture,
    redis_url_fixture,
)
from tests.support.servers import SECRET, DaemonProcess

SHARED_DATABASE = "needs a database shared by every node, and SQLite is one node's file"


def serve(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``syncd serve`` as an operator runs it, with nothing but PATH and a good secret around."""
    return subprocess.run(
        [sys.executable, "-m", "syncd", "serve", "--port", "0", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SYNCD_SECRET": SECRET, **(env or {})},
    )


def assert_refused(out: subprocess.CompletedProcess, reason: str, data_dir: Path) -> None:
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.startswith("syncd serve: --redis-url (SYNCD_REDIS_URL) ")
    assert reason in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert not data_dir.exists()  # refused before the data dir or a database was touched


@pytest.mark.parametrize(
    ("args", "env"),
    [
        pytest.param(["--redis-url", "redis://127.0.0.1:6390/0"], {}, id="default-sqlite"),
        pytest.param(
            ["--redis-url", "redis://127.0.0.1:6390/0", "--database-url", "sqlite:///x.db"],
            {},
            id="sqlite-url",
        ),
        pytest.param([], {"SYNCD_REDIS_URL": "redis://127.0.0.1:6390/0"}, id="environment"),
        pytest.param(
            ["--redis-url", "redis://127.0.0.1:6390/0"],
            {"SYNCD_DATABASE_URL": "sqlite:///x.db"},
            id="sqlite-environment",
        ),
    ],
)
def test_redis_with_sqlite_is_refused(tmp_path, args, env):
    data_dir = tmp_path / "data"
    assert_refused(serve(data_dir, *args, env=env), SHARED_DATABASE, data_dir)


def test_a_redis_url_that_is_not_one_is_refused_without_echoing_it(tmp_path):
    data_dir = tmp_path / "data"
    out = serve(
        data_dir,
        "--database-url",
        "postgresql://postgres@127.0.0.1:5432/test",
        "--redis-url",
        "user:hunter2-password@127.0.0.1:6379",  # the scheme forgotten
    )
    assert_refused(out, "is not a Redis URL: use redis://HOST:PORT/DB", data_dir)
    assert "hunter2" not in out.stderr


def health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
        assert r.status == 200
        return json.load(r)


@pytest.mark.postgres
def test_redis_with_postgres_serves_reaches_redis_and_stops_cleanly(
    tmp_path, postgres_url, redis_url, monkeypatch
):
    monkeypatch.setenv("SYNCD_REDIS_URL", redis_url)
    node = DaemonProcess(tmp_path / "node", postgres_url).start()  # waits for /healthz
    try:
        # The broker connects in the background; the node serves meanwhile.
        deadline = time.monotonic() + 20
        while (state := health(node.port))["broker"] != "ok" and time.monotonic() < deadline:
            time.sleep(0.05)  # another process's state: nothing to await
    finally:
        code = node.terminate()
    assert state["database"] == "ok" and state["broker"] == "ok", state
    # uvicorn re-raises the SIGTERM it handled once it has shut down gracefully.
    log = node.log_path.read_text()
    assert code in (0, -signal.SIGTERM), log[-2000:]
    assert "Application shutdown complete" in log
