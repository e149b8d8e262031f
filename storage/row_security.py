"""Tenant isolation inside Postgres: row-level security on every table that holds a tenant's rows.

The daemon already filters every query by tenant; the policies here make the database refuse
what a forgotten filter would leak. Each transaction names the tenants it works on in a
transaction-local setting (``syncd.tenants``, set by :meth:`SqlStore._begin`); the policies
show, and accept for writing, only rows of those tenants. A session that names none (a person
with ``psql``, a query outside the store, a code path that forgot) reads no row and writes none.

- Tables with a ``tenant`` column key on it. Tables that belong to a document (``doc_id``) key on
  their document's tenant, through a primary-key probe into ``syncd_documents``: measured, it
  costs the append path and the feed little (docs/privacy.md), so no tenant column is copied
  into them.
- A group commit spans documents of several tenants: the setting may name several, and a
  transaction still never sees a tenant it did not name.
- Maintenance that spans tenants (migrations, the history sweep's automatic versions, the
  trash's expiry scan, key rotation) names :data:`ALL_TENANTS`, an explicit marker (``*``, which
  no tenant name can be) that only those named code paths pass.
- ``syncd_feed_position`` and ``syncd_schema_version`` hold no tenant's data: no policy.

Superusers and roles with ``BYPASSRLS`` skip every policy (``FORCE`` binds the tables' owner,
not them): :func:`install` logs a warning when the daemon's role is one. SQLite has no roles and
one file per deployment; there all of this is a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "ALL_TENANTS",
    "DOCUMENT_TABLES",
    "POLICY_NAME",
    "SETTING",
    "TENANT_TABLES",
    "AllTenants",
    "TenantScope",
    "enter_scope",
    "install",
    "policy_condition",
    "scope_value",
]

log = logging.getLogger("syncd.storage")

SETTING: Final = "syncd.tenants"
POLICY_NAME: Final = "syncd_tenant_scope"
# Tables whose rows carry their tenant, and tables whose rows belong to a document.
TENANT_TABLES: Final = (
    "syncd_documents",
    "syncd_consents",
    "syncd_audit",
    "syncd_push_subscriptions",
    "syncd_data_keys",
    "syncd_erased_principals",
)
DOCUMENT_TABLES: Final = (
    "syncd_grants",
    "syncd_updates",
    "syncd_snapshots",
    "syncd_served_states",
    "syncd_quarantine",
    "syncd_versions",
    "syncd_lineage_fences",
)

_ALL: Final = "*"
_SEPARATOR: Final = ","


class AllTenants:
    """The scope of maintenance that spans tenants; use the one instance, :data:`ALL_TENANTS`."""

    _instance: AllTenants | None = None

    def __new__(cls) -> AllTenants:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ALL_TENANTS"


ALL_TENANTS: Final = AllTenants()

# What a transaction may touch: some tenants by name, or (maintenance only) all of them.
TenantScope = Iterable[str] | AllTenants


def scope_value(scope: TenantScope) -> str:
    """The setting's value for ``scope``: tenant names joined by commas, ``*`` for all tenants,
    ``""`` for none (which shows nothing).

    Raises:
        ValueError: a tenant name that could widen the scope (holds ``,`` or is ``*``).
    """
    if isinstance(scope, AllTenants):
        return _ALL
    if isinstance(scope, str):  # a str is an Iterable[str] of letters: never what was meant
        scope = (scope,)
    names = sorted(set(scope))
    for name in names:
        if not name or _SEPARATOR in name or name == _ALL:
            raise ValueError(f"tenant name {name!r} cannot be scoped")
    return _SEPARATOR.join(names)


async def enter_scope(conn: AsyncConnection, scope: TenantScope) -> None:
    """Name the tenants of the transaction open on ``conn`` (Postgres; the setting ends with the
    transaction, so a pooled connection never carries it into the next one)."""
    value = scope_value(scope)
    if conn.dialect.name != "postgresql" or not value:
        return
    await conn.execute(
        text("SELECT set_config(:name, :value, true)"), {"name": SETTING, "value": value}
    )


def _visible(column: str) -> str:
    # current_setting(..., true) is NULL in a session that never set it: NULL = ANY(...) is
    # not true, so such a session sees nothing. Each setting is read in a sub-select (an
    # InitPlan: once per statement). Written inline instead, the planner estimates the policy
    # as selective as the query's own tenant filter and multiplies the two: it then guessed a
    # tenant's feed 10-100x too small and read the tenant's whole log for every page (measured,
    # docs/privacy.md); as a parameter it counts as barely selective, and the plans stay as
    # they are without row-level security.
    setting = f"current_setting('{SETTING}', true)"
    return (
        f"((SELECT {setting} = '{_ALL}')"
        f" OR {column} = ANY ((SELECT string_to_array({setting}, '{_SEPARATOR}'))::text[]))"
    )


def policy_condition(table: str) -> str:
    """The rows of ``table`` a transaction may see and write."""
    if table in TENANT_TABLES:
        return _visible(f"{table}.tenant")
    if table in DOCUMENT_TABLES:
        return (
            "EXISTS (SELECT 1 FROM syncd_documents d"
            f" WHERE d.id = {table}.doc_id AND {_visible('d.tenant')})"
        )
    raise ValueError(f"{table} has no tenant")


async def install(conn: AsyncConnection) -> None:
    """Enable and force row-level security with the tenant policy on every tenant-bearing table
    that exists, idempotently (called by ``storage.schema.migrate`` on Postgres, under its lock).

    Only what is missing is created, so a role that does not own the tables (the deployment's
    daemon role, docs/deployment.md) starts on a database where the owner installed it.

    Raises:
        RuntimeError: something is missing and this role does not own the table to add it.
    """
    for table in TENANT_TABLES + DOCUMENT_TABLES:
        row = (
            await conn.execute(
                text(
                    "SELECT c.relrowsecurity, c.relforcerowsecurity,"
                    " pg_has_role(c.relowner, 'USAGE') AS owned,"
                    " EXISTS (SELECT 1 FROM pg_policy p"
                    "  WHERE p.polrelid = c.oid AND p.polname = :policy) AS has_policy"
                    " FROM pg_class c WHERE c.oid = to_regclass(:table)"
                ),
                {"table": table, "policy": POLICY_NAME},
            )
        ).first()
        if row is None:
            continue  # not in this schema version
        if row.relrowsecurity and row.relforcerowsecurity and row.has_policy:
            continue
        if not row.owned:
            user = (await conn.execute(text("SELECT current_user"))).scalar_one()
            raise RuntimeError(
                f"row-level security is not installed on {table} and role {user} does not own "
                "it: start syncd once as the tables' owner (docs/deployment.md)"
            )
        if not row.has_policy:
            condition = policy_condition(table)
            await conn.execute(
                text(
                    f"CREATE POLICY {POLICY_NAME} ON {table} FOR ALL"
                    f" USING ({condition}) WITH CHECK ({condition})"
                )
            )
        await conn.execute(text(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"))
        await conn.execute(text(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY"))
        log.info("row-level security installed on %s", table)
    await _warn_if_bypassed(conn)


async def _warn_if_bypassed(conn: AsyncConnection) -> None:
    row = (
        await conn.execute(
            text(
                "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
            )
        )
    ).first()
    if row is not None and (row.rolsuper or row.rolbypassrls):
        log.warning(
            "database role %s bypasses row-level security (%s): the database does not isolate "
            "tenants for this daemon; run syncd as an ordinary role (docs/deployment.md)",
            row.rolname,
            "superuser" if row.rolsuper else "BYPASSRLS",
        )
