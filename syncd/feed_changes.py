"""``format=changes`` on the feed: each update event also carries its semantic changes.

Decoding an update needs the document as it was before it. A subscriber reads a document's
updates in order, so a small cache keeps one :class:`~crdt.changes.ChangeDecoder` per document
(and per purpose, see below) at the seq it has reached; a page that continues where the
previous one stopped costs only the new updates. Otherwise (first page, another subscriber
elsewhere in the log) the state before the event is rebuilt from the store. A ``reset`` event
restarts its document's decoder from the state it carries.

A purpose-bound reader (``syncd/feed_consent.py``) decodes against the document's consented
projection instead: withheld updates enter its decoder only as placeholders, and a cached
decoder is used only while every writer whose content it holds still consents (revoking
consent drops it: the next page rebuilds the projection without them).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from crdt.changes import ChangeDecoder
from crdt.protocol import ProtocolError
from crdt.replay import check_stored
from crdt.yrs_guard import YrsFailure, guarded
from storage import DocKey, FeedEvent, Store
from storage.feed import ConsentedHistory, read_consented_history

from .feed_consent import ConsentGate, filler, project

__all__ = ["ChangeStreams"]

log = logging.getLogger("syncd.feed")


@dataclass
class _Stream:
    decoder: ChangeDecoder
    seq: int
    revealed: set[str] = field(default_factory=set)  # consenting writers in its document


class ChangeStreams:
    def __init__(self, store: Store, max_documents: int = 256) -> None:
        self.store = store
        self.max_documents = max_documents  # bound of the decoder cache (LRU)
        self._decoders: OrderedDict[tuple[DocKey, str | None], _Stream] = OrderedDict()

    def revealed(self, tenant: str, docs: Iterable[str], purpose: str) -> set[str]:
        """The writers whose content the cached decoders of ``docs`` for ``purpose`` hold: the
        page's consent query asks about them too."""
        out: set[str] = set()
        for doc in docs:
            stream = self._decoders.get((DocKey(tenant, doc), purpose))
            if stream is not None:
                out |= stream.revealed
        return out

    async def annotate(
        self,
        tenant: str,
        events: list[FeedEvent],
        rendered: list[dict[str, Any]],
        gate: ConsentGate | None = None,
    ) -> None:
        """Add ``changes`` (a list of change dicts) to each rendered event, in place; withheld
        events get none, but advance their document's decoder with their placeholder."""
        purpose = gate.purpose if gate is not None else None
        # Rebuilt during this page: their projections read consent themselves, just now.
        fresh: set[tuple[DocKey, str | None]] = set()
        for event, out in zip(events, rendered, strict=True):
            slot = (DocKey(tenant, event.doc), purpose)
            if event.type == "reset":
                await self._reset(slot, event, gate)
                out["changes"] = []
                continue
            withheld = gate is not None and not gate.consents(event)
            stream = self._decoders.get(slot)
            if (
                stream is None
                or stream.seq != event.seq - 1
                or (
                    gate is not None and slot not in fresh and not gate.all_consent(stream.revealed)
                )
            ):
                stream = await self._rebuild(slot, event.seq)
                fresh.add(slot)
                if stream is None:
                    if not withheld:
                        out["changes"] = None  # its history is gone: a reset will follow
                    continue
            data = filler(event.data) if withheld else event.data
            try:
                # Stored before the strict decoder existed, an update could still crash yrs.
                check_stored(data)
                changes = guarded(stream.decoder.apply, data, principal=event.principal)
            except (ProtocolError, YrsFailure) as exc:
                log.error(
                    "doc %s: cannot decode the changes of seq %d: %s", slot[0], event.seq, exc
                )
                self._decoders.pop(slot, None)
                if not withheld:
                    out["changes"] = None
                continue
            except Exception:
                log.exception("doc %s: could not decode the changes of seq %d", slot[0], event.seq)
                self._decoders.pop(slot, None)
                if not withheld:
                    out["changes"] = None
                continue
            if not withheld:
                out["changes"] = [c.to_json() for c in changes]
                if gate is not None and event.principal in gate.granted:
                    stream.revealed.add(event.principal)
            stream.seq = event.seq
            self._keep(slot, stream)

    async def _reset(
        self, slot: tuple[DocKey, str | None], event: FeedEvent, gate: ConsentGate | None
    ) -> None:
        state = event.data
        if gate is not None:  # a snapshot's writers are unknown: only its placeholder
            state, _ = await asyncio.to_thread(project, ConsentedHistory(event.data, []))
        try:
            self._keep(slot, _Stream(guarded(ChangeDecoder, state), event.seq))
        except YrsFailure as exc:
            log.error("doc %s: cannot read the reset at seq %d: %s", slot[0], event.seq, exc)
            self._decoders.pop(slot, None)

    async def _rebuild(self, slot: tuple[DocKey, str | None], seq: int) -> _Stream | None:
        """The decoder at the state just before ``seq``; ``None`` if that history is gone."""
        key, purpose = slot
        revealed: set[str] = set()
        if purpose is None:
            before = await self.store.state_before(key, seq)
            if before is None and seq > 1:
                return None
        else:
            history = await self._consented_history(key, seq, purpose)
            if history is None:
                return None
            before, revealed = await asyncio.to_thread(project, history)
        try:
            return _Stream(guarded(ChangeDecoder, before), seq - 1, revealed)
        except YrsFailure as exc:
            log.error("doc %s: no state before seq %d: %s", key, seq, exc)
            return None

    async def _consented_history(
        self, key: DocKey, seq: int, purpose: str
    ) -> ConsentedHistory | None:
        store = self.store  # the SQL store (the daemon asserts it): its sealing opens the rows
        async with store._begin(  # type: ignore[attr-defined]
            tenants=[key.tenant], write=False, snapshot=True
        ) as conn:
            return await read_consented_history(
                conn,
                key.tenant,
                key.name,
                seq,
                purpose,
                sealing=store.sealing,  # type: ignore[attr-defined]
            )

    def _keep(self, slot: tuple[DocKey, str | None], stream: _Stream) -> None:
        self._decoders[slot] = stream
        self._decoders.move_to_end(slot)
        while len(self._decoders) > self.max_documents:
            self._decoders.popitem(last=False)
