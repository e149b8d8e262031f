"""The daemon's long-lived parts and their one lifecycle: start in order, stop in reverse."""

from __future__ import annotations

import asyncio
import logging
import time

from storage import DocMeta, GroupCommit, SqlStore, Store
from storage.audit import SqlAudit
from storage.consent import SqlConsents
from storage.history import SqlHistory
from storage.snapshot_mark import snapshot_key_from_secret
from storage.trash import SqlTrash

from . import keys_cli
from .access import Authorizer, Refusal, decide
from .audit_sweep import AuditSweep
from .broker import AccessChanged, Broker, LocalBroker
from .cluster import Cluster
from .commit_signal import CommitSignal
from .docid import DocId
from .feed_changes import ChangeStreams
from .history import HistoryOps
from .history_sweep import HistorySweep
from .key_watch import KeyWatch
from .metrics import Metrics
from .peer import CloseCode, Peer, SendQueues
from .push import PushSender
from .redis_broker import RedisBroker
from .rooms import Rooms
from .settings import Settings
from .token_expiry import TokenExpiry
from .tokens import TokenKeys, load_or_create_secret

__all__ = ["Daemon"]

log = logging.getLogger("syncd")

SLOW_STOP_SECONDS = 2.0


class Daemon:
    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.metrics = Metrics()
        token_keys = self._token_keys(settings)  # first: it warns when it makes the secret
        self.store: Store = store or SqlStore(
            settings.effective_database_url,
            retention_seconds=settings.log_retention_seconds,
            sqlite_synchronous=settings.sqlite_synchronous,
            timeout_seconds=settings.database_timeout_seconds,
            key_ring=keys_cli.key_ring(settings),  # encryption at rest (docs/privacy.md)
            # Marks snapshots syncd checked, so cold loads trust them (storage/snapshot_mark.py).
            snapshot_key=snapshot_key_from_secret(
                settings.secret or load_or_create_secret(settings.data_dir)[0]
            ),  # a node-local secret with public-key tokens: other nodes re-check its marks
        )
        self.commits = CommitSignal()
        self.commit = GroupCommit(
            self.store, window_ms=settings.commit_window_ms, on_commit=self._committed
        )
        self.changes = ChangeStreams(self.store)  # the feed's format=changes
        self.broker: Broker = (
            RedisBroker(settings.redis_url) if settings.redis_url else LocalBroker()
        )
        self.rooms = Rooms(self.store, self.commit, settings, self.metrics, self.broker)
        self.cluster = Cluster(
            self.broker, self.rooms, self.store, self.commits, self._apply_access
        )
        self.access = Authorizer(token_keys, self.store, self.rooms.get_loaded)
        self.token_expiry = TokenExpiry()  # closes each session as its token expires
        # History (docs/history.md) works on the SQL store's tables.
        assert isinstance(self.store, SqlStore), "history needs the SQL store"
        self.history = SqlHistory(self.store)
        self.trash = SqlTrash(self.store)
        self.history_ops = HistoryOps(self.rooms, self.history)
        self.history_sweep = HistorySweep(self.history, self.trash, settings)
        self.push = PushSender.create(  # Web Push (docs/push.md)
            settings, self.store, self.rooms, self.broker, self.metrics.registry
        )
        # Consent and audit (docs/privacy.md): the feed's gate, the trail of reads served.
        self.consents = SqlConsents(self.store)
        self.audit = SqlAudit(self.store)
        self.audit_sweep = AuditSweep(self.audit, settings.audit_retention_seconds)
        self.key_watch = KeyWatch(self.store, self.rooms, settings.key_check_seconds)
        self.sockets: set[Peer] = set()  # one per WebSocket: the peer that owns its send queue
        # One bound on every socket's send queue together (past it the biggest closes 1013).
        self.send_queues = SendQueues(
            settings.send_queue_total_bytes, settings.slow_reader_close_seconds
        )
        self.metrics.connections.set_function(lambda: len(self.sockets))
        self.metrics.send_queue_depth.set_function(lambda: sum(p.queued for p in self.sockets))
        self.metrics.room_pending.set_function(
            lambda: sum(r.pending for r in self.rooms.loaded())
        )
        self.started = False

    @staticmethod
    def _token_keys(settings: Settings) -> TokenKeys:
        if settings.public_key_file is not None:
            return TokenKeys(public_key_pem=settings.public_key_file.read_text())
        secret = settings.secret
        if not secret:
            secret, created = load_or_create_secret(settings.data_dir)
            if created:
                log.warning(
                    "SYNCD_SECRET is not set: generated a token key in %s/secret "
                    "(set SYNCD_SECRET to share it between nodes)",
                    settings.data_dir,
                )
        return TokenKeys(secret=secret)

    async def start(self) -> None:
        await self.store.open()
        self.commit.start()
        await self.cluster.start()
        self.history_sweep.start()
        self.push.start()
        self.audit_sweep.start()
        self.key_watch.start()
        self.started = True

    async def stop(self) -> None:
        """Commit everything queued, close every peer with 1001, close the database."""
        if not self.started:
            return
        self.started = False
        steps = (
            ("history sweep", self.history_sweep.stop),
            ("push sender", self.push.stop),
            ("audit sweep", self.audit_sweep.stop),
            ("key watch", self.key_watch.stop),
            ("documents", self.rooms.close),
            ("group commit", self.commit.stop),
            ("broker", self.cluster.stop),
            ("database", self.store.close),
        )
        for name, step in steps:
            started = time.monotonic()
            await step()
            took = time.monotonic() - started
            if took > SLOW_STOP_SECONDS:  # what to look at when a shutdown is slow
                log.warning("stopping: %s took %.1f s", name, took)

    def _committed(self, count: int, seconds: float) -> None:
        self.metrics.on_commit(count, seconds)
        self.commits.notify()
        self.broker.committed()

    def socket_opened(self, socket: Peer) -> None:
        self.sockets.add(socket)

    def socket_closed(self, socket: Peer) -> None:
        self.sockets.discard(socket)

    async def close_sockets(self, code: int, reason: str) -> None:
        """Close every WebSocket still open (e.g. /v1/sync ones with no document) and wait."""
        sockets = list(self.sockets)
        for socket in sockets:
            socket.close(code, reason)
        await asyncio.gather(*(s.wait_closed() for s in sockets), return_exceptions=True)

    def access_changed(self, meta: DocMeta) -> None:
        """Access settings changed here: apply them, and tell the other nodes."""
        self._apply_access(meta)
        self.broker.publish(meta.key, AccessChanged(self.broker.node_id))

    def restored_from_trash(self, meta: DocMeta) -> None:
        """A document came back from the trash here: other nodes re-read it (nothing there
        caches the deletion, but a node must never keep refusing a restored id)."""
        self.broker.publish(meta.key, AccessChanged(self.broker.node_id))

    def _apply_access(self, meta: DocMeta) -> None:
        """Re-decide every live connection of the document: revoke, downgrade, upgrade."""
        room = self.rooms.get_loaded(meta.key)
        if room is None:
            return
        if room.meta is not None and room.meta.epoch != meta.epoch and not meta.deleted:
            # Its history was rewritten elsewhere (erasure, syncd/erasure.py): this replica is
            # of the old lineage. Clients reconnect (1013) and get the new epoch.
            room.close(CloseCode.TRY_AGAIN_LATER, "document rewritten: reconnect")
            self.rooms.release(room)
            return
        room.meta = meta
        doc = DocId.parse(meta.key.name)
        for peer in list(room.peers):
            try:
                grant = decide(peer.identity, doc, meta)
            except Refusal:
                peer.close(CloseCode.UNAUTHORIZED, "access revoked")
                room.leave(peer)
                continue
            room.regrant(peer, grant.readonly)

    def count_sent(self, size: int) -> None:
        metrics = self.metrics
        metrics.messages_sent += 1
        metrics.bytes_sent += size
