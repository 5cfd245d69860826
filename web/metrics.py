"""Counters of one web process, and their Prometheus exposition.

The hot path (fan-out, senders) bumps plain integers on `WebStats`; a
custom collector turns them into metric families only when /metrics is
scraped, so sending a frame costs no prometheus-client locking. The same
collector exposes every worker's heartbeat counters (read from Redis by the
/metrics handler just before rendering), so any web process shows the
whole system. Each app has its own CollectorRegistry, never the global one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from web.auth import CAUSES

DROP_REASONS = ("slow", "auth", "origin", "busy", "http_timeout", "bad_request", "history")
# Heartbeat fields that are labels or identity, not counters.
_NOT_COUNTERS = {"name", "kind", "host", "pid", "state", "started", "ts", "port"}
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
_BAD_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_]")


@dataclass
class WebStats:
    """Plain counters; asyncio is single-threaded, so no locks."""

    clients: int = 0
    frames_sent: int = 0
    lines_sent: int = 0
    reconnects: int = 0
    resumes: int = 0
    lag_seconds: float = 0.0
    over_bound: int = 0  # times a client's backlog passed --client-queue-bytes
    drops: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    auth_failures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CAUSES, 0))
    tokens_expired: int = 0  # open streams closed at their token's exp
    metrics_auth_failures: int = 0  # /metrics, /api/status without the metrics token
    tls_failed: dict[str, int] = field(default_factory=dict)  # HTTPS handshakes, by cause

    def drop(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1

    def auth_failure(self, cause: str) -> None:
        self.drop("auth")
        self.auth_failures[cause] = self.auth_failures.get(cause, 0) + 1


def number(text: str) -> int | float | None:
    """The value as int or float when it is plainly a number, else None."""
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


class WebCollector(Collector):
    """Renders `WebStats` plus the last snapshot of worker heartbeats."""

    def __init__(self, stats: WebStats, is_ready: Callable[[], bool]) -> None:
        self._stats = stats
        self._is_ready = is_ready
        self._workers: list[dict[str, str]] = []
        self._shards: list[dict[str, Any]] = []

    def set_workers(self, heartbeats: list[dict[str, str]],
                    shards: list[dict[str, Any]] | None = None) -> None:
        self._workers = heartbeats
        self._shards = shards or []

    def collect(self) -> Iterator[Metric]:
        s = self._stats
        yield GaugeMetricFamily("tcpws_web_clients", "Connected clients, WebSocket and SSE.",
                                value=s.clients)
        yield CounterMetricFamily("tcpws_web_frames_sent", "WebSocket frames and SSE events sent.",
                                  value=s.frames_sent)
        yield CounterMetricFamily("tcpws_web_lines_sent", "Lines sent to clients.",
                                  value=s.lines_sent)
        drops = CounterMetricFamily("tcpws_web_client_drops",
                                    "Clients refused or closed, by reason.", labels=["reason"])
        for reason, count in sorted(s.drops.items()):
            drops.add_metric([reason], count)
        yield drops
        failures = CounterMetricFamily(
            "tcpws_web_auth_failures", "Stream requests refused by the token check, by cause.",
            labels=["cause"])
        for cause, count in sorted(s.auth_failures.items()):
            failures.add_metric([cause], count)
        yield failures
        if s.tls_failed:  # HTTPS only (web.tls_front)
            tls = CounterMetricFamily("tcpws_web_tls_failed",
                                      "TLS handshakes on the HTTP port that failed, by cause.",
                                      labels=["cause"])
            for cause, count in sorted(s.tls_failed.items()):
                tls.add_metric([cause], count)
            yield tls
        yield CounterMetricFamily("tcpws_web_tokens_expired",
                                  "Open streams closed 1008 when their JWT expired.",
                                  value=s.tokens_expired)
        yield CounterMetricFamily("tcpws_web_metrics_auth_failures",
                                  "/metrics and /api/status requests without the metrics token.",
                                  value=s.metrics_auth_failures)
        yield CounterMetricFamily(
            "tcpws_web_client_queue_over_bound",
            "Times a client's backlog passed --client-queue-bytes (closed only if it "
            "stays over for --slow-client-grace).", value=s.over_bound)
        yield CounterMetricFamily("tcpws_web_redis_reconnects",
                                  "Redis subscription reconnects.", value=s.reconnects)
        yield CounterMetricFamily("tcpws_web_resumes", "Clients resumed with since=.",
                                  value=s.resumes)
        yield GaugeMetricFamily("tcpws_web_lag_seconds",
                                "Now minus the ts of the last entry sent to a client.",
                                value=s.lag_seconds)
        yield GaugeMetricFamily("tcpws_web_subscription_up",
                                "1 while the Redis subscription is live.",
                                value=1.0 if self._is_ready() else 0.0)
        yield from self._shard_metrics()
        yield from self._worker_metrics()

    def _shard_metrics(self) -> Iterator[Metric]:
        """Per Redis shard (tcpws.shards): up, and lag behind its stream."""
        labels = ["shard", "address"]
        up = GaugeMetricFamily("tcpws_web_shard_up",
                               "1 while this shard's subscription is live.", labels=labels)
        lag = GaugeMetricFamily("tcpws_web_shard_lag_ms",
                                "The shard's newest entry minus the last one delivered, in ms "
                                "of entry ids.", labels=labels)
        for shard in self._shards:
            values = [str(shard["shard"]), str(shard["address"])]
            up.add_metric(values, 1.0 if shard["up"] else 0.0)
            if shard["lag_ms"] is not None:
                lag.add_metric(values, float(shard["lag_ms"]))
        yield up
        yield lag

    def _worker_metrics(self) -> Iterator[Metric]:
        """One gauge family per heartbeat counter, labelled by worker."""
        now = time.time()
        labels = ["worker", "kind", "port"]
        families: dict[str, GaugeMetricFamily] = {}
        age = GaugeMetricFamily("tcpws_worker_heartbeat_age_seconds",
                                "Seconds since the worker's last heartbeat.", labels=labels)
        for hb in self._workers:
            label_values = [hb.get("name", ""), hb.get("kind", ""), hb.get("port", "")]
            ts = number(hb.get("ts", ""))
            if ts is not None:
                age.add_metric(label_values, max(0.0, now - ts))
            for key, text in sorted(hb.items()):
                value = number(text)
                if key in _NOT_COUNTERS or value is None:
                    continue
                metric = "tcpws_worker_" + _BAD_NAME_CHARS.sub("_", key)
                family = families.get(metric)
                if family is None:
                    family = GaugeMetricFamily(
                        metric, f"Heartbeat counter {key!r} of each worker.", labels=labels)
                    families[metric] = family
                family.add_metric(label_values, float(value))
        yield age
        yield from families.values()


class WebMetrics:
    """The per-app registry and its one collector."""

    def __init__(self, stats: WebStats, is_ready: Callable[[], bool]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = WebCollector(stats, is_ready)
        self.registry.register(self.collector)

    def render(self, heartbeats: list[dict[str, str]],
               shards: list[dict[str, Any]] | None = None) -> bytes:
        self.collector.set_workers(heartbeats, shards)
        return generate_latest(self.registry)
