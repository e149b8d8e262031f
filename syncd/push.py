"""The Web Push sender (DESIGN.md §1.12): whom to push, then a bounded queue and its workers.

Deciding happens on the event loop, where the request or the access change is: principals
present in the document are skipped (``syncd/presence_lookup.py``), then those with no
subscription, then those pushed about the same document within the minute
(``syncd/push_throttle.py``); each remaining subscription becomes one job in a bounded queue
(full: the job is dropped and counted, never buffered). Workers send with pywebpush (aes128gcm,
VAPID) in a thread, since its sender blocks, one ``requests`` session per worker:

- ``TTL`` a day for prompts and a week for shares (pywebpush's default of 0 makes the push
  service drop a push to a phone that is offline at that moment), ``Urgency: high`` for prompts
  and ``normal`` for shares, ``Topic`` per document so a burst collapses into one notification;
- redirects are never followed (a push service does not redirect; a redirect is how an
  endpoint that passed the address check would reach an internal one), the endpoint's address
  is checked again before every push (DNS may have changed), and so is the address each
  connection reached (``push_transport.py``);
- 429 and 5xx (and a failed connection) are retried with exponential backoff, or after the
  ``Retry-After`` the service gave, up to ``MAX_ATTEMPTS``; 404 and 410 mean the browser
  dropped the subscription: it is deleted at once; any other answer drops the push.

Pushes are best effort: what is queued or waiting for a retry when the daemon stops is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import json
import logging
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pycrdt
import requests
from prometheus_client import CollectorRegistry, Counter
from pywebpush import WebPusher

from storage import DocKey, DocMeta, SqlStore, StoreUnavailable
from storage.push_subscriptions import PushSubscription, SqlPushSubscriptions

from .broker import Broker
from .presence_lookup import PresenceLookup
from .push_endpoints import EndpointPolicy, EndpointRefused
from .push_throttle import PushThrottle
from .push_transport import push_session, reached_private_address
from .room import RoomClosed
from .rooms import Rooms
from .settings import Settings
from .vapid import VapidKey, b64url, load_vapid_key

__all__ = ["NotifyCounts", "PushSender", "topic_for"]

log = logging.getLogger("syncd.push")

PROMPT_TTL_SECONDS = 24 * 3600  # a day-old prompt is still worth showing; older is noise
SHARE_TTL_SECONDS = 7 * 24 * 3600
QUEUE_SIZE = 10_000
WORKERS = 2
SEND_TIMEOUT_SECONDS = 10.0
MAX_ATTEMPTS = 5
MAX_RETRY_AFTER_SECONDS = 3600.0  # a longer Retry-After drops the push instead
MAX_PAYLOAD_BYTES = 3800  # Web Push carries 4096 bytes; the encryption takes 103 of them


def topic_for(tenant: str, subject: str) -> str:
    """The ``Topic`` of pushes about ``subject`` (a document id, or a notify's url): 32
    characters of the URL-safe base64 alphabet (RFC 8030 §5.4), naming nothing readable."""
    return b64url(hashlib.sha256(f"{tenant}\0{subject}".encode()).digest()[:24])


@dataclass
class _Job:
    subscription: PushSubscription
    payload: bytes
    topic: str
    urgency: str
    ttl: int
    attempt: int = 0


@dataclass
class NotifyCounts:
    """What became of a push to some principals (the 202 answer of ``POST /v1/push/notify``)."""

    queued: int = 0  # subscriptions a push was queued for
    present: int = 0  # principals skipped: present in the document
    throttled: int = 0  # principals skipped: pushed about it within the minute
    unsubscribed: int = 0  # principals with no subscription
    dropped: int = 0  # subscriptions skipped: the queue was full

    def json(self) -> dict[str, int]:
        return asdict(self)


class PushSender:
    def __init__(
        self,
        subscriptions: SqlPushSubscriptions,
        vapid: VapidKey,
        policy: EndpointPolicy,
        presence: PresenceLookup,
        registry: CollectorRegistry | None = None,
        *,
        queue_size: int = QUEUE_SIZE,
        workers: int = WORKERS,
    ) -> None:
        self.subscriptions = subscriptions
        self.vapid = vapid
        self.policy = policy
        self.presence = presence
        self.throttle = PushThrottle()
        self._queue_size = queue_size
        self._queue: asyncio.Queue[_Job] | None = None
        self._workers = workers
        self._worker_tasks: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[None]] = set()  # deciding pushes for access changes
        self._retries: set[asyncio.TimerHandle] = set()
        self._outstanding = 0  # jobs queued, being sent or waiting for a retry
        self._idle = asyncio.Event()
        self._idle.set()
        self.sent = Counter(
            "syncd_push", "Web Push requests, by outcome", ["outcome"], registry=registry
        )
        self.skipped = Counter(
            "syncd_push_skipped", "Pushes not queued, by reason", ["reason"], registry=registry
        )

    @classmethod
    def create(
        cls,
        settings: Settings,
        store: SqlStore,
        rooms: Rooms,
        broker: Broker,
        registry: CollectorRegistry,
    ) -> PushSender:
        return cls(
            SqlPushSubscriptions(store, settings.push_max_subscriptions),
            load_vapid_key(settings),
            EndpointPolicy(settings.push_allow_endpoints),
            PresenceLookup(rooms, broker),
            registry,
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._queue = asyncio.Queue(self._queue_size)
        self._worker_tasks = [
            asyncio.create_task(self._work(), name=f"push-worker-{i}") for i in range(self._workers)
        ]

    async def stop(self) -> None:
        for handle in self._retries:
            handle.cancel()
        self._retries.clear()
        tasks = [*self._worker_tasks, *self._tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._worker_tasks = []
        self._queue = None
        self._outstanding = 0
        self._idle.set()

    async def idle(self) -> None:
        """Wait until nothing is being decided, queued, sent or waiting for a retry."""
        while self._tasks or self._outstanding:
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            else:
                await self._idle.wait()

    # -- triggers ------------------------------------------------------------------------------

    def shared(self, meta: DocMeta, before: Mapping[str, str], by: str) -> None:
        """Access of ``meta``'s document changed (``before``: the grants in force until then,
        empty if it was private): push ``shared`` to every principal newly granted."""
        if meta.mode != "shared":
            return
        granted = {p: role for p, role in meta.grants.items() if p not in before and p != by}
        if not granted:
            return
        task = asyncio.create_task(self._shared(meta.key, granted, by))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _shared(self, key: DocKey, granted: Mapping[str, str], by: str) -> None:
        try:
            for role in sorted(set(granted.values())):
                payload = {
                    "type": "shared",
                    "doc": key.name,
                    "by": by,
                    "role": role,
                    "url": await _doc_url(self.presence.rooms, key),
                }
                whom = [p for p, r in granted.items() if r == role]
                await self.push(key.tenant, whom, payload, key.name, key, "normal")
        except StoreUnavailable as exc:
            log.warning("push: could not push the share of %s: %s", key, exc)

    async def notify(
        self,
        tenant: str,
        principals: Iterable[str],
        title: str,
        body: str,
        url: str,
        doc: str | None,
    ) -> NotifyCounts:
        """A prompt from a service (``POST /v1/push/notify``)."""
        payload: dict[str, Any] = {"type": "prompt", "title": title, "body": body, "url": url}
        if doc is not None:
            payload["doc"] = doc
        key = DocKey(tenant, doc) if doc is not None else None
        return await self.push(tenant, principals, payload, doc or url, key, "high")

    # -- deciding ------------------------------------------------------------------------------

    async def push(
        self,
        tenant: str,
        principals: Iterable[str],
        payload: Mapping[str, Any],
        subject: str,
        doc: DocKey | None,
        urgency: str,
    ) -> NotifyCounts:
        """Queue ``payload`` for every subscription of ``principals`` but those present in
        ``doc`` or pushed about ``subject`` within the minute.

        Raises:
            StoreUnavailable: the subscriptions could not be read.
        """
        counts = NotifyCounts()
        wanted = list(dict.fromkeys(principals))
        present = await self.presence.present(doc) if doc is not None else set()
        counts.present = sum(p in present for p in wanted)
        wanted = [p for p in wanted if p not in present]
        by_principal: dict[str, list[PushSubscription]] = {}
        for sub in await self.subscriptions.of_principals(tenant, wanted):
            by_principal.setdefault(sub.principal, []).append(sub)
        counts.unsubscribed = sum(p not in by_principal for p in wanted)
        topic = topic_for(tenant, subject)
        data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        ttl = PROMPT_TTL_SECONDS if urgency == "high" else SHARE_TTL_SECONDS
        for principal, subs in by_principal.items():
            throttle_key = (tenant, principal, topic)
            if not self.throttle.admit(throttle_key):
                counts.throttled += 1
                continue
            queued = sum(self._enqueue(_Job(sub, data, topic, urgency, ttl)) for sub in subs)
            counts.queued += queued
            counts.dropped += len(subs) - queued
            if not queued:
                self.throttle.forget(throttle_key)
        for reason in ("present", "throttled", "unsubscribed", "dropped"):
            if getattr(counts, reason):
                self.skipped.labels(reason).inc(getattr(counts, reason))
        return counts

    def _enqueue(self, job: _Job) -> bool:
        if self._queue is None:
            return False
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            return False
        self._outstanding += 1
        self._idle.clear()
        return True

    def _finished(self) -> None:
        self._outstanding -= 1
        if self._outstanding <= 0:
            self._outstanding = 0
            self._idle.set()

    # -- sending -------------------------------------------------------------------------------

    async def _work(self) -> None:
        # Admitted endpoints (the allow-list) may be private; every other one is checked
        # again on the socket it connected (push_transport.py).
        sessions = {True: push_session(public_only=False), False: push_session(public_only=True)}
        assert self._queue is not None
        queue = self._queue
        try:
            while True:
                job = await queue.get()
                session = sessions[self.policy.admitted(job.subscription.endpoint)]
                try:
                    if not await self._deliver(job, session):
                        self._finished()
                except Exception:  # a bug must cost one push, not the worker
                    log.exception("push: sending to %s failed", job.subscription.endpoint[:80])
                    self._finished()
        finally:
            for session in sessions.values():
                session.close()

    async def _deliver(self, job: _Job, session: requests.Session) -> bool:
        """Send one job; True when it was scheduled for a retry (still outstanding)."""
        sub = job.subscription
        try:
            await self.policy.check(sub.endpoint)
        except EndpointRefused as exc:
            log.warning("push: not sending to subscription %d: %s", sub.id, exc)
            self.sent.labels("refused_endpoint").inc()
            return False
        job.attempt += 1
        try:
            status, retry_after = await asyncio.to_thread(self._post, session, job)
        except requests.RequestException as exc:
            if reached_private_address(exc):
                log.warning("push: not sending to subscription %d: %s", sub.id, exc)
                self.sent.labels("refused_endpoint").inc()
                return False
            log.info("push: subscription %d: %s", sub.id, type(exc).__name__)
            status, retry_after = None, None
        if status is not None and 200 <= status < 300:
            self.sent.labels("delivered").inc()
            return False
        if status in (404, 410):
            self.sent.labels("expired").inc()
            try:
                await self.subscriptions.expired(sub)
            except StoreUnavailable as exc:  # the next push to it tries again
                log.warning("push: could not delete expired subscription %d: %s", sub.id, exc)
            return False
        if status is None or status == 429 or status >= 500:
            return self._retry(job, retry_after)
        outcome = "redirect_refused" if 300 <= status < 400 else "refused"
        log.warning("push: subscription %d answered %d: dropped", sub.id, status)
        self.sent.labels(outcome).inc()
        return False

    def _post(self, session: requests.Session, job: _Job) -> tuple[int, str | None]:
        sub = job.subscription
        headers = {
            "Authorization": self.vapid.authorization(sub.endpoint),
            "Urgency": job.urgency,
            "Topic": job.topic,
        }
        response = WebPusher(sub.info(), requests_session=session).send(
            job.payload,
            headers,
            ttl=job.ttl,
            content_encoding="aes128gcm",
            timeout=SEND_TIMEOUT_SECONDS,
        )
        assert isinstance(response, requests.Response)
        with response:
            return response.status_code, response.headers.get("Retry-After")

    def _retry(self, job: _Job, retry_after: str | None) -> bool:
        delay = _retry_delay(retry_after, job.attempt)
        if job.attempt >= MAX_ATTEMPTS or delay is None or self._queue is None:
            log.warning("push: subscription %d: gave up", job.subscription.id)
            self.sent.labels("gave_up").inc()
            return False
        self.sent.labels("retried").inc()
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def again() -> None:
            self._retries.discard(handle)  # type: ignore[arg-type]
            try:
                assert self._queue is not None
                self._queue.put_nowait(job)
            except (asyncio.QueueFull, AssertionError):
                self.sent.labels("dropped").inc()
                self._finished()

        handle = loop.call_later(delay, again)
        self._retries.add(handle)
        return True


def _retry_delay(retry_after: str | None, attempt: int) -> float | None:
    """Seconds before the next attempt: the service's ``Retry-After`` (seconds or an HTTP
    date), else exponential backoff with jitter; ``None``: longer than we keep a push."""
    if retry_after:
        text = retry_after.strip()
        delay: float | None = None
        if text.isdigit():
            delay = float(text)
        else:
            with contextlib.suppress(TypeError, ValueError):
                delay = email.utils.parsedate_to_datetime(text).timestamp() - time.time()
        if delay is not None:
            return None if delay > MAX_RETRY_AFTER_SECONDS else max(0.0, delay)
    return min(60.0, 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)


async def _doc_url(rooms: Rooms, key: DocKey) -> str:
    """Where the web app opens the document: its page depends on the schema, read from the
    loaded replica (the owner sharing it usually has it open); else the app's own naming."""
    kind = None
    room = rooms.get_loaded(key)
    if room is not None:
        with contextlib.suppress(RoomClosed, ValueError, TypeError):
            await room.readable()  # never read a batch that is not committed yet
            schema = room.doc.get("meta", type=pycrdt.Map).get("schema")
            kind = {"canvas/1": "canvas", "journal/1": "journal"}.get(str(schema))
    if kind is None:
        kind = "canvas" if key.name.split("/", 1)[-1].startswith("canvas") else "journal"
    owner, name = key.name.split("/", 1)
    return f"/#/{kind}/{owner}/{name}"
