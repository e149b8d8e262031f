"""One server under test as a subprocess on a free loopback port, and how a client addresses it.

`ServerProcess` owns one subprocess: it starts it in its own session (so a Ctrl-C in the
terminal reaches only the orchestrator, which then stops it), asks the kernel to kill it if the
orchestrator dies (PR_SET_PDEATHSIG), waits until the port accepts connections, and measures
the process tree's RSS and CPU time with psutil. `stop()` is SIGTERM, then SIGKILL after a
bounded wait; it is safe to call twice. The kinds of server are in `servers.py`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OWNER = "bench"


@dataclass(frozen=True)
class ClientSpec:
    """What one client is: its id, document, where and how it connects, whether it writes.

    ``framing`` is ``yws`` (y-websocket: one document per socket, one message per frame) or
    ``hp`` (Hocuspocus: messages prefixed with ``name``, an authentication message first).
    ``sink`` clients (history seeders) do not apply what they receive: they only send.
    """

    cid: int
    doc: str
    url: str
    framing: str = "yws"
    name: str = ""
    token: str = ""
    writer: bool = False
    sink: bool = False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class ServerError(RuntimeError):
    """The server did not start, or died."""


class ServerProcess:
    """One server under test. Subclasses say how to launch it and how to address a document."""

    name = "server"
    label = "server"  # the column heading of the summary table
    persistent = False  # does the document survive a restart?
    framing = "yws"

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
                preexec_fn=die_with_parent,
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
        return cpu_seconds(self.processes())

    def url(self, name: str) -> str:
        return self.url_template.format(port=self.port, owner=OWNER, name=name, token=self.token)

    def client_spec(
        self, cid: int, doc: str, writer: bool = False, sink: bool = False
    ) -> ClientSpec:
        return ClientSpec(
            cid, doc, self.url(doc), self.framing, f"{OWNER}/{doc}", self.token, writer, sink
        )

    def cleanup(self) -> None:
        """Called once the scenario is over and the server stopped (e.g. drop a schema)."""

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


def settled_rss(server: ServerProcess) -> int:
    """The server's RSS once it has settled: the median of five samples 0.2 s apart."""
    samples = []
    for _ in range(5):
        time.sleep(0.2)
        samples.append(server.rss())
    return int(statistics.median(samples))


def cpu_seconds(processes: Iterable[psutil.Process]) -> float:
    """User + system CPU seconds of ``processes`` (one gone meanwhile counts nothing)."""
    total = 0.0
    for p in processes:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total
