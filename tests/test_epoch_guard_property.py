"""A property of the Python SDK's epoch guard: whatever the interleaving of offline edits,
connections, restarts (a fresh client id) and history rewrites on the server, nothing of an old
lineage reaches the server, nothing is duplicated, no edit is lost (it is on the server in its
own lineage, or in a recovered copy), and a reset happens exactly when the epoch changed.

The server here is a model of what ``/v1/sync`` does for one document (``Authenticated``, the
epoch, sync step 1 and 2, ``SyncStatus``), delivering frames in order through queues: the SDK's
``Document`` is driven as the ``Client`` drives it, over a real SQLite offline store. The real
daemon and real sockets are ``tests/test_epoch_guard.py``.
"""

from __future__ import annotations

import secrets
from collections import deque
from pathlib import Path

import pycrdt
from hypothesis import given, settings
from hypothesis import strategies as st
from syncd_client import OfflineStore
from syncd_client.document import Document

from crdt.hocuspocus import Authenticated, HpMessage, Stateless, SyncStatus, Token
from crdt.protocol import SyncMessage, SyncStep
from syncd.sync_socket import epoch_message

NAME = "alice/board"


class ModelServer:
    """One document's lineages: a new epoch and an empty pycrdt document at each rewrite."""

    def __init__(self) -> None:
        self.epoch = secrets.token_hex(16)
        self.doc = pycrdt.Doc()
        self.lineages: list[tuple[str, pycrdt.Doc]] = [(self.epoch, self.doc)]
        self.inbox: deque[HpMessage] = deque()  # client -> server, in order
        self.outbox: deque[HpMessage] = deque()  # server -> client, in order
        self.open = False

    def rewrite(self, seed: str) -> None:
        self.epoch = secrets.token_hex(16)
        self.doc = pycrdt.Doc()
        self.doc.get("log", type=pycrdt.Array).append(seed)
        self.lineages.append((self.epoch, self.doc))
        self.open = False  # a purge closes live clients

    def serve(self, message: HpMessage) -> None:
        match message:
            case Token():
                self.open = True
                self.outbox += [
                    Authenticated("read-write"),
                    Stateless(epoch_message(self.epoch)),
                    SyncMessage(SyncStep.STEP1, self.doc.get_state()),
                ]
            case SyncMessage(SyncStep.STEP1, state_vector) if self.open:
                self.outbox.append(SyncMessage(SyncStep.STEP2, self.doc.get_update(state_vector)))
            case SyncMessage(_, update) if self.open:
                self.doc.apply_update(update)
                self.outbox.append(SyncStatus(True))


class Device:
    """A device with its offline store; ``restart`` gives a fresh Document (a new client id)."""

    def __init__(self, path: Path, server: ModelServer) -> None:
        self.store = OfflineStore(path)
        self.server = server
        self.connected = False
        self.doc = self._open()
        self.resets = 0

    def _send(self, _address: str, message: HpMessage) -> bool:
        if not self.connected:
            return False
        self.server.inbox.append(message)
        return True

    def _open(self) -> Document:
        return Document(NAME, self.store, self._send)

    def restart(self) -> None:
        self.disconnect()
        self.resets += self.doc.resets
        self.doc = self._open()

    def connect(self) -> None:
        self.connected = True
        self.doc.connected("token")
        self.pump()

    def disconnect(self) -> None:
        if self.connected:
            self.connected = False
            self.server.open = False
            self.server.inbox.clear()
            self.server.outbox.clear()
            self.doc.disconnected()

    def pump(self) -> None:
        while self.connected and (self.server.inbox or self.server.outbox):
            while self.server.inbox:
                self.server.serve(self.server.inbox.popleft())
            while self.server.outbox and self.connected:
                self.doc.receive(self.server.outbox.popleft())

    def edit(self, text: str) -> None:
        self.doc.doc.get("log", type=pycrdt.Array).append(text)
        self.pump()


operations = st.lists(
    st.sampled_from(["edit", "edit", "edit", "connect", "disconnect", "restart", "rewrite"]),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(operations)
def test_no_old_lineage_on_the_server_and_no_edit_lost(tmp_path_factory, ops):
    path = tmp_path_factory.mktemp("device") / "offline.db"
    server = ModelServer()
    device = Device(path, server)
    edits: list[str] = []
    expected_resets = 0
    # The lineage the device's replica belongs to: None until its first sync adopts one.
    replica_epoch: str | None = None
    for n, op in enumerate(ops):
        if op == "edit":
            edits.append(f"edit {n}")
            device.edit(edits[-1])
        elif op == "connect" and not device.connected:
            if replica_epoch is not None and replica_epoch != server.epoch:
                expected_resets += 1
            replica_epoch = server.epoch
            device.connect()
        elif op == "disconnect":
            device.disconnect()
        elif op == "restart":
            device.restart()
        elif op == "rewrite":
            device.disconnect()
            server.rewrite(f"seed {n}")
    if not device.connected:
        if replica_epoch is not None and replica_epoch != server.epoch:
            expected_resets += 1
        device.connect()
    assert device.doc.unsynced == 0
    device.resets += device.doc.resets
    assert device.resets == expected_resets  # a reset exactly when the epoch changed

    recovered = [
        str(x)
        for c in device.store.recovered(NAME)
        for x in c.replica().get("log", type=pycrdt.Array).to_py()
    ]
    lineages = [doc.get("log", type=pycrdt.Array).to_py() for _, doc in server.lineages]
    for content in lineages:
        assert len(content) == len(set(content)), "no content duplicated in a lineage"
    for later, content in enumerate(lineages):
        seeds = {f"seed {i}" for i in range(len(ops))}
        for item in content:
            assert item in seeds or item in edits
        own_seed = [item for item in content if item in seeds]
        assert len(own_seed) <= 1 and (later == 0 or own_seed), "no other lineage's seed"
    placed = [item for content in lineages for item in content if item in edits]
    assert len(placed) == len(set(placed)), "an edit is in one lineage only"
    for edit in edits:
        assert edit in placed or edit in recovered, f"{edit} lost"
    # The device ends up holding exactly the current lineage.
    assert device.doc.doc.get("log", type=pycrdt.Array).to_py() == lineages[-1]
    device.store.close()
