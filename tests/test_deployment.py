"""The deployment files describe the cluster of DESIGN.md §1.9: Postgres, Redis, two or more
syncd nodes sharing one database, one Redis and one secret, and a load balancer in front with
WebSocket tunnels, health checks and no stickiness.

Images cannot be pulled here, so the files are checked for what they say: their structure
always, and `docker compose config` where a compose is installed.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from syncd.cli import check_cluster
from syncd.feed import MAX_WAIT
from syncd.server import uvicorn_config
from syncd.settings import Settings
from syncd.tokens import check_secret

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
HAPROXY = ROOT / "deploy" / "haproxy.cfg"
DOCKERFILE = ROOT / "Dockerfile"
INIT_SCRIPT = ROOT / "deploy" / "postgres-init.sh"
INIT_NAME = "10-syncd-role.sh"

_DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")


def interpolated(value: object) -> str:
    """A compose value as a machine with no ``.env`` and none of the variables set sees it."""
    text = str(value)
    assert "$" not in _DEFAULTED.sub("", text), f"{text!r}: every variable needs a default"
    return _DEFAULTED.sub(lambda m: m.group(2), text)


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the KEY=VALUE form
        env = dict(item.split("=", 1) for item in env)
    return {k: interpolated(v) for k, v in env.items()}


def depends_on(service: dict) -> dict[str, str]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


@pytest.fixture(scope="module")
def services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


@pytest.fixture(scope="module")
def nodes(services: dict[str, dict]) -> dict[str, dict]:
    """The syncd nodes: the services built from this repository's Dockerfile."""
    return {name: s for name, s in services.items() if s.get("build") in (".", "./")}


def image_of(services: dict[str, dict], prefix: str) -> str:
    matches = [name for name, s in services.items() if str(s.get("image", "")).startswith(prefix)]
    assert len(matches) == 1, f"one {prefix} service expected, found {matches}"
    return matches[0]


def test_compose_runs_a_cluster_on_one_database_one_redis_one_secret(services, nodes):
    postgres, redis = image_of(services, "postgres:16"), image_of(services, "redis:7")
    assert set(nodes) >= {"syncd-a", "syncd-b"}

    envs = {name: environment(node) for name, node in nodes.items()}
    for key in ("SYNCD_DATABASE_URL", "SYNCD_REDIS_URL", "SYNCD_SECRET"):
        assert len({env.get(key) for env in envs.values()}) == 1, f"{key} differs between nodes"
    env = next(iter(envs.values()))

    database = urlsplit(env["SYNCD_DATABASE_URL"])
    pg_env = environment(services[postgres])
    assert (database.scheme, database.hostname) == ("postgresql", postgres)
    # The nodes connect as the ordinary role the init script makes, never as the image's
    # superuser (which skips row-level security): test_the_nodes_role_is_bound_by_rls.
    assert database.username == pg_env["SYNCD_DB_USER"] != pg_env["POSTGRES_USER"]
    assert database.password == pg_env["SYNCD_DB_PASSWORD"]
    assert database.path == "/" + pg_env["POSTGRES_DB"]
    assert (
        f"./deploy/postgres-init.sh:/docker-entrypoint-initdb.d/{INIT_NAME}:ro"
        in (services[postgres]["volumes"])
    )
    broker = urlsplit(env["SYNCD_REDIS_URL"])
    assert (broker.scheme, broker.hostname) == ("redis", redis)
    check_secret(env["SYNCD_SECRET"], "SYNCD_SECRET")  # the dev default passes the minimum

    # Every variable is one syncd reads, and the node's settings are ones `syncd serve` accepts.
    known = {f"SYNCD_{f.name.upper()}" for f in fields(Settings)}
    for name, node_env in envs.items():
        assert {k for k in node_env if k.startswith("SYNCD_")} <= known, name
        settings = Settings.from_env(node_env)
        check_cluster(settings)
        # Behind a load balancer every connection comes from its address (docs/configuration.md).
        assert settings.max_pending_per_address == 0 or settings.max_pending_per_address >= 10_000
        assert depends_on(nodes[name]) == {
            postgres: "service_healthy",
            redis: "service_healthy",
        }


def test_redis_keeps_nothing(services):
    """Redis carries speed, never truth (DESIGN.md §1.9): persisting it would only cost."""
    command = services[image_of(services, "redis:7")]["command"]
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    assert argv[argv.index("--save") + 1] == ""
    assert argv[argv.index("--appendonly") + 1] == "no"


def test_every_service_a_node_waits_for_is_health_checked_and_so_are_nodes(services):
    for prefix in ("postgres:16", "redis:7"):
        check = services[image_of(services, prefix)]["healthcheck"]
        assert check["test"] and not check.get("disable"), prefix
    assert "synchronous_commit=off" not in str(services[image_of(services, "postgres:16")])
    healthcheck = [line for line in _dockerfile_lines() if line.startswith("HEALTHCHECK ")]
    assert len(healthcheck) == 1 and "/healthz" in healthcheck[0]


def test_the_load_balancer_fronts_every_node(services, nodes):
    lb = image_of(services, "haproxy:2.9")
    assert set(depends_on(services[lb])) == set(nodes)
    assert any(str(v).startswith("./deploy/haproxy.cfg:") for v in services[lb]["volumes"])
    assert services[lb]["ports"], "the load balancer is the cluster's one published port"
    assert not any(nodes[n].get("ports") for n in nodes), "clients reach nodes only through it"

    sections = haproxy_sections()
    [backend] = [body for head, body in sections.items() if head.startswith("backend ")]
    servers = [line.split() for line in backend if line.startswith("server ")]
    assert {urlsplit("//" + s[2]).hostname for s in servers} == set(nodes)
    assert {urlsplit("//" + s[2]).port for s in servers} == {8787}


def test_the_load_balancer_tunnels_websockets_without_stickiness():
    sections = haproxy_sections()
    defaults = sections["defaults"]
    [backend] = [body for head, body in sections.items() if head.startswith("backend ")]
    everything = [line for body in sections.values() for line in body]

    # HTTP mode: HAProxy forwards the Upgrade handshake and then tunnels the WebSocket.
    assert "mode http" in defaults
    timeouts = {line.split()[1]: seconds(line.split()[2]) for line in defaults if "timeout" in line}
    ping_interval = uvicorn_config(Settings(), None).ws_ping_interval
    assert timeouts["tunnel"] >= 3 * ping_interval  # an idle WebSocket still pings every 20 s
    assert min(timeouts["client"], timeouts["server"]) > MAX_WAIT  # the feed's long-poll
    assert timeouts["http-request"] <= 30  # slow heads are bounded here, not by syncd

    # Round robin and nothing that pins a client to a node.
    assert "balance roundrobin" in backend
    pinning = re.compile(r"^(stick\b|stick-table\b|hash-type\b|balance (?!roundrobin))|\bcookie\b")
    assert not [line for line in everything if pinning.search(line)]

    # Tokens travel in WebSocket query strings: the logged request line is method and path only.
    [log_format] = [line for line in defaults if line.startswith("log-format ")]
    assert "%HP" in log_format and not re.search(r"%(\{[^}]*\})?(r|HU|HQ)\b", log_format)
    assert "option httplog" not in everything  # its request line is the whole URI

    # Health checks on /healthz.
    assert "option httpchk" in backend
    assert any(line.startswith("http-check send") and "uri /healthz" in line for line in backend)
    assert "http-check expect status 200" in backend
    assert any(line.startswith("default-server") and " check" in line for line in backend)


def test_the_dockerfile_builds_the_web_app_and_runs_the_daemon_unprivileged():
    lines = _dockerfile_lines()
    stages = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert stages[0].startswith("node:20") and stages[-1] == "python:3.11-slim"
    runs = " ".join(line for line in lines if line.startswith("RUN "))
    assert "npm ci" in runs and "npm run build" in runs
    assert "-c requirements.lock" in runs
    assert any(line.startswith("COPY --from=") and "pwa/dist" in line for line in lines)
    [user] = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert user not in {"root", "0"}
    assert "EXPOSE 8787" in lines
    assert lines[-1] == 'CMD ["syncd", "serve", "--host", "0.0.0.0"]'

    # Every path copied from the build context exists and is not excluded by .dockerignore.
    ignored = [p for p in (ROOT / ".dockerignore").read_text().split() if not p.startswith("#")]
    assert {".git", ".venv", "**/node_modules", ".syncd", "artifacts"} <= set(ignored)
    for line in lines:
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), line
                assert source.rstrip("/") not in ignored, line


def test_compose_file_validates_with_docker_compose():
    compose = _compose_command()
    if compose is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed here")
    out = subprocess.run(
        [*compose, "-f", str(COMPOSE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


# -- reading the files -------------------------------------------------------------------------


def _dockerfile_lines() -> list[str]:
    """Instructions one per line: continuations joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def haproxy_sections() -> dict[str, list[str]]:
    """``haproxy.cfg`` as section header → its lines, comments dropped, spaces collapsed."""
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for raw in HAPROXY.read_text().splitlines():
        line = " ".join(raw.split("#", 1)[0].split())
        if not line:
            continue
        if not raw[0].isspace():
            current = sections.setdefault(line, [])
        else:
            current.append(line)
    return sections


def seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value).groups()  # type: ignore[union-attr]
    return int(number) * units[unit or "ms"]  # HAProxy's default unit is milliseconds


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.mark.postgres
@pytest.mark.anyio
async def test_the_nodes_role_is_bound_by_rls(postgres_url: str, tmp_path: Path) -> None:
    """The compose file's init script, run as the postgres image runs it (its environment, psql
    as the superuser), makes a role that can run syncd and that row-level security binds: the
    tables it creates are its own, and without the tenant setting it sees none of their rows."""
    import os
    import secrets

    import psycopg

    from storage import DocKey, NewUpdate, SqlStore

    db = f"syncd_init_{secrets.token_hex(4)}"
    role = f"syncd_app_{secrets.token_hex(4)}"
    admin = urlsplit(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        env = dict(
            os.environ,
            PGHOST=admin.hostname or "127.0.0.1",
            PGPORT=str(admin.port or 5432),
            POSTGRES_USER=admin.username or "postgres",
            POSTGRES_DB=db,
            SYNCD_DB_USER=role,
            SYNCD_DB_PASSWORD="init-test",
        )
        init = await asyncio.create_subprocess_exec(
            "sh", str(INIT_SCRIPT), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        _, err = await init.communicate()
        assert init.returncode == 0, err.decode()
        url = f"postgresql://{role}:init-test@{env['PGHOST']}:{env['PGPORT']}/{db}"
        store = SqlStore(url)
        await store.open()  # creates the tables and installs the policies, as that role
        try:
            await store.append(
                {DocKey("acme", "alice/a"): [NewUpdate(b"\x00\x00", "alice", "http")]}
            )
        finally:
            await store.close()
        with psycopg.connect(url) as conn:
            flags = conn.execute(
                "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", (role,)
            ).fetchone()
            assert flags == (False, False)
            owner = conn.execute(
                "SELECT tableowner FROM pg_tables WHERE tablename = 'syncd_documents'"
            ).fetchone()
            assert owner == (role,)
            assert conn.execute("SELECT count(*) FROM syncd_documents").fetchone() == (0,)
            conn.execute("SELECT set_config('syncd.tenants', 'acme', false)")
            assert conn.execute("SELECT count(*) FROM syncd_documents").fetchone() == (1,)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')
