"""``format=changes`` on the feed: each update event also carries its semantic changes.

Decoding an update needs the document as it was before it. A subscriber reads a document's
updates in order, so a small cache keeps one :class:`~crdt.changes.ChangeDecoder` per document
at the seq it has reached; a page that continues where the previous one stopped costs only the
new updates. Otherwise (first page, another subscriber elsewhere in the log) the state before
the event is rebuilt from the store. A ``reset`` event restarts its document's decoder from the
state it carries.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from crdt.changes import ChangeDecoder
from crdt.protocol import ProtocolError
from crdt.replay import check_stored
from crdt.yrs_guard import YrsFailure, guarded
from storage import DocKey, FeedEvent, Store

__all__ = ["ChangeStreams"]

log = logging.getLogger("syncd.feed")


class ChangeStreams:
    def __init__(self, store: Store, max_documents: int = 256) -> None:
        self.store = store
        self.max_documents = max_documents  # bound of the decoder cache (LRU)
        self._decoders: OrderedDict[DocKey, tuple[ChangeDecoder, int]] = OrderedDict()

    async def annotate(
        self, tenant: str, events: list[FeedEvent], rendered: list[dict[str, Any]]
    ) -> None:
        """Add ``changes`` (a list of change dicts) to each rendered event, in place."""
        for event, out in zip(events, rendered, strict=True):
            key = DocKey(tenant, event.doc)
            if event.type == "reset":
                try:
                    self._keep(key, guarded(ChangeDecoder, event.data), event.seq)
                except YrsFailure as exc:
                    log.error("doc %s: cannot read the reset at seq %d: %s", key, event.seq, exc)
                    self._decoders.pop(key, None)
                out["changes"] = []
                continue
            cached = self._decoders.get(key)
            if cached is not None and cached[1] == event.seq - 1:
                decoder = cached[0]
            else:
                before = await self.store.state_before(key, event.seq)
                if before is None and event.seq > 1:
                    out["changes"] = None  # its history is gone: a reset will follow
                    continue
                try:
                    decoder = guarded(ChangeDecoder, before)
                except YrsFailure as exc:
                    log.error("doc %s: no state before seq %d: %s", key, event.seq, exc)
                    out["changes"] = None
                    continue
            try:
                # Stored before the strict decoder existed, an update could still crash yrs.
                check_stored(event.data)
                changes = guarded(decoder.apply, event.data, principal=event.principal)
            except (ProtocolError, YrsFailure) as exc:
                log.error("doc %s: cannot decode the changes of seq %d: %s", key, event.seq, exc)
                self._decoders.pop(key, None)
                out["changes"] = None
                continue
            except Exception:
                log.exception("doc %s: could not decode the changes of seq %d", key, event.seq)
                self._decoders.pop(key, None)
                out["changes"] = None
                continue
            out["changes"] = [c.to_json() for c in changes]
            self._keep(key, decoder, event.seq)

    def _keep(self, key: DocKey, decoder: ChangeDecoder, seq: int) -> None:
        self._decoders[key] = (decoder, seq)
        self._decoders.move_to_end(key)
        while len(self._decoders) > self.max_documents:
            self._decoders.popitem(last=False)
