"""What row-level security costs the Postgres append path and the feed (issue 12).

The same store operations, in alternating rounds, through two roles on one schema: the owner (a
superuser, which bypasses every policy: the cost without RLS) and an ordinary role with the
GRANTs of docs/deployment.md (every policy applies). The log holds rows of ten tenants so that
a tenant's feed scans past other tenants' rows, as in a shared deployment.

    .venv/bin/python -m benchmarks.row_security [--url postgresql://postgres@127.0.0.1/test]

Prints median and p95 per operation, and the feed query's plan as the ordinary role.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import psycopg
from sqlalchemy.engine import make_url

from storage import DocKey, NewUpdate, SqlStore

TENANTS = [f"t{i}" for i in range(10)]
DOCS_PER_TENANT = 100
LOG_ROWS = 200_000
ROUNDS = 6
APPENDS_PER_ROUND = 150
PAGES_PER_ROUND = 40


def _libpq(url: str) -> str:
    return make_url(url).render_as_string(hide_password=False).replace("+psycopg", "")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _appends(store: SqlStore, out: list[float], group: list[float]) -> None:
    payload = b"\x01" * 120
    for i in range(APPENDS_PER_ROUND):
        key = DocKey(TENANTS[i % 10], f"u{i % DOCS_PER_TENANT}/doc")
        start = time.perf_counter()
        await store.append({key: [NewUpdate(payload, "w", "client")]})
        out.append(time.perf_counter() - start)
        # A group commit: 20 documents of two tenants in one transaction.
        batch = {
            DocKey(TENANTS[(i + j) % 2], f"u{(i + j) % DOCS_PER_TENANT}/doc"): [
                NewUpdate(payload, "w", "client")
            ]
            for j in range(20)
        }
        start = time.perf_counter()
        await store.append(batch)
        group.append(time.perf_counter() - start)


async def _feed(store: SqlStore, out: list[float]) -> None:
    after = 0
    for i in range(PAGES_PER_ROUND):
        start = time.perf_counter()
        page = await store.read_feed(TENANTS[i % 10], after, limit=100)
        out.append(time.perf_counter() - start)
        after = page.next_pos if i % 10 == 9 else after


def _seed(conn: psycopg.Connection, role: str) -> None:
    conn.execute(
        "INSERT INTO syncd_documents (tenant, name, seq, snapshot_seq, size_bytes, created_at,"
        " updated_at, mode, pruned_pos, epoch)"
        " SELECT 't' || (g %% 10), 'u' || (g / 10) || '/doc', 0, 0, 0, 0, 0, 'private', 0, 'e'"
        " FROM generate_series(0, %s) g",
        (len(TENANTS) * DOCS_PER_TENANT - 1,),
    )
    conn.execute(
        "INSERT INTO syncd_updates (pos, doc_id, seq, principal, origin, at, data)"
        " SELECT g, d.id, g, 'w', 'client', 0, '\\x0101'::bytea"
        " FROM generate_series(1, %s) g"
        " JOIN syncd_documents d ON d.id = 1 + (g %% (SELECT count(*) FROM syncd_documents))",
        (LOG_ROWS,),
    )
    conn.execute(
        "UPDATE syncd_documents d SET seq = (SELECT max(seq) FROM syncd_updates u"
        " WHERE u.doc_id = d.id)"
    )
    conn.execute("UPDATE syncd_feed_position SET pos = %s", (LOG_ROWS,))
    conn.execute("ANALYZE")
    schema = conn.execute("SELECT current_schema()").fetchone()[0]  # type: ignore[index]
    conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
    conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}")
    conn.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")


_FEED = (
    "SELECT u.pos, d.name, u.seq, u.principal, u.at, u.data FROM syncd_updates u"
    " JOIN syncd_documents d ON d.id = u.doc_id WHERE d.tenant = %s AND d.deleted_at IS NULL"
    " AND u.pos > %s AND u.pos <= %s AND NOT EXISTS (SELECT 1 FROM syncd_quarantine q"
    " WHERE q.doc_id = u.doc_id AND q.seq = u.seq) ORDER BY u.pos LIMIT 100"
)
# storage/postgres_append.py's statements, for a group commit of 20 documents of two tenants.
_BUMP = (
    "UPDATE syncd_documents AS d SET seq = d.seq + 1, updated_at = 0"
    " FROM unnest(%s::bigint[]) AS b(id) WHERE d.id = b.id AND d.deleted_at IS NULL"
    " RETURNING d.id, d.seq"
)
_INSERT = (
    "INSERT INTO syncd_updates (pos, doc_id, seq, principal, origin, at, data)"
    " SELECT p, doc, 1000000 + p, 'w', 'client', 0, '\\x01'::bytea"
    " FROM unnest(%s::bigint[], %s::bigint[]) AS r(p, doc)"
)


def _executed_ms(conn: psycopg.Connection, sql: str, params: tuple[object, ...]) -> float:
    """The server's execution time of one statement (no network, no commit), rolled back."""
    conn.execute("SELECT set_config('syncd.tenants', 't0,t1,t3', true)")
    rows = conn.execute("EXPLAIN (ANALYZE, TIMING OFF) " + sql, params).fetchall()
    conn.rollback()
    return float(rows[-1][0].split(":")[1].split()[0])


def _server_side(owner_url: str, app_url: str) -> dict[str, dict[str, list[float]]]:
    """Median server execution times per statement, the owner (no RLS) and the role alternating."""
    out: dict[str, dict[str, list[float]]] = {"bypass": {}, "rls": {}}
    with psycopg.connect(_libpq(owner_url)) as conn:
        docs = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM syncd_documents WHERE tenant IN ('t0', 't1') ORDER BY id LIMIT 20"
            )
        ]
    statements = {
        "feed page, cursor at the start": (_FEED, ("t3", 1000, LOG_ROWS)),
        "feed page, cursor near the head": (_FEED, ("t3", LOG_ROWS - 1500, LOG_ROWS)),
        "append: bump 20 documents": (_BUMP, (docs,)),
        "append: insert 20 updates": (_INSERT, ([10**7 + i for i in range(20)], docs)),
    }
    connections = {
        "bypass": psycopg.connect(_libpq(owner_url)),
        "rls": psycopg.connect(_libpq(app_url)),
    }
    try:
        for _ in range(40):
            for name, conn in connections.items():
                for label, (sql, params) in statements.items():
                    out[name].setdefault(label, []).append(_executed_ms(conn, sql, params))
    finally:
        for conn in connections.values():
            conn.close()
    return out


def _explain_feed(app_url: str) -> str:
    with psycopg.connect(_libpq(app_url)) as conn:
        conn.execute("SELECT set_config('syncd.tenants', 't3', true)")
        rows = conn.execute(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + _FEED, ("t3", 1000, LOG_ROWS)
        ).fetchall()
    return "\n".join(r[0] for r in rows)


async def main(url: str) -> None:
    schema = f"bench_rls_{uuid.uuid4().hex[:8]}"
    role = f"syncd_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
    sep = "&" if "?" in url else "?"
    owner_url = f"{url}{sep}options=-csearch_path%3D{schema}"
    app_url = make_url(owner_url).set(username=role).render_as_string(hide_password=False)
    try:
        owner = SqlStore(owner_url, timeout_seconds=60)
        await owner.open()
        with psycopg.connect(_libpq(owner_url), autocommit=True) as conn:
            _seed(conn, role)
        app = SqlStore(app_url, timeout_seconds=60)
        await app.open()
        results: dict[str, dict[str, list[float]]] = {
            name: {"append": [], "group": [], "feed": []} for name in ("bypass", "rls")
        }
        for _ in range(ROUNDS):  # alternating, so load from elsewhere hits both alike
            for name, store in (("bypass", owner), ("rls", app)):
                r = results[name]
                await _appends(store, r["append"], r["group"])
                await _feed(store, r["feed"])
        await owner.close()
        await app.close()
        print("operation            without RLS (median / p95)   with RLS (median / p95)")
        for op, label in (
            ("append", "append, 1 update"),
            ("group", "group commit, 20 docs"),
            ("feed", "feed page of 100"),
        ):
            cells = []
            for name in ("bypass", "rls"):
                values = results[name][op]
                median, p95 = statistics.median(values), _percentile(values, 0.95)
                cells.append(f"{median * 1e3:6.2f} / {p95 * 1e3:6.2f} ms")
            print(f"{label:22} {cells[0]:>26}   {cells[1]:>24}")
        server = _server_side(owner_url, app_url)
        print("\nserver execution time (median of 40)   without RLS      with RLS")
        for label in server["rls"]:
            cells = [statistics.median(server[name][label]) for name in ("bypass", "rls")]
            print(f"{label:36} {cells[0]:8.3f} ms   {cells[1]:8.3f} ms")
        print("\nfeed query as the ordinary role, tenant t3:\n" + _explain_feed(app_url))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    asyncio.run(main(parser.parse_args().url))
