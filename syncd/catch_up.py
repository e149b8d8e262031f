"""How a room's replica keeps up with the commits of other nodes.

With several nodes writing one document, a node's replica takes its own commits at once and
other nodes' through the broker (``syncd/broker.py``) a moment later, out of order; a message
lost on the way leaves a gap that only the store can fill. :class:`CatchUp` is that bookkeeping
for one room: which seqs the replica holds (``SeqRanges``), the highest seq it was told is
committed, other nodes' updates waiting beyond a gap, and when to read what is missing from the
store (after ``GAP_GRACE_SECONDS``, as the missing message is usually a moment behind; at once
after a resync).

It is an object the room owns, not a part of ``Room``, because it knows only seqs: it never
touches the replica or the peers. The room's flush task runs :meth:`CatchUp.take`, which hands
each range, in seq order, to the room's ``apply`` callback, so the replica is still written by
one task only. The callbacks are passed to each call, not kept: a room and its ``CatchUp`` form
no reference cycle, so an unloaded room is freed at once, not at the next full collection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from storage import DocKey, Store

from .broker import UpdatesCommitted
from .seq_ranges import SeqRanges

__all__ = ["GAP_GRACE_SECONDS", "CatchUp"]

log = logging.getLogger("syncd.room")  # the room's records, wherever the code sits

# Applies one committed range to the replica (see CatchUp); False: it could not.
Apply = Callable[[int, int, bytes], bool]

# How long a missing seq may stay missing before it is read from the store: another node's
# message for it is usually a moment behind ours.
GAP_GRACE_SECONDS = 0.15


class CatchUp:
    """The committed seqs of one room's replica, and how it gets those it lacks.

    ``apply`` (of :meth:`take` and :meth:`apply_waiting`) applies one committed range
    ``(first, last, update)`` to the replica, records it in :attr:`held` and sends it to the
    local peers; it returns ``False`` if the replica could not take it (the room then reloads
    it from the store). ``kick`` (of :meth:`fill_after_grace`) starts the room's flush task,
    which runs :meth:`take`.
    """

    def __init__(self, key: DocKey, store: Store) -> None:
        self._key = key
        self._store = store  # where a lag is filled from
        # Which seqs the replica holds; other nodes' commits arrive out of order.
        self.held = SeqRanges()
        self._known = 0  # the highest seq we have been told is committed
        self._waiting: dict[int, UpdatesCommitted] = {}  # other nodes' updates beyond a gap
        self._gap_timer: asyncio.TimerHandle | None = None
        self._fill_now = False
        self._received: list[UpdatesCommitted] = []  # received, not yet applied

    @property
    def has_received(self) -> bool:
        """Whether other nodes' updates wait for :meth:`take`."""
        return bool(self._received)

    @property
    def due(self) -> bool:
        """Whether :meth:`take` has something to do (updates received, or a fill due)."""
        return bool(self._received) or self._fill_now

    @property
    def lagging(self) -> bool:
        """Whether the replica lacks a seq it was told is committed (a gap, or behind)."""
        return self.held.gap is not None or self._known > self.held.highest

    def adopt(self, seq: int) -> None:
        """The replica was just loaded from the store at ``seq``."""
        self.held.reset(seq)
        self._waiting = {s: u for s, u in self._waiting.items() if u.first_seq > seq}

    def received(self, event: UpdatesCommitted) -> None:
        """Another node committed ``event``'s updates (applied by the next :meth:`take`)."""
        self._known = max(self._known, event.last_seq)
        self._received.append(event)

    def told(self, committed_seq: int) -> bool:
        """The store says the document is at ``committed_seq``: if the replica lacks some of
        it, the next :meth:`take` fetches it at once. Returns whether it lacks any."""
        if committed_seq <= self.held.highest:
            return False
        self._known = max(self._known, committed_seq)
        self._fill_now = True
        return True

    def fill_after_grace(self, kick: Callable[[], None]) -> None:
        """The replica lags: read what it lacks from the store after ``GAP_GRACE_SECONDS``,
        unless the missing messages arrive first (or a fill is already armed or due)."""
        if self._gap_timer is None and not self._fill_now:
            loop = asyncio.get_running_loop()
            self._gap_timer = loop.call_later(GAP_GRACE_SECONDS, self._fill, kick)

    def cancel(self) -> None:
        """The room closed: no fill any more."""
        if self._gap_timer is not None:
            self._gap_timer.cancel()

    def _fill(self, kick: Callable[[], None]) -> None:
        self._gap_timer = None
        if self.lagging:
            self._fill_now = True
            kick()

    async def take(self, apply: Apply) -> bool:
        """Apply what was received that continues the held prefix, then, if due, what the
        store has of the rest. Returns ``False`` if the replica must be reloaded from the
        store (it could not take an update, or the store no longer has those to fill a lag).

        Raises:
            StoreUnavailable: the store could not be read.
        """
        events, self._received = self._received, []
        for event in events:
            if not self.held.holds(event.first_seq, event.last_seq):
                self._waiting[event.first_seq] = event
        ok = self.apply_waiting(apply)
        if not self._fill_now:
            return ok
        self._fill_now = False
        target = max(self._known, self.held.highest)
        after = self.held.upto
        if target <= after:
            return ok
        rows = await self._store.updates_between(self._key, after, target)
        if rows is None:  # pruned meanwhile, or deleted: start again from the store
            return False
        log.info("doc %s: filling seqs %d..%d from the store", self._key, after + 1, target)
        missing = [(s, s, u) for s, u in rows if not self.held.holds(s, s)]
        if not (_apply_all(apply, missing) and ok):
            return False
        self.held.add(after + 1, target)  # quarantined seqs are left out, but not missing
        return self.apply_waiting(apply)

    def apply_waiting(self, apply: Apply) -> bool:
        """Apply the received updates that continue the held prefix, in seq order. Returns
        ``False`` if the replica could not take one (the room reloads it)."""
        ok = True
        while (event := self._waiting.pop(self.held.upto + 1, None)) is not None:
            ok = apply(event.first_seq, event.last_seq, event.update) and ok
        for first in [f for f, e in self._waiting.items() if self.held.holds(f, e.last_seq)]:
            del self._waiting[first]
        return ok


def _apply_all(apply: Apply, ranges: list[tuple[int, int, bytes]]) -> bool:
    """Apply ``ranges`` in order, stopping at the first the replica cannot take."""
    return all(apply(first, last, update) for first, last, update in ranges)
