"""The servers under test, each run as a subprocess on a free loopback port.

`ServerProcess` owns one subprocess: it starts it in its own session (so a Ctrl-C in the
terminal reaches only the orchestrator, which then stops it), asks the kernel to kill it if the
orchestrator dies (PR_SET_PDEATHSIG), waits until the port accepts connections, and measures
the process tree's RSS and CPU time with psutil. `stop()` is SIGTERM, then SIGKILL after a
bounded wait; it is safe to call twice.

Two kinds:

- `PycrdtWebsocket`: `peer_pycrdt_websocket.py` (stock WebsocketServer + ASGIServer on
  uvicorn), in memory.
- `Syncd`: ``syncd serve --host 127.0.0.1 --port PORT --data-dir DIR`` (configurable command),
  its embedded SQLite in a fresh data directory; the URL template carries a token made with
  ``syncd token`` (or signed here with the same secret if that command is missing).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OWNER = "bench"
BENCH_SECRET = "syncd-benchmark-secret-not-for-production-0123456789"

PEER_URL = "ws://127.0.0.1:{port}/{owner}/{name}"
SYNCD_URL = "ws://127.0.0.1:{port}/v1/docs/{owner}/{name}?token={token}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class ServerError(RuntimeError):
    """The server did not start, or died."""


class ServerProcess:
    """One server under test. Subclasses say how to launch it and how to address a document."""

    name = "server"
    persistent = False  # does the document survive a restart?

    def __init__(self, workdir: Path, url_template: str) -> None:
        self.workdir = workdir
        self.url_template = url_template
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.name}.log"
        self.token = ""
        self.starts = 0

    # ------------------------------------------------------------------ to override

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def prepare(self) -> None:
        """Called before each start (e.g. to make a token)."""

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 30.0, keep_port: bool = False) -> None:
        """Launch the process and wait (bounded) until its port accepts TCP connections."""
        if self.proc is not None:
            raise ServerError(f"{self.name} already running")
        if not keep_port or not self.port:
            self.port = free_port()
        self.prepare()
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"\n===== start #{self.starts}: {shlex.join(self.command())}\n".encode())
        log.flush()
        try:
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
                cwd=self.workdir,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise ServerError(f"{self.name} exited with {rc} at start:\n{self.log_tail()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"{self.name} not listening after {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> float:
        """SIGTERM, wait up to ``timeout``, then SIGKILL. Returns the seconds it took."""
        proc, self.proc = self.proc, None
        if proc is None:
            return 0.0
        started = time.monotonic()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_tree(proc.pid)
                proc.wait(5)
        # stragglers of the session (workers, helpers) go too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return time.monotonic() - started

    def restart(self, timeout: float = 30.0) -> float:
        """Stop and start again on the same port with the same data; returns the stop time."""
        took = self.stop()
        self.start(timeout, keep_port=True)
        return took

    @staticmethod
    def _kill_tree(pid: int) -> None:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            for p in [*root.children(recursive=True), root]:
                with contextlib.suppress(psutil.Error):
                    p.kill()

    # ------------------------------------------------------------------ measurements

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ServerError(f"{self.name} not running")
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def processes(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def rss(self) -> int:
        total = 0
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def url(self, name: str) -> str:
        return self.url_template.format(port=self.port, owner=OWNER, name=name, token=self.token)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_findings(self, since: int = 0, keep: int = 8) -> tuple[int, list[str]]:
        """Count error-looking lines written to the log after byte ``since``; keep a few."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(since)
                text = f.read().decode(errors="replace")
        except OSError:
            return 0, []
        hits = [
            line.strip()
            for line in text.splitlines()
            if any(w in line for w in ("ERROR", "Traceback", "Exception", "CRITICAL"))
        ]
        return len(hits), list(dict.fromkeys(hits))[:keep]


class PycrdtWebsocket(ServerProcess):
    name = "pycrdt-websocket"

    def __init__(self, workdir: Path, url_template: str = PEER_URL, ws: str = "auto") -> None:
        super().__init__(workdir, url_template)
        self.ws = ws

    def command(self) -> list[str]:
        script = str(HERE / "peer_pycrdt_websocket.py")
        return [
            sys.executable, script,
            "--host", "127.0.0.1", "--port", str(self.port), "--ws", self.ws,
        ]  # fmt: skip


class Syncd(ServerProcess):
    name = "syncd"
    persistent = True

    def __init__(
        self, workdir: Path, url_template: str = SYNCD_URL, cmd: str | None = None
    ) -> None:
        super().__init__(workdir, url_template)
        self.base_cmd = shlex.split(cmd) if cmd else [sys.executable, "-m", "syncd"]
        self.data_dir = workdir / "syncd-data"
        self.token_source = ""

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["SYNCD_SECRET"] = BENCH_SECRET
        env["SYNCD_DATA_DIR"] = str(self.data_dir)
        # `python -m syncd` from a checkout that is not pip-installed
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        for key in ("SYNCD_DATABASE_URL", "SYNCD_REDIS_URL", "SYNCD_HOST", "SYNCD_PORT"):
            env.pop(key, None)
        return env

    def command(self) -> list[str]:
        return [
            *self.base_cmd, "serve",
            "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(self.data_dir),
        ]  # fmt: skip

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if "{token}" in self.url_template and not self.token:
            self.token, self.token_source = make_token(self.base_cmd, self.env(), self.workdir)


def make_token(base_cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[str, str]:
    """A token for principal ``bench``: ``syncd token`` if it works, else HS256 signed here."""
    try:
        out = subprocess.run(
            [*base_cmd, "token", "--sub", OWNER, "--ttl", "86400"],
            env=env, cwd=cwd, capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        lines = [ln.strip() for ln in out.stdout.decode().splitlines() if ln.strip()]
        if out.returncode == 0 and lines and lines[-1].count(".") == 2:
            return lines[-1], "syncd token"
    except (OSError, subprocess.TimeoutExpired):
        pass
    import jwt  # PyJWT, a syncd dependency

    now = int(time.time())
    claims = {"sub": OWNER, "iat": now, "exp": now + 86400, "tenant": "default", "role": "user"}
    return jwt.encode(claims, BENCH_SECRET, algorithm="HS256"), "signed by the benchmark (HS256)"


def syncd_available(cmd: str | None) -> tuple[bool, str]:
    """Whether ``<cmd> serve --help`` works; the reason when it does not."""
    base = shlex.split(cmd) if cmd else [sys.executable, "-m", "syncd"]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    try:
        out = subprocess.run(
            [*base, "serve", "--help"], env=env, capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{shlex.join(base)} serve --help: {exc}"
    if out.returncode != 0:
        err = (out.stderr or out.stdout).decode(errors="replace").strip().splitlines()
        return False, f"{shlex.join(base)} serve --help exited {out.returncode}: " + (
            err[-1] if err else "no output"
        )
    return True, ""
