"""The Broker: how the nodes of one cluster tell each other what happened (DESIGN.md §1.9).

Redis carries speed, never truth. A node publishes an update only after its commit, with the
``seq`` range the database gave it, so a receiver knows exactly where it fits; a receiver that
sees a jump in ``seq`` (a message lost while Redis restarted, a dropped subscription) reads the
missing updates from the store, which holds everything acknowledged. Nothing here is needed for
durability, only for other nodes' clients to see changes live.

What crosses, per document: committed updates, presence changes, access changes, deletions; per
cluster: feed wake-ups (a commit anywhere wakes feed readers everywhere) and node heartbeats (a
node that stops beating has its clients' presence removed by the others).

:class:`LocalBroker` is the one-node default: it carries nothing. ``syncd/redis_broker.py`` has
the Redis implementation.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from storage import DocKey

__all__ = [
    "AccessChanged",
    "Broker",
    "BrokerState",
    "ClusterEvents",
    "Deleted",
    "DocumentEvent",
    "LocalBroker",
    "PresenceChanged",
    "PresenceWanted",
    "UpdatesCommitted",
]


class BrokerState(enum.Enum):
    LOCAL = "local"  # one node: nothing to carry
    OK = "ok"
    UNAVAILABLE = "unavailable"  # this node commits durably but cannot reach the others


@dataclass(frozen=True, slots=True)
class UpdatesCommitted:
    """Updates ``first_seq``..``last_seq`` of a document, committed by ``node``, merged."""

    node: str
    first_seq: int
    last_seq: int
    update: bytes


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    """Awareness entries of ``node``'s clients, already validated and stamped there."""

    node: str
    update: bytes


@dataclass(frozen=True, slots=True)
class PresenceWanted:
    """``node`` just subscribed to the document: the others send their clients' presence."""

    node: str


@dataclass(frozen=True, slots=True)
class AccessChanged:
    node: str


@dataclass(frozen=True, slots=True)
class Deleted:
    node: str


DocumentEvent = UpdatesCommitted | PresenceChanged | PresenceWanted | AccessChanged | Deleted


class ClusterEvents(Protocol):
    """What a node does with what the broker brings (the Daemon implements it)."""

    def document_event(self, key: DocKey, event: DocumentEvent) -> None:
        """An event of a document this node watches, from another node."""

    def feed_wake_up(self) -> None:
        """Another node committed something: feed readers should look again."""

    def resync(self) -> None:
        """Messages may have been lost (reconnected to Redis): check every open document."""

    def watching(self, key: DocKey) -> None:
        """The subscription to ``key`` is active: what was committed or changed before it (while
        the document was being loaded) must be read from the store once."""

    def node_gone(self, node: str) -> None:
        """``node`` stopped (or stopped beating): forget its clients' presence."""


class Broker(Protocol):
    node_id: str

    @property
    def state(self) -> BrokerState: ...

    async def start(self, events: ClusterEvents) -> None: ...

    async def stop(self) -> None: ...

    def watch(self, key: DocKey) -> None:
        """Receive the events of ``key`` (a room for it is loaded here)."""

    def unwatch(self, key: DocKey) -> None: ...

    def publish(self, key: DocKey, event: DocumentEvent) -> None:
        """Tell the other nodes watching ``key``. Never waits: at a full queue or without Redis
        the event is dropped (receivers fill the gap from the store)."""

    def committed(self) -> None:
        """A commit happened here: wake other nodes' feed readers."""


class LocalBroker:
    """One node: nothing to tell anyone."""

    node_id = "local"

    @property
    def state(self) -> BrokerState:
        return BrokerState.LOCAL

    async def start(self, events: ClusterEvents) -> None:
        return None

    async def stop(self) -> None:
        return None

    def watch(self, key: DocKey) -> None:
        return None

    def unwatch(self, key: DocKey) -> None:
        return None

    def publish(self, key: DocKey, event: DocumentEvent) -> None:
        return None

    def committed(self) -> None:
        return None
