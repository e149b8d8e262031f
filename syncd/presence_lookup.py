"""Who is present in a document right now, asked by the push sender (DESIGN.md §1.12: never
push to a principal who is in that document at that moment).

Present means: a live awareness state stamped with that principal (docs/protocol.md
"Presence identity": the server writes ``principal`` into every state it relays, so it cannot
be forged). A loaded room already holds every node's states, its own clients' and those other
nodes relayed through the broker (``syncd/presence.py``), so the answer is a pass over the
room's live states: no database, no network.

A document not loaded on this node has nobody present *here*. On one node that is the answer.
In a cluster someone may be in it on another node; this node then loads the document (which
subscribes to its channel and asks the other nodes for their presence, ``PresenceWanted``) and
gives their answers ``CLUSTER_SETTLE_SECONDS`` to arrive over Redis (one round trip, about a
millisecond) before it reads the room. A node that does not answer in time (or Redis being
down) makes the answer "not present": a push too many, never a document left unreadable.
"""

from __future__ import annotations

import asyncio
import json

from storage import DocKey, DocumentDeleted

from .broker import Broker, BrokerState
from .room import Room
from .rooms import DocumentNotFound, Rooms

__all__ = ["PresenceLookup"]

CLUSTER_SETTLE_SECONDS = 0.25


def _principals(room: Room) -> set[str]:
    present = set()
    for entry in room.awareness.live():
        try:
            state = json.loads(entry.state)
        except ValueError:  # never: every stored state was parsed and re-serialised
            continue
        principal = state.get("principal") if isinstance(state, dict) else None
        if isinstance(principal, str):
            present.add(principal)
    return present


class PresenceLookup:
    def __init__(self, rooms: Rooms, broker: Broker) -> None:
        self.rooms = rooms
        self.broker = broker

    async def present(self, key: DocKey) -> set[str]:
        """The principals with a live presence state in ``key``."""
        room = self.rooms.get_loaded(key)
        if room is not None:
            return _principals(room)
        if self.broker.state is BrokerState.LOCAL:
            return set()
        try:
            room = await self.rooms.acquire(key, create=False)
        except (DocumentNotFound, DocumentDeleted):
            return set()
        try:
            await asyncio.sleep(CLUSTER_SETTLE_SECONDS)  # other nodes' presence, see above
            return _principals(room)
        finally:
            self.rooms.release(room)
