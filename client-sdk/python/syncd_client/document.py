"""One document opened through a :class:`~syncd_client.Client`: a pycrdt replica that syncs.

Acknowledgements: the server answers every sync step 2 / update this client sends on
``/v1/sync`` with ``SyncStatus`` (true: durably stored; false: refused), in order, per document.
Each message sent is remembered with the highest outbox id it covers; when its acknowledgement
arrives, the outbox is cleared up to that id. A sync step 2 covers the whole outbox (it is
everything the server lacks), a live update covers its own entry.

Epoch: nothing of the document is sent before the server's epoch message (``epoch.py``) has
been checked against the stored one. Until then the document stays ``AUTHENTICATING`` and local
edits wait in the outbox. A different epoch replaces :attr:`Document.doc` by a new, empty
replica that takes the server's content (views taken with :meth:`journal`/:meth:`canvas` before
read the old one: take them again when :attr:`resets` changes); the old replica becomes a
recovered copy if it held unacknowledged edits.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pycrdt

from crdt.awareness import AwarenessEntry, decode_awareness, encode_awareness_update
from crdt.hocuspocus import (
    Authenticated,
    Close,
    HpMessage,
    PermissionDenied,
    Stateless,
    SyncStatus,
    Token,
)
from crdt.protocol import AwarenessMessage, QueryAwarenessMessage, SyncMessage, SyncStep

from .epoch import RecoveredCopy, parse_epoch_message

if TYPE_CHECKING:
    from crdt.schemas import Canvas, Journal

    from .offline_store import OfflineStore

__all__ = ["Document", "DocumentState"]

log = logging.getLogger("syncd_client")

Send = Callable[[str, HpMessage], bool]
OnRecovered = Callable[[RecoveredCopy], None]


class DocumentState(enum.Enum):
    OFFLINE = "offline"  # not connected (edits go to the outbox)
    AUTHENTICATING = "authenticating"  # until the server's epoch has been checked
    SYNCING = "syncing"  # authenticated, exchanging state, or unacknowledged edits remain
    SAVED = "saved"  # the server holds everything this replica has
    DENIED = "denied"  # the server refused access (see ``denied_reason``)


class Document:
    def __init__(
        self,
        name: str,
        store: OfflineStore,
        send: Send,
        on_recovered: OnRecovered | None = None,
    ) -> None:
        self.name = name
        self.doc = pycrdt.Doc()
        self.resets = 0  # times the replica was replaced after an epoch change
        self._on_recovered = on_recovered
        self._epoch_checked = False
        self.scope: str | None = None
        self.denied_reason: str | None = None
        self.awareness: dict[int, Any] = {}
        self._store = store
        self._send = send
        self._inflight: deque[int] = deque()  # outbox id covered by each unacknowledged message
        self._server_synced = False
        self._state = DocumentState.OFFLINE
        self._changed = asyncio.Event()
        self._applying_remote = False
        self._awareness_clock = 0
        self._local_awareness: str | None = None
        saved = store.state(name)
        if saved:
            self.doc.apply_update(saved)
        for _, update in store.pending(name):  # edits made before a restart, not yet stored
            self.doc.apply_update(update)
        self._subscription = self.doc.observe(self._on_transaction)

    # -- public API --------------------------------------------------------------------------

    @property
    def state(self) -> DocumentState:
        return self._state

    @property
    def epoch(self) -> str | None:
        """The server epoch this replica belongs to; ``None`` before its first sync."""
        return self._store.epoch(self.name)

    @property
    def recovered(self) -> list[RecoveredCopy]:
        """This document's recovered copies (see :attr:`Client.recovered`)."""
        return self._store.recovered(self.name)

    @property
    def unsynced(self) -> int:
        """Local edits the server has not acknowledged yet."""
        return self._store.count(self.name)

    @property
    def readonly(self) -> bool:
        return self.scope == "readonly"

    def journal(self) -> Journal:
        from crdt.schemas import Journal

        return Journal(self.doc)

    def canvas(self, author: str | None = None) -> Canvas:
        from crdt.schemas import Canvas

        return Canvas(self.doc, author=author)

    def set_awareness(self, state: dict[str, Any] | None) -> None:
        """Publish this client's presence (the server adds ``principal`` from the token)."""
        self._awareness_clock += 1
        self._local_awareness = "null" if state is None else json.dumps(state)
        self._send_awareness()

    async def wait_saved(self, timeout: float | None = None) -> None:
        await self._wait(lambda: self._state is DocumentState.SAVED, timeout)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> None:
        """Wait until ``predicate()`` holds, re-checked after every change to this document."""
        await self._wait(predicate, timeout)

    # -- connection events (called by the Client) ----------------------------------------------

    def connected(self, token: str) -> None:
        self._inflight.clear()
        self._server_synced = False
        self._epoch_checked = False
        self.denied_reason = None
        self._set_state(DocumentState.AUTHENTICATING)
        self._send(self.name, Token(token))

    def disconnected(self) -> None:
        self._inflight.clear()
        self._server_synced = False
        self.awareness.clear()
        if self._state is not DocumentState.DENIED:
            self._set_state(DocumentState.OFFLINE)
        self.save()

    def receive(self, message: HpMessage) -> None:
        match message:
            case Authenticated(scope):
                self.scope = scope
                if self._epoch_checked:  # the scope changed on an open document
                    self._open()
            case Stateless(payload):
                epoch = parse_epoch_message(payload)
                if epoch is not None and not self._epoch_checked:
                    self._check_epoch(epoch)
                    self._open()
            case SyncMessage() if not self._epoch_checked:
                # Only a server that predates epochs sends its sync step 1 without one first.
                log.info("syncd_client: %s: the server sent no epoch; syncing anyway", self.name)
                self._epoch_checked = True
                self._open()
                self.receive(message)
                return
            case PermissionDenied(reason):
                self.denied_reason = reason
                self._set_state(DocumentState.DENIED)
            case Close(reason):
                self.denied_reason = reason or "closed by the server"
                self._set_state(DocumentState.DENIED)
            case SyncMessage(SyncStep.STEP1, state_vector):
                self._send_update(SyncStep.STEP2, self.doc.get_update(state_vector), covers=None)
            case SyncMessage(step, update):
                self._apply_remote(update)
                if step is SyncStep.STEP2:
                    self._server_synced = True
                    self.save()
            case SyncStatus(stored):
                covered = self._inflight.popleft() if self._inflight else 0
                if stored and covered:
                    self._store.acknowledge(self.name, covered)
            case AwarenessMessage(update):
                for e in decode_awareness(update):
                    if e.removed:
                        self.awareness.pop(e.client_id, None)
                    else:
                        self.awareness[e.client_id] = json.loads(e.state)
            case QueryAwarenessMessage():
                self._send_awareness()
        self._update_state()

    # -- internals -------------------------------------------------------------------------------

    def _open(self) -> None:
        """The epoch is checked: our sync step 1 (the server answers with what we lack, and
        its own step 1 asks for what it lacks), then presence."""
        self._set_state(DocumentState.SYNCING)
        self._send(self.name, SyncMessage(SyncStep.STEP1, self.doc.get_state()))
        if self._local_awareness is not None:
            self._send_awareness()

    def _check_epoch(self, epoch: str) -> None:
        self._epoch_checked = True
        stored = self._store.epoch(self.name)
        if stored is None:
            self._store.save_epoch(self.name, epoch)  # first sync: adopt it, merge as usual
        elif stored != epoch:
            self._reset(epoch)

    def _reset(self, epoch: str) -> None:
        """The server's history is not the one this replica grew from: set the replica aside
        and start again from nothing under ``epoch``."""
        unsent = [update for _, update in self._store.pending(self.name)]
        copy = self._store.reset(self.name, epoch, self.doc.get_update(), unsent)
        log.warning(
            "syncd_client: %s: the server's history was rewritten (epoch %s); %d unsent edits "
            "kept in a recovered copy, not merged",
            self.name,
            epoch,
            len(unsent),
        )
        self.doc.unobserve(self._subscription)
        self.doc = pycrdt.Doc()
        self._subscription = self.doc.observe(self._on_transaction)
        self.resets += 1
        if copy is not None and self._on_recovered is not None:
            try:
                self._on_recovered(copy)
            except Exception:
                log.exception("syncd_client: %s: the on_recovered callback failed", self.name)

    def save(self) -> None:
        self._store.save_state(self.name, self.doc.get_update())

    def _on_transaction(self, event: Any) -> None:
        if self._applying_remote:
            return
        outbox_id = self._store.add(self.name, event.update)  # durable before anything else
        if self._state in (DocumentState.SYNCING, DocumentState.SAVED) and not self.readonly:
            self._send_update(SyncStep.UPDATE, event.update, covers=outbox_id)
        self._update_state()

    def _send_update(self, step: SyncStep, update: bytes, covers: int | None) -> None:
        if covers is None:
            covers = self._store.last_id(self.name)
        if self._send(self.name, SyncMessage(step, update)):
            self._inflight.append(covers)

    def _send_awareness(self) -> None:
        if self._local_awareness is None or self._state not in (
            DocumentState.SYNCING,
            DocumentState.SAVED,
        ):
            return
        entry = AwarenessEntry(self.doc.client_id, self._awareness_clock, self._local_awareness)
        self._send(self.name, AwarenessMessage(encode_awareness_update([entry])))

    def _apply_remote(self, update: bytes) -> None:
        self._applying_remote = True
        try:
            self.doc.apply_update(update)
        finally:
            self._applying_remote = False

    def _update_state(self) -> None:
        if self._state in (DocumentState.SYNCING, DocumentState.SAVED):
            saved = self._server_synced and not self._inflight and self.unsynced == 0
            self._set_state(DocumentState.SAVED if saved else DocumentState.SYNCING)
        self._changed.set()

    def _set_state(self, state: DocumentState) -> None:
        self._state = state
        self._changed.set()

    async def _wait(self, predicate: Callable[[], bool], timeout: float | None) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                if self._state is DocumentState.DENIED:
                    raise PermissionError(f"{self.name}: {self.denied_reason}")
                self._changed.clear()
                await self._changed.wait()
