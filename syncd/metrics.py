"""Prometheus metrics, one registry per app (so tests can run several daemons in one process)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.connections = Gauge("syncd_connections", "Open WebSocket connections", registry=r)
        self.documents = Gauge("syncd_open_documents", "Documents loaded in memory", registry=r)
        self.updates_received = Counter(
            "syncd_updates_received", "Document updates received from clients", registry=r
        )
        self.updates_stored = Counter(
            "syncd_updates_stored", "Document updates committed to the database", registry=r
        )
        self.updates_dropped = Counter(
            "syncd_updates_dropped",
            "Document updates refused (read-only connections)",
            registry=r,
        )
        self.bytes_received = Counter(
            "syncd_bytes_received", "WebSocket payload bytes received", registry=r
        )
        # Counted per message on the fan-out path, so plain integers read at scrape time: a
        # prometheus Counter.inc costs more than the rest of our per-message work.
        self.messages_sent = 0
        self.bytes_sent = 0
        r.register(_SentCollector(self))
        self.persist_seconds = Histogram(
            "syncd_persist_seconds",
            "Time to commit one group of updates",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
            registry=r,
        )
        self.closes = Counter(
            "syncd_closes", "Connections closed by the server, by close code", ["code"], registry=r
        )
        self.send_queue_depth = Gauge(
            "syncd_send_queue_messages", "Messages waiting in peers' send queues", registry=r
        )
        self.room_pending = Gauge(
            "syncd_room_pending_updates", "Updates waiting for their commit", registry=r
        )
        self.load_failures = Counter(
            "syncd_load_failures", "Document loads that failed", registry=r
        )
        self.compactions = Counter("syncd_compactions", "Log compactions", registry=r)
        self.quarantined_updates = Counter(
            "syncd_quarantined_updates",
            "Stored updates left out of a document because they cannot be applied or viewed",
            registry=r,
        )
        self.updates_rejected = Counter(
            "syncd_updates_rejected",
            "Client updates refused because the document cannot take them (closed 4400)",
            registry=r,
        )
        self.awareness_refused = Counter(
            "syncd_awareness_refused",
            "New presence states dropped because their document's presence was full, by bound "
            "(clients: max_awareness_clients, bytes: max_awareness_document_bytes)",
            ["bound"],
            registry=r,
        )

    def on_commit(self, count: int, seconds: float) -> None:
        self.updates_stored.inc(count)
        self.persist_seconds.observe(seconds)

    def on_awareness_refused(self, bound: str) -> None:
        self.awareness_refused.labels(bound).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _SentCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "syncd_messages_sent", "WebSocket messages sent", value=self._metrics.messages_sent
        )
        yield CounterMetricFamily(
            "syncd_bytes_sent", "WebSocket payload bytes sent", value=self._metrics.bytes_sent
        )
