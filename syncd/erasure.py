"""Erasing a principal (``DELETE /v1/principals/{sub}``, DESIGN.md §1.11; docs/privacy.md).

In this order, so that nothing the principal could still do lands after the step that would
have removed it:

1. the principal is recorded as erased (a salted hash, ``storage/erased_principals.py``): from
   now on nothing can be created under their name, also by their old offline replica;
2. their own documents are deleted (live clients closed with 4404 on every node) and purged
   with their history and versions (``storage/trash.py``); the bare tombstones, which carry the
   name ``sub/…``, are then deleted too;
3. grants they hold are removed through the access path, so their live connections to other
   people's documents are revoked at once, on every node;
4. every other document they wrote in, or whose content holds their identity, is rewritten as a
   new lineage without it (``storage/erasure.py``, ``crdt/scrub.py``): new epoch, live rooms of
   it closed (1013, reconnect) here and, through the broker's access-change message, on every
   other node (``Daemon._apply_access`` sees the epoch change), so that clients reload it;
   our SDKs' epoch guard then refuses to merge the old lineage back;
5. consents, push subscriptions, and their name in audit records and version authorship;
6. on SQLite the files are rebuilt so that no deleted byte stays in free pages or the WAL.

Step 4 reads every live and trashed document of the tenant not owned by the principal (a byte
search of its stored content): O(tenant), acceptable for a rare administrative act.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from crdt.scrub import Scrubber
from storage import DocKey
from storage.erasure import SqlErasure
from storage.principal_data import PrincipalData

from .broker import AccessChanged
from .daemon import Daemon
from .peer import CloseCode

__all__ = ["erase_principal"]

log = logging.getLogger("syncd.erasure")


async def erase_principal(
    daemon: Daemon, tenant: str, sub: str, identifiers: Sequence[str] = ()
) -> dict[str, Any]:
    """Erase ``sub`` from ``tenant``; ``identifiers`` are more exact strings of their identity
    (e-mail addresses, display names) scrubbed like the id. Returns a summary (counts, and the
    documents of others that were rewritten)."""
    store = daemon.store
    data = PrincipalData(store)  # type: ignore[arg-type]
    erasure = SqlErasure(store, daemon.history)  # type: ignore[arg-type]
    scrubber = Scrubber([sub, *identifiers], fragments=identifiers)

    await erasure.record(tenant, sub)

    owned = await data.owned(tenant, sub)
    for row in owned:
        key = DocKey(tenant, row.name)
        if row.deleted_at is None:
            await daemon.rooms.delete(key)
        if not row.purged:
            await daemon.trash.purge(key)
    tombstones = await erasure.drop_tombstones(tenant, sub, [row.name for row in owned])

    revoked = 0
    for name, _role in await data.grants_held(tenant, sub):
        key = DocKey(tenant, name)
        meta = await store.meta(key)
        if meta is None or meta.deleted:
            continue  # in the trash: its grant rows go with the records below
        kept = {p: r for p, r in meta.grants.items() if p != sub}
        daemon.access_changed(await store.set_access(key, meta.mode, kept))
        revoked += 1

    rewritten: list[str] = []
    for row in await data.others_documents(tenant, sub):
        key = DocKey(tenant, row.name)
        done = await erasure.rewrite(key, scrubber, sub)
        if done is None:
            continue
        rewritten.append(row.name)
        if done.live:
            _reload_everywhere(daemon, key)

    counts = await erasure.forget_records(tenant, sub, scrubber)
    wiped = await erasure.wipe_files()
    log.info(
        "erased a principal of tenant %s: %d own documents purged, %d documents rewritten",
        tenant,
        len(owned),
        len(rewritten),
    )
    return {
        "erased": sub,
        "documents_purged": len(owned),
        "tombstones_removed": tombstones,
        "documents_rewritten": rewritten,
        "grants_removed": revoked + counts["grants"],
        "consents_removed": counts["consents"],
        "push_subscriptions_removed": counts["push_subscriptions"],
        "audit_records_rewritten": counts["audit_records"],
        # SQLite: whether the file was rebuilt and the WAL emptied (None on Postgres).
        "files_wiped": wiped,
    }


def _reload_everywhere(daemon: Daemon, key: DocKey) -> None:
    """Close the rewritten document's room here (its replica is of the old lineage; clients
    reconnect and get the new epoch) and tell the other nodes, which re-read its metadata and
    close theirs on seeing the new epoch."""
    room = daemon.rooms.get_loaded(key)
    if room is not None:
        room.close(CloseCode.TRY_AGAIN_LATER, "document rewritten: reconnect")
        daemon.rooms.release(room)  # a closed room is forgotten; the next open loads anew
    daemon.broker.publish(key, AccessChanged(daemon.broker.node_id))
