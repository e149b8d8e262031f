"""Web Push subscriptions (DESIGN.md §1.12), table ``syncd_push_subscriptions``.

A subscription is one browser's ``PushSubscription`` (its endpoint and keys), owned by a
principal of a tenant. An endpoint is unique per tenant: a browser where someone else signs in
and subscribes now belongs to them (the push service gives one endpoint per browser profile and
application server key), so the previous principal's notifications stop going to that device.
Each principal keeps at most ``max_per_principal`` subscriptions, the newest: a new one drops
the oldest (a phone replaced, a browser reinstalled: the old endpoints are dead anyway).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from .schema import push_subscriptions

if TYPE_CHECKING:
    from .sql import SqlStore

__all__ = ["PushSubscription", "SqlPushSubscriptions"]


@dataclass(frozen=True, slots=True)
class PushSubscription:
    id: int
    tenant: str
    principal: str
    endpoint: str
    p256dh: str  # base64url, as the browser gave it
    auth: str
    created_at: float

    def info(self) -> dict[str, object]:
        """The ``subscription_info`` pywebpush takes (the browser's own JSON shape)."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


_COLUMNS = (
    push_subscriptions.c.id,
    push_subscriptions.c.tenant,
    push_subscriptions.c.principal,
    push_subscriptions.c.endpoint,
    push_subscriptions.c.p256dh,
    push_subscriptions.c.auth,
    push_subscriptions.c.created_at,
)


class SqlPushSubscriptions:
    def __init__(self, store: SqlStore, max_per_principal: int = 10) -> None:
        if max_per_principal < 1:
            raise ValueError("max_per_principal must be at least 1")
        self.store = store
        self.max_per_principal = max_per_principal

    async def add(
        self, tenant: str, principal: str, endpoint: str, p256dh: str, auth: str
    ) -> PushSubscription:
        """Store (or take over, or refresh) the subscription of ``endpoint`` for ``principal``;
        drop that principal's oldest past the bound. Returns what is stored."""
        t = push_subscriptions
        now = time.time()
        values = {"principal": principal, "p256dh": p256dh, "auth": auth, "created_at": now}
        upsert = (
            self.store._insert(t)
            .values(tenant=tenant, endpoint=endpoint, **values)
            .on_conflict_do_update(index_elements=[t.c.tenant, t.c.endpoint], set_=values)
            .returning(*_COLUMNS)
        )
        async with self.store._begin(tenants=[tenant]) as conn:
            row = (await conn.execute(upsert)).one()
            keep = (
                select(t.c.id)
                .where(t.c.tenant == tenant, t.c.principal == principal)
                .order_by(t.c.created_at.desc(), t.c.id.desc())
                .limit(self.max_per_principal)
            )
            await conn.execute(
                delete(t).where(
                    t.c.tenant == tenant,
                    t.c.principal == principal,
                    t.c.id.not_in(keep.scalar_subquery()),
                )
            )
        return PushSubscription(*row)

    async def remove(self, tenant: str, principal: str, endpoint: str) -> bool:
        """The principal unsubscribed ``endpoint``; whether it was theirs and is now gone."""
        t = push_subscriptions
        async with self.store._begin(tenants=[tenant]) as conn:
            result = await conn.execute(
                delete(t).where(
                    t.c.tenant == tenant, t.c.principal == principal, t.c.endpoint == endpoint
                )
            )
            return bool(result.rowcount)

    async def expired(self, subscription: PushSubscription) -> None:
        """The push service answered 404/410: the subscription is dead. Only the row as it was
        sent to goes (matched on its keys too): a browser that re-subscribed meanwhile with the
        same endpoint keeps its fresh row."""
        t = push_subscriptions
        async with self.store._begin(tenants=[subscription.tenant]) as conn:
            await conn.execute(
                delete(t).where(
                    t.c.id == subscription.id,
                    t.c.endpoint == subscription.endpoint,
                    t.c.p256dh == subscription.p256dh,
                )
            )

    async def of_principals(self, tenant: str, principals: Sequence[str]) -> list[PushSubscription]:
        """Every subscription of these principals (one query), oldest first."""
        if not principals:
            return []
        t = push_subscriptions
        async with self.store._begin(tenants=[tenant], write=False) as conn:
            rows = await conn.execute(
                select(*_COLUMNS)
                .where(t.c.tenant == tenant, t.c.principal.in_(list(set(principals))))
                .order_by(t.c.created_at, t.c.id)
            )
            return [PushSubscription(*r) for r in rows]
