"""Closing the documents of a tenant whose data keys were shredded, on a running daemon.

``syncd keys shred`` works on the database, not on the daemons: a daemon that already holds a
tenant's documents in memory would go on serving them, and a shredded tenant must become
unreadable everywhere (docs/privacy.md, "Encryption at rest"). So, with a master key, every node
re-reads the key state of the tenants it has documents of once per ``interval`` (the key ring's
cache lifetime, ``SYNCD_KEY_CHECK_SECONDS``) and closes those documents (1013) once their
tenant is shredded; reconnecting, clients are refused like every reader of a shredded tenant,
never served an empty document. Without a master key it does nothing.
"""

from __future__ import annotations

import logging

from storage import SqlStore

from .peer import CloseCode
from .periodic import Periodic
from .rooms import Rooms

__all__ = ["KeyWatch"]

log = logging.getLogger("syncd.keys")


class KeyWatch(Periodic):
    def __init__(self, store: SqlStore, rooms: Rooms, interval: float) -> None:
        self.store = store
        self.rooms = rooms
        super().__init__("key check", interval, log, wait_first=True)

    def start(self) -> None:
        if self.store.sealing.on:  # without a master key there are no keys to watch
            super().start()

    async def run_pass(self) -> set[str]:
        """One pass: close the loaded documents of shredded tenants; returns those tenants."""
        tenants = {room.key.tenant for room in self.rooms.loaded()}
        shredded = await self.store.sealing.shredded(self.store._begin, tenants)
        for tenant in shredded:
            closed = self.rooms.close_tenant(
                tenant, CloseCode.TRY_AGAIN_LATER, "the tenant's data keys were shredded"
            )
            if closed:
                log.warning(
                    "tenant %r: its data keys were shredded; closed its %d open documents",
                    tenant,
                    closed,
                )
        return shredded
