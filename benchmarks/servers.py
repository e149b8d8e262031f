"""The servers under test, in the order of the table's columns; each a fresh process per scenario.

- `YWebsocket`: the reference `@y/websocket-server` (its own `src/server.js`, in memory).
- `Hocuspocus`: `@hocuspocus/server` 4 in memory, no extensions (`node/hocuspocus_server.mjs`);
  Hocuspocus framing, one socket per document.
- `PycrdtWebsocket`: `peer_pycrdt_websocket.py` (stock WebsocketServer + ASGIServer on
  uvicorn), in memory.
- `Syncd`: ``syncd serve --host 127.0.0.1 --port PORT --data-dir DIR`` (configurable command),
  durable: its embedded SQLite (``synchronous=FULL``) in a fresh data directory, or
  ``NORMAL`` (`SyncdNormal`), or sealing every stored update (`SyncdEncrypted`), or a fresh
  schema of a Postgres database (`SyncdPostgres`, whose
  CPU includes the Postgres backends serving it). The URL carries a token made with
  ``syncd token`` (or signed here with the same secret if that command is missing).

The Node packages are pinned by ``node/package-lock.json`` (``npm ci --prefix benchmarks/node``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
from server_process import HERE, OWNER, REPO, ServerError, ServerProcess

NODE_DIR = HERE / "node"
BENCH_SECRET = "syncd-benchmark-secret-not-for-production-0123456789"
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"

PEER_URL = "ws://127.0.0.1:{port}/{owner}/{name}"
SYNCD_URL = "ws://127.0.0.1:{port}/v1/docs/{owner}/{name}?token={token}"

__all__ = ["SERVERS", "ServerError", "ServerProcess", "available", "make_server", "node_ready"]


def node_ready() -> tuple[bool, str]:
    """Whether node and the pinned packages of benchmarks/node are there; the reason if not."""
    if shutil.which("node") is None:
        return False, "node is not on PATH"
    if not (NODE_DIR / "node_modules" / "yjs").is_dir():
        return False, "run `npm ci --prefix benchmarks/node` first"
    return True, ""


class YWebsocket(ServerProcess):
    name = "y-websocket"
    label = "y-websocket"

    def command(self) -> list[str]:
        return ["node", str(NODE_DIR / "node_modules" / "@y" / "websocket-server" / "src" /
                            "server.js")]  # fmt: skip

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(HOST="127.0.0.1", PORT=str(self.port))
        env.pop("YPERSISTENCE", None)  # in memory, like the other peers
        return env


class Hocuspocus(ServerProcess):
    name = "hocuspocus"
    label = "Hocuspocus 4"
    framing = "hp"

    def command(self) -> list[str]:
        return ["node", str(NODE_DIR / "hocuspocus_server.mjs"), str(self.port)]


class PycrdtWebsocket(ServerProcess):
    name = "pycrdt-websocket"
    label = "pycrdt-websocket"

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
    label = "syncd"
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
        for key in ("SYNCD_DATABASE_URL", "SYNCD_REDIS_URL", "SYNCD_HOST", "SYNCD_PORT",
                    "SYNCD_SQLITE_SYNCHRONOUS"):  # fmt: skip
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


class SyncdNormal(Syncd):
    name = "syncd-normal"
    label = "syncd `NORMAL`"

    def env(self) -> dict[str, str]:
        env = super().env()
        env["SYNCD_SQLITE_SYNCHRONOUS"] = "NORMAL"
        return env


class SyncdEncrypted(Syncd):
    """`Syncd` with encryption at rest: a fresh master key file in the work directory
    (``SYNCD_MASTER_KEY_FILE``), so every stored update is sealed (docs/privacy.md)."""

    name = "syncd-encrypted"
    label = "syncd sealed"

    def env(self) -> dict[str, str]:
        env = super().env()
        env["SYNCD_MASTER_KEY_FILE"] = str(self.workdir / "master.key")
        return env

    def prepare(self) -> None:
        key = self.workdir / "master.key"
        if not key.exists():
            import base64

            key.write_text(base64.b64encode(os.urandom(32)).decode())
            key.chmod(0o600)
        super().prepare()


class SyncdPostgres(Syncd):
    """syncd on a fresh schema of ``postgres_url``, dropped by `cleanup()`.

    The schema's name is also the connections' ``application_name``, which is how the
    Postgres backends that serve this syncd are found: their CPU counts as the server's.
    """

    name = "syncd-postgres"
    label = "syncd Postgres"

    def __init__(
        self, workdir: Path, url_template: str, cmd: str | None, postgres_url: str
    ) -> None:
        super().__init__(workdir, url_template, cmd)
        self.postgres_url = postgres_url
        self.schema = ""
        self._backends: dict[int, tuple[psutil.Process, float]] = {}
        self._backend_cpu_gone = 0.0  # CPU of backends that have exited since

    def prepare(self) -> None:
        if not self.schema:
            import psycopg  # a syncd dependency

            self.schema = f"bench_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(self.postgres_url, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {self.schema}")
        super().prepare()

    @property
    def database_url(self) -> str:
        sep = "&" if "?" in self.postgres_url else "?"
        return (
            f"{self.postgres_url}{sep}options=-csearch_path%3D{self.schema}"
            f"&application_name={self.schema}"
        )

    def command(self) -> list[str]:
        return [*super().command(), "--database-url", self.database_url]

    def backend_pids(self) -> list[int]:
        import psycopg

        try:
            with psycopg.connect(self.postgres_url, autocommit=True, connect_timeout=3) as conn:
                rows = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (self.schema,)
                ).fetchall()
        except psycopg.Error:
            return []
        return [r[0] for r in rows]

    def cpu_seconds(self) -> float:
        total = super().cpu_seconds()
        pids = set(self.backend_pids()) if self.alive() else set()
        for pid in pids - self._backends.keys():
            with contextlib.suppress(psutil.Error):
                self._backends[pid] = (psutil.Process(pid), 0.0)
        for pid, (proc, last) in list(self._backends.items()):
            try:
                t = proc.cpu_times()
            except psutil.Error:  # exited: keep what it had used when last seen
                self._backend_cpu_gone += last
                del self._backends[pid]
                continue
            self._backends[pid] = (proc, t.user + t.system)
            total += t.user + t.system
        return total + self._backend_cpu_gone

    def cleanup(self) -> None:
        if not self.schema:
            return
        import psycopg

        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(self.postgres_url, autocommit=True, connect_timeout=5) as conn,
        ):
            conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")


SERVERS = ["y-websocket", "hocuspocus", "pycrdt-websocket", "syncd", "syncd-normal",
           "syncd-encrypted", "syncd-postgres"]  # fmt: skip


def make_server(name: str, workdir: Path, args: argparse.Namespace) -> ServerProcess:
    if name == "y-websocket":
        return YWebsocket(workdir, PEER_URL)
    if name == "hocuspocus":
        return Hocuspocus(workdir, "ws://127.0.0.1:{port}/")
    if name == "pycrdt-websocket":
        return PycrdtWebsocket(workdir, args.peer_url, args.peer_ws)
    if name == "syncd":
        return Syncd(workdir, args.syncd_url, args.syncd_cmd)
    if name == "syncd-normal":
        return SyncdNormal(workdir, args.syncd_url, args.syncd_cmd)
    if name == "syncd-encrypted":
        return SyncdEncrypted(workdir, args.syncd_url, args.syncd_cmd)
    if name == "syncd-postgres":
        return SyncdPostgres(workdir, args.syncd_url, args.syncd_cmd, args.postgres_url)
    raise SystemExit(f"unknown server {name!r}; known: {', '.join(SERVERS)}")


def available(name: str, args: argparse.Namespace) -> tuple[bool, str]:
    """Whether this server can run here; the reason when it cannot."""
    if name in ("y-websocket", "hocuspocus"):
        return node_ready()
    if name == "pycrdt-websocket":
        try:
            import pycrdt.websocket  # noqa: F401
        except ImportError as exc:
            return False, f"pycrdt-websocket is not installed ({exc})"
        return True, ""
    ok, why = syncd_available(args.syncd_cmd)
    if ok and name == "syncd-postgres":
        import psycopg

        try:
            with psycopg.connect(args.postgres_url, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            return False, f"Postgres unreachable at {args.postgres_url}: {str(exc).strip()}"
    return ok, why


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
