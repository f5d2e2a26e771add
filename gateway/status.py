"""Live status: `GET /status` (a page for a person) and `GET /status.json` (its data).

A sampler task reads the `Metrics` counters every `interval` seconds and keeps
the per-second rates of the last `window` seconds in a ring buffer: intake
events by outcome, rejects by key, spool depth and oldest age, forward latency
p50/p99, upstream answers by status, dead letters, rate-limited requests.
The page is gateway/static/status.html, served as one self-contained document
(no other asset, no framework) with its stylesheet and script, status.css and
status.js, inline: the script fetches `/status.json` and draws SVG charts.

Each worker process has its own metrics, so with `IAN_WORKERS` > 1 the page
shows the worker that answered it (its pid is on the page).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.assets import static_file
from gateway.metrics import Metrics
from gateway.spool import Spool

log = logging.getLogger("gateway.status")

INTERVAL = 5.0  # seconds between samples
WINDOW = 600.0  # seconds of history kept and drawn
TOP_REJECTS = 5
OUTCOMES = {"accepted": "accepted", "duplicate": "duplicates", "rejected": "rejected"}

Counts = dict[str, float]


def counter_totals(families: Iterable[Any], label: str | None = None) -> Counts:
    """A counter's `_total` values summed by one label ("" for an unlabelled counter)."""
    totals: Counts = {}
    for family in families:
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = sample.labels.get(label, "") if label else ""
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def gauge_value(families: Iterable[Any]) -> float | None:
    """A gauge's value (every worker's, as its multiprocess mode combines them), or None unset."""
    values = [sample.value for family in families for sample in family.samples]
    return sum(values) if values else None


def histogram_buckets(families: Iterable[Any]) -> list[tuple[float, float]]:
    """A histogram's cumulative bucket counts, summed over its labels, by upper bound."""
    buckets: dict[float, float] = {}
    for family in families:
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return sorted(buckets.items())


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The q-quantile of cumulative buckets, interpolated as Prometheus' histogram_quantile."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower  # past the last finite bucket: its bound is all that is known
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def minus(now: Counts, before: Counts) -> Counts:
    return {key: value - before.get(key, 0.0) for key, value in now.items()}


@dataclass
class Totals:
    """The counters at one instant; two of them make a sample."""

    at: float
    outcomes: Counts
    rejects: Counts
    upstream: Counts
    dead_letters: float
    rate_limited: float
    latency: list[tuple[float, float]]

    @classmethod
    def read(cls, metrics: Metrics, at: float) -> Totals:
        m = metrics
        events, rejects, upstream, dead_letters, rate_limited, latency = m.families(
            m.events, m.rejects, m.upstream, m.dead_letters, m.rate_limited, m.forward_latency)
        outcomes = counter_totals(events, "outcome")
        return cls(
            at=at,
            outcomes={name: outcomes.get(label, 0.0) for label, name in OUTCOMES.items()},
            rejects=counter_totals(rejects, "key"),
            upstream=counter_totals(upstream, "status"),
            dead_letters=sum(counter_totals(dead_letters).values()),
            rate_limited=sum(counter_totals(rate_limited).values()),
            latency=histogram_buckets(latency),
        )


@dataclass
class Sample:
    """What happened between two readings, per second, plus the spool at the end."""

    t: float
    rates: Counts
    upstream: Counts
    rejects: Counts
    spool_depth: int | None
    spool_oldest: float | None
    p50_ms: float | None
    p99_ms: float | None

    @classmethod
    def between(cls, before: Totals, now: Totals, wall: float,
                spool: tuple[int | None, float | None]) -> Sample:
        seconds = max(now.at - before.at, 1e-6)
        rates = {k: v / seconds for k, v in minus(now.outcomes, before.outcomes).items()}
        rates["dead_letters"] = (now.dead_letters - before.dead_letters) / seconds
        rates["rate_limited"] = (now.rate_limited - before.rate_limited) / seconds
        latency = [(bound, count - dict(before.latency).get(bound, 0.0))
                   for bound, count in now.latency]
        return cls(
            t=wall, rates=rates,
            upstream={k: v / seconds for k, v in minus(now.upstream, before.upstream).items()},
            rejects={k: v for k, v in minus(now.rejects, before.rejects).items() if v > 0},
            spool_depth=spool[0], spool_oldest=spool[1],
            p50_ms=milliseconds(quantile(0.5, latency)),
            p99_ms=milliseconds(quantile(0.99, latency)),
        )


def milliseconds(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


@dataclass
class History:
    """The ring buffer of samples, and its column-wise view for the charts."""

    size: int
    samples: deque[Sample] = field(default_factory=deque)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)
        while len(self.samples) > self.size:
            self.samples.popleft()

    def columns(self) -> dict[str, Any]:
        rows = list(self.samples)
        statuses = sorted({status for row in rows for status in row.upstream})
        columns: dict[str, Any] = {
            "t": [row.t for row in rows],
            **{name: [round(row.rates.get(name, 0.0), 3) for row in rows]
               for name in (*OUTCOMES.values(), "dead_letters", "rate_limited")},
            "spool_depth": [row.spool_depth for row in rows],
            "spool_oldest": [row.spool_oldest for row in rows],
            "p50_ms": [row.p50_ms for row in rows],
            "p99_ms": [row.p99_ms for row in rows],
            "upstream": {status: [round(row.upstream.get(status, 0.0), 3) for row in rows]
                         for status in statuses},
        }
        return columns

    def top_rejects(self, limit: int = TOP_REJECTS) -> list[dict[str, Any]]:
        counts: Counts = {}
        for row in self.samples:
            for key, count in row.rejects.items():
                counts[key] = counts.get(key, 0.0) + count
        top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return [{"key": key or "(request)", "count": int(count)} for key, count in top]


class Status:
    """The sampler and the two handlers; built once, started and stopped by the lifespan."""

    def __init__(self, metrics: Metrics, spool: Spool, interval: float = INTERVAL,
                 window: float = WINDOW, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self._metrics = metrics
        self._spool = spool
        self.interval = interval
        self.window = window
        self._clock = clock
        self._wall = wall
        self.history = History(size=max(1, round(window / interval)))
        # The baseline: the first sample counts what happened since the gateway was built.
        self._last = Totals.read(metrics, clock())
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._page, self._page_headers = build_page()

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="status-sampler")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
                return
            try:
                await self.sample()
            except Exception:
                log.exception("status sample failed; the next one will try again")

    async def sample(self) -> Sample:
        """Read the counters now and record what changed since the last reading."""
        now = Totals.read(self._metrics, self._clock())
        sample = Sample.between(self._last, now, self._wall(), await self._spool_state())
        self._last = now
        self.history.add(sample)
        return sample

    async def _spool_state(self) -> tuple[int | None, float | None]:
        try:
            return await self._spool.depth(), round(await self._spool.oldest_age(), 3)
        except Exception:
            log.warning("status: the spool did not answer its depth", exc_info=True)
            return None, None

    def totals(self) -> dict[str, Any]:
        """Counts since the process started, read now (not at the last sample)."""
        now = Totals.read(self._metrics, self._clock())
        return {
            **{name: int(count) for name, count in now.outcomes.items()},
            "dead_letters": int(now.dead_letters),
            "rate_limited": int(now.rate_limited),
            "upstream": {status: int(count) for status, count in sorted(now.upstream.items())},
        }

    def forwarder(self) -> dict[str, Any]:
        """The adaptive in-flight limit and the round trip it adapts to (gateway/limiter.py)."""
        m = self._metrics
        limit, in_flight, rtt, baseline, redirects = m.families(
            m.forward_limit, m.forward_in_flight, m.forward_rtt, m.forward_rtt_baseline,
            m.redirects)
        limit_now, in_flight_now = gauge_value(limit), gauge_value(in_flight)
        rtt_now, baseline_now = gauge_value(rtt), gauge_value(baseline)
        return {
            "concurrency_limit": None if limit_now is None else int(limit_now),
            "in_flight": None if in_flight_now is None else int(in_flight_now),
            "rtt_ms": None if rtt_now is None else round(rtt_now * 1000, 2),
            "rtt_baseline_ms": None if baseline_now is None else round(baseline_now * 1000, 2),
            "redirects": int(sum(counter_totals(redirects).values())),
        }

    async def snapshot(self) -> dict[str, Any]:
        depth, oldest = await self._spool_state()
        return {
            "pid": os.getpid(),
            "now": self._wall(),
            "interval": self.interval,
            "window": self.window,
            "totals": self.totals(),
            "spool": {"depth": depth, "oldest_s": oldest},
            "forwarder": self.forwarder(),
            "top_rejects": self.history.top_rejects(),
            "samples": self.history.columns(),
        }

    async def page(self, _: Request) -> Response:
        return Response(self._page, media_type="text/html; charset=utf-8",
                        headers=self._page_headers)

    async def json(self, _: Request) -> Response:
        body = orjson.dumps(await self.snapshot())
        return Response(body, media_type="application/json", headers=JSON_HEADERS)


# status.html links its stylesheet and script as the files they are in static/; served, the
# page holds both inline, so it needs no request but /status.json.
STYLESHEET = b'<link rel="stylesheet" href="status.css">'
SCRIPT = b'<script type="module" src="status.js"></script>'


def build_page() -> tuple[bytes, dict[str, str]]:
    """The page as served, and its headers."""
    style, script = static_file("status.css"), static_file("status.js")
    body = inline(static_file("status.html"), STYLESHEET, b"<style>%s</style>" % style)
    body = inline(body, SCRIPT, b'<script type="module">%s</script>' % script)
    return body, page_headers(script=csp_hash(script), style=csp_hash(style))


def inline(page: bytes, link: bytes, element: bytes) -> bytes:
    """The page with its one `link` to a file replaced by `element`, that file inline."""
    if page.count(link) != 1:
        raise ValueError(f"gateway/static/status.html must hold {link.decode()} once")
    return page.replace(link, element)


def csp_hash(body: bytes) -> str:
    """CSP 'sha256-…' source of an inline element whose content is `body`."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"


def page_headers(script: str, style: str) -> dict[str, str]:
    """Only the page's own inline script and style may run; it may fetch only its origin."""
    policy = "; ".join((
        "default-src 'none'",
        f"script-src {script}",
        f"style-src {style}",
        "connect-src 'self'",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ))
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }


JSON_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
