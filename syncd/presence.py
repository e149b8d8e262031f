"""A document's presence (awareness) as its room holds it: who holds which client id, the
states with y-protocols' clock rules and syncd's bounds (``crdt.awareness``), and which ids came
from other nodes. No I/O: the room sends what these methods return."""

from __future__ import annotations

import logging

from crdt.awareness import (
    AwarenessEntry,
    AwarenessStates,
    StateTooLarge,
    decode_awareness,
    encode_awareness_update,
    stamp,
)
from crdt.protocol import ProtocolError, encode_awareness
from storage import DocKey

from .member import Member
from .peer import CloseCode

__all__ = ["Presence"]

log = logging.getLogger("syncd.room")


class Presence:
    def __init__(self, key: DocKey, states: AwarenessStates) -> None:
        self.key = key
        self.states = states
        self._holders: dict[int, Member] = {}  # client id -> the local member that claimed it
        self._by_node: dict[str, set[int]] = {}  # other node -> its clients' ids

    def greeting(self) -> bytes | None:
        """Everyone present, as one awareness message (``None``: nobody)."""
        live = self.states.live()
        return encode_awareness(encode_awareness_update(live)) if live else None

    def from_member(
        self, peer: Member, members: set[Member], update: bytes
    ) -> tuple[list[AwarenessEntry], bytes | None]:
        """Apply a member's presence update; return what changed (to relay) and the echo.

        Stock clients echo every awareness change they receive back to the server, other
        clients' states included, with the clock unchanged; so stale entries are skipped before
        anything else (they are never stored or relayed, so they need no parsing). Every other
        state is parsed as a stock client's ``JSON.parse`` would read it and written out again
        with ``principal`` set from the token (``crdt.awareness.stamp``): what others see can
        neither be forged nor break their ``applyAwarenessUpdate``. A client id belongs to the
        connection whose newer, non-null state first claimed it; a connection of the same
        principal may take it over (a client that reconnected before we noticed its old socket
        died), one of another principal may not touch it at all. The document's presence bounds
        (``self.states.limits``) are checked before anything changes, so a refused message
        changes nothing, and the per-connection one before any state is parsed.

        Returns:
            The accepted entries (the room relays them), and the echo ``/v1/sync`` sends back
            to the sender, as Hocuspocus does (a stock provider that hears nothing for 30 s
            drops its socket): for each client id of the update,
            what the room now holds for it, or the sender's state as validated and stamped when
            the room holds nothing (its presence was full); ``None`` for an empty update. So the
            echo never carries what the server did not parse and re-serialise; and a
            reconnected provider whose stale state meets the server's removal of it hears that
            removal, which makes it announce itself again with a newer clock.

        Raises:
            ProtocolError: a malformed update or state, or more client ids on this connection
                than ``max_ids_per_connection`` (4400). A state over ``max_state_bytes``
                closes the peer here, with 4413, and returns ``([], None)``.
        """
        limits = self.states.limits
        decoded = decode_awareness(update)
        # Only the entry that wins for each id counts (y-protocols applies them in order: the
        # highest clock, a removal at equal clocks), so a message repeating one id with rising
        # clocks costs one parse, not thousands.
        latest: dict[int, AwarenessEntry] = {}
        for e in decoded:
            prev = latest.get(e.client_id)
            if prev is None or (e.clock, e.removed) > (prev.clock, prev.removed):
                latest[e.client_id] = e

        def may_announce(client_id: int) -> bool:
            holder = self._holders.get(client_id)
            return (
                holder is None
                or holder is peer
                or holder not in members
                or holder.principal == peer.principal
            )

        owned = [
            e for e in latest.values() if self.states.accepts(e) and may_announce(e.client_id)
        ]
        # Before parsing anything: at most max_ids_per_connection states are parsed per message.
        claimed = {e.client_id for e in owned if not e.removed} - peer.awareness_ids
        if len(peer.awareness_ids) + len(claimed) > limits.max_ids_per_connection:
            raise ProtocolError(
                f"awareness for more than {limits.max_ids_per_connection} client ids "
                "on one connection"
            )
        try:
            owned = [stamp(e, peer.principal, max_bytes=limits.max_state_bytes) for e in owned]
        except StateTooLarge as exc:
            log.info("doc %s: peer %s: %s; closing 4413", self.key, peer.id, exc)
            peer.close(CloseCode.TOO_LARGE, str(exc))
            return [], None
        for e in owned:
            if e.removed:
                continue
            holder = self._holders.get(e.client_id)
            if holder is not None and holder is not peer:  # a reconnected client takes it over
                holder.awareness_ids.discard(e.client_id)
            self._holders[e.client_id] = peer
            peer.awareness_ids.add(e.client_id)
        refused_before = self.states.refused
        accepted = self.states.apply(owned)
        if self.states.refused and not refused_before:  # once per loaded document
            log.warning(
                "doc %s: presence is full (%d clients, %d bytes): new states are dropped "
                "(counted in syncd_awareness_refused)",
                self.key,
                len(self.states),
                self.states.live_bytes,
            )
        validated = {e.client_id: e for e in owned}
        echo = [
            self.states.get(cid) or validated[cid]
            for cid in dict.fromkeys(e.client_id for e in decoded)
            if self.states.get(cid) is not None or cid in validated
        ]
        return accepted, (encode_awareness(encode_awareness_update(echo)) if echo else None)

    def member_left(self, member: Member) -> list[AwarenessEntry]:
        """The member's connection closed: the removals to relay."""
        for cid in member.awareness_ids:
            if self._holders.get(cid) is member:
                del self._holders[cid]
        return self.states.remove(member.awareness_ids)

    def from_node(self, node: str, update: bytes) -> list[AwarenessEntry]:
        """Entries of another node's clients (validated and stamped there): what changed."""
        ids = self._by_node.setdefault(node, set())
        accepted = self.states.apply(decode_awareness(update))
        for e in accepted:
            if e.removed:
                ids.discard(e.client_id)
            else:
                ids.add(e.client_id)
        return accepted

    def node_gone(self, node: str) -> list[AwarenessEntry]:
        """``node`` stopped: the removals of its clients, to relay."""
        return self.states.remove(self._by_node.pop(node, set()))

    def of_members(self) -> list[AwarenessEntry]:
        """The live states of this node's own clients."""
        held = (self.states.get(cid) for cid in self._holders)
        return [e for e in held if e is not None and not e.removed]
