"""Prometheus metrics, defined once; `GET /metrics` renders them.

Gauges that are cheaper to read on demand than to keep (spool depth, oldest
event's age) are set just before a scrape.

Under `serve --workers N` each worker is a process of its own, and a scrape
reaches one of them. So `serve` then sets `PROMETHEUS_MULTIPROC_DIR` (one
directory per run) before the workers start: prometheus_client keeps every
value in a file there, and `/metrics` and `/status` read all the workers'
files together (prometheus_client's multiprocess mode,
https://prometheus.github.io/client_python/multiprocess/).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.spool import KINDS

if TYPE_CHECKING:
    from gateway.limiter import Limiter

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client when it is imported
# `*_created` samples double every series and tell a scraper nothing it needs here.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(self) -> None:
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "ian_intake_requests", "Intake requests by endpoint and HTTP status",
            ["endpoint", "status"], registry=r)
        self.events = Counter(
            "ian_intake_events", "Events and orders by outcome (accepted, duplicate, rejected)",
            ["kind", "outcome"], registry=r)
        self.rejects = Counter(
            "ian_intake_rejects", "Rejected events by error key and code",
            ["key", "code"], registry=r)
        self.incomplete = Counter(
            "ian_incomplete_requests", "Requests that never arrived whole, by reason: cut off "
            "after IAN_REQUEST_TIMEOUT (idle_timeout, headers_timeout, body_timeout), at "
            "64 KiB of headers (headers_too_large), or abandoned when the client left in the "
            "middle of one (disconnected)",
            ["reason"], registry=r)
        self.rate_limited = Counter(
            "ian_rate_limited_requests", "Requests answered 429 by the rate limit", registry=r)
        self.bots = Counter(
            "ian_bot_events", "Events whose user agent looks like a bot", ["action"], registry=r)
        self.upstream = Counter(
            "ian_upstream_responses", "Upstream answers by kind and status (0: no answer)",
            ["kind", "status"], registry=r)
        self.forward_latency = Histogram(
            "ian_forward_latency_seconds", "Upstream request latency", ["kind"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.retries = Counter(
            "ian_forward_retries", "Records scheduled for a later attempt", ["kind"], registry=r)
        self.redirects = Counter(
            "ian_upstream_redirects", "Upstream 3xx answers: never followed, the record is "
            "retried (IAN_UPSTREAM_URL is likely wrong)", ["kind"], registry=r)
        for kind in KINDS:  # exported at 0 from the start: the redirect alert sees the first
            self.child(self.redirects, kind)
        # The forwarder's adaptive in-flight limit (gateway/limiter.py), set once per round.
        # Summed over the workers: together they may have this many requests in flight.
        self.forward_limit = Gauge(
            "ian_forward_concurrency_limit", "Upstream requests the forwarder may have in flight "
            "now (adaptive, at most IAN_FORWARD_CONCURRENCY)", registry=r,
            multiprocess_mode="livesum")
        self.forward_in_flight = Gauge(
            "ian_forward_in_flight", "Upstream requests in flight at the limiter's last round",
            registry=r, multiprocess_mode="livesum")
        self.forward_rtt = Gauge(
            "ian_forward_rtt_seconds", "Mean upstream round trip of the limiter's last round",
            registry=r, multiprocess_mode="livemax")
        self.forward_rtt_baseline = Gauge(
            "ian_forward_rtt_baseline_seconds", "The lowest round trip the limiter compares "
            "rounds with", registry=r, multiprocess_mode="livemax")
        self.dead_letters = Counter(
            "ian_dead_letters", "Records moved to the dead letters", ["kind"], registry=r)
        # The spool is one for all workers: the value the last scrape read is the one.
        self.spool_depth = Gauge(
            "ian_spool_depth", "Records waiting in the spool or in flight", registry=r,
            multiprocess_mode="mostrecent")
        self.spool_oldest = Gauge(
            "ian_spool_oldest_seconds", "Age of the oldest waiting record", registry=r,
            multiprocess_mode="mostrecent")
        self._workers: CollectorRegistry | None = None  # every worker's values, when N > 1
        if os.environ.get(MULTIPROCESS_DIR):
            self._workers = CollectorRegistry()
            MultiProcessCollector(self._workers)  # type: ignore[no-untyped-call]

    def observe_limiter(self, limiter: Limiter) -> None:
        self.forward_limit.set(limiter.limit)
        self.forward_in_flight.set(limiter.in_flight)
        if limiter.rtt is not None:
            self.forward_rtt.set(limiter.rtt)
        if limiter.baseline is not None:
            self.forward_rtt_baseline.set(limiter.baseline)

    def child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, looked up once: the hot paths count on every request."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def families(self, *metrics: Any) -> list[list[Metric]]:
        """Each metric's samples: this process's, or every worker's under `serve --workers N`
        (their files read once for all of `metrics`)."""
        if self._workers is None:
            return [list(metric.collect()) for metric in metrics]
        collected = list(self._workers.collect())
        names = [{family.name for family in metric.describe()} for metric in metrics]
        return [[family for family in collected if family.name in own] for own in names]

    def render(self) -> bytes:
        return bytes(generate_latest(self._workers or self.registry))
