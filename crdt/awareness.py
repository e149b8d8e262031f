"""Awareness (presence) state kept by the server, as y-protocols' ``awareness.js`` does.

An awareness update is ``varUint(n)`` then n times ``varUint(clientID) varUint(clock)
varString(json state)``; the state ``"null"`` removes a client. The server does not parse the
JSON states (it never needs their content); it only orders them by clock so that a stale update
cannot resurrect a client that left.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .protocol import Decoder, ProtocolError, write_var_string, write_var_uint

__all__ = ["AwarenessEntry", "AwarenessStates", "decode_awareness", "encode_awareness_update"]

NULL_STATE = "null"


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    client_id: int
    clock: int
    state: str  # JSON text; "null" means the client is gone

    @property
    def removed(self) -> bool:
        return self.state == NULL_STATE


def decode_awareness(update: bytes) -> list[AwarenessEntry]:
    dec = Decoder(update)
    count = dec.read_var_uint()
    if count > len(update):  # each entry takes at least 3 bytes: reject absurd counts early
        raise ProtocolError("awareness update announces more entries than it holds")
    entries = [
        AwarenessEntry(dec.read_var_uint(), dec.read_var_uint(), dec.read_var_string())
        for _ in range(count)
    ]
    dec.expect_end()
    return entries


def encode_awareness_update(entries: list[AwarenessEntry]) -> bytes:
    parts = [write_var_uint(len(entries))]
    for e in entries:
        parts.append(write_var_uint(e.client_id))
        parts.append(write_var_uint(e.clock))
        parts.append(write_var_string(e.state))
    return b"".join(parts)


class AwarenessStates:
    """The latest state of every client of one document, with y-protocols' clock rules."""

    __slots__ = ("_gone", "_states", "max_gone")

    def __init__(self, max_gone: int = 4096) -> None:
        self._states: dict[int, AwarenessEntry] = {}
        # Removed clients keep their clock (as a "null" entry) so that a delayed older update
        # from them is recognised as stale. Every browser tab is a new client id, so a busy
        # document would collect them forever: only the last ``max_gone`` are remembered.
        self._gone: deque[int] = deque()
        self.max_gone = max_gone

    def accepts(self, e: AwarenessEntry) -> bool:
        """Whether ``e`` is newer than what we hold (y-protocols' rule)."""
        current = self._states.get(e.client_id)
        return (
            current is None
            or current.clock < e.clock
            or (current.clock == e.clock and e.removed and not current.removed)
        )

    def apply(self, entries: list[AwarenessEntry]) -> list[AwarenessEntry]:
        """Apply entries; return those that changed something (to relay to the other peers)."""
        accepted = []
        for e in entries:
            if self.accepts(e):
                self._states[e.client_id] = e
                accepted.append(e)
                if e.removed:
                    self._forget_later(e.client_id)
        return accepted

    def remove(self, client_ids: set[int]) -> list[AwarenessEntry]:
        """Mark clients gone (their connection closed); return the removal entries to relay."""
        removed = []
        for cid in client_ids:
            current = self._states.get(cid)
            if current is not None and not current.removed:
                entry = AwarenessEntry(cid, current.clock + 1, NULL_STATE)
                self._states[cid] = entry
                removed.append(entry)
                self._forget_later(cid)
        return removed

    def _forget_later(self, client_id: int) -> None:
        self._gone.append(client_id)
        while len(self._gone) > self.max_gone:
            old = self._gone.popleft()
            entry = self._states.get(old)
            if entry is not None and entry.removed:
                del self._states[old]

    def live(self) -> list[AwarenessEntry]:
        return [e for e in self._states.values() if not e.removed]

    def __len__(self) -> int:
        return sum(1 for e in self._states.values() if not e.removed)
