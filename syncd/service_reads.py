"""HTTP reads by services and admins: audited, and gated by consent for a purpose.

``GET /v1/docs/{id}`` and ``GET /v1/docs/{id}/state`` by a service or admin each add an audit
record (kind ``http``). The state is a document's whole content, every writer's at once, so a
service bound to a purpose gets it only when every participant who wrote the document consents
to that purpose (services' own writes aside); otherwise 403 ``consent``: it would bypass the
feed's gate. A document whose log retention pruned has writers nobody can name any more: also
403 for a purpose-bound service (its feed shows such a document as placeholders only).
"""

from __future__ import annotations

from storage import DocMeta
from storage.consent import document_writers

from .daemon import Daemon
from .feed_consent import bound_purpose
from .http_api import HttpError
from .tokens import Identity

__all__ = ["audit_meta_read", "audit_state_read"]


async def audit_meta_read(daemon: Daemon, identity: Identity, meta: DocMeta) -> None:
    """Record a metadata read (it names the owner and the grantees)."""
    if identity.privileged:
        await daemon.audit.record(
            identity.tenant,
            identity.sub,
            bound_purpose(identity),
            "http",
            [meta.key.name],
            {meta.owner, *meta.grants},
        )


async def audit_state_read(daemon: Daemon, identity: Identity, meta: DocMeta) -> None:
    """Refuse a purpose-bound service the state unless every writer consents; record the read.

    Raises:
        HttpError: 403 ``consent``. StoreUnavailable: nothing is served unaudited.
    """
    if not identity.privileged:
        return
    key = meta.key
    writers, complete = await document_writers(daemon.store, key.tenant, key.name)  # type: ignore[arg-type]
    purpose = bound_purpose(identity)
    if purpose is not None:
        if not complete:
            raise HttpError(
                403, "consent", f"{key.name}: its early writers are unknown (log pruned)"
            )
        granted = await daemon.consents.granted(key.tenant, purpose, writers)
        if writers - granted:
            raise HttpError(
                403,
                "consent",
                f"not every participant of {key.name} consents to {purpose}: read the feed",
            )
    await daemon.audit.record(key.tenant, identity.sub, purpose, "http", [key.name], writers)
