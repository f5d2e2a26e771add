"""Live status: `GET /status` (a page for a person) and `GET /status.json` (its data).

A sampler task reads the `Metrics` counters every `interval` seconds and keeps
the per-second rates of the last `window` seconds in a ring buffer: intake
events by outcome, rejects by key, spool depth and oldest age, forward latency
p50/p99, upstream answers by status, dead letters, rate-limited requests.
The page is one self-contained HTML document (no external asset, no
framework): an inline script fetches `/status.json` and draws SVG charts.

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
        self._page = PAGE.replace(b"__INTERVAL_MS__", str(int(interval * 1000)).encode())
        self._page_headers = page_headers(self._page)

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


def csp_hash(page: bytes, tag: bytes) -> str:
    """CSP 'sha256-…' source of the one inline `<tag>` element of the page."""
    start = page.index(b">", page.index(b"<" + tag)) + 1
    body = page[start:page.index(b"</" + tag + b">", start)]
    return "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"


def page_headers(page: bytes) -> dict[str, str]:
    """Only the page's own inline script and style may run; it may fetch only its origin."""
    policy = "; ".join((
        "default-src 'none'",
        f"script-src {csp_hash(page, b'script')}",
        f"style-src {csp_hash(page, b'style')}",
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

PAGE = b"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>ian-gateway status</title>
<style>
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 16px; padding: 14px 24px;
         background: #fff; border-bottom: 1px solid var(--line); }
h1 { font-size: 18px; margin: 0; }
#meta { color: var(--muted); }
#meta.down { color: #cf222e; font-weight: 600; }
main { padding: 16px 24px 32px; max-width: 1400px; margin: 0 auto; }
#tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap: 10px;
         margin-bottom: 16px; }
.tile { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.tile .label { color: var(--muted); font-size: 12px; text-transform: uppercase;
               letter-spacing: .04em; }
.tile .value { font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; }
#charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 12px; }
figure { margin: 0; background: #fff; border: 1px solid var(--line); border-radius: 8px;
         padding: 10px 12px; }
figcaption { font-weight: 600; margin-bottom: 4px; }
svg { width: 100%; height: auto; display: block; }
svg text { font-size: 11px; fill: var(--muted); }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; color: var(--muted); font-size: 12px; }
.legend b { color: var(--ink); font-variant-numeric: tabular-nums; }
svg.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 5px;
             vertical-align: -1px; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
td { padding: 5px 4px; border-top: 1px solid var(--line); }
td.key { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
td.count { text-align: right; font-variant-numeric: tabular-nums; width: 70px; }
.empty { color: var(--muted); padding: 8px 0; }
</style>
</head>
<body>
<header><h1>ian-gateway status</h1><span id="meta">loading\xe2\x80\xa6</span></header>
<main>
<section id="tiles" aria-label="totals"></section>
<section id="charts"></section>
</main>
<script>
"use strict";
(function () {
  var INTERVAL = __INTERVAL_MS__;
  var SVGNS = "http://www.w3.org/2000/svg";
  var W = 600, H = 190, L = 52, R = 12, T = 10, B = 24;
  var TILES = [
    ["accepted", "accepted", function (d) { return d.totals.accepted; }],
    ["duplicates", "duplicates", function (d) { return d.totals.duplicates; }],
    ["rejected", "rejected", function (d) { return d.totals.rejected; }],
    ["spool-depth", "spool depth", function (d) { return d.spool.depth; }],
    ["spool-oldest", "oldest waiting", function (d) { return seconds(d.spool.oldest_s); }],
    ["p99", "forward p99", function (d) { return ms(last(d.samples.p99_ms)); }],
    ["dead-letters", "dead letters", function (d) { return d.totals.dead_letters; }],
    ["rate-limited", "rate-limited", function (d) { return d.totals.rate_limited; }]
  ];
  var STATUS_COLORS = { "2": "#1a7f37", "4": "#bc4c00", "5": "#cf222e", "0": "#59636e" };
  var CHARTS = [
    { id: "intake", title: "Intake: events and orders / s", unit: "/s",
      series: function (s) { return [
      ["accepted", s.accepted, "#1a7f37"], ["duplicates", s.duplicates, "#0969da"],
      ["rejected", s.rejected, "#cf222e"]]; } },
    { id: "upstream", title: "Upstream answers / s by status", unit: "/s", series: function (s) {
      return Object.keys(s.upstream).map(function (status, i) {
        var color = STATUS_COLORS[status.charAt(0)] || "#8250df";
        return [status === "0" ? "no answer" : status, s.upstream[status], shade(color, i)];
      }); } },
    { id: "latency", title: "Forward latency (ms)", unit: " ms", series: function (s) { return [
      ["p50", s.p50_ms, "#0969da"], ["p99", s.p99_ms, "#8250df"]]; } },
    { id: "spool", title: "Spool depth (records)", unit: "", series: function (s) { return [
      ["depth", s.spool_depth, "#9a6700"]]; } },
    { id: "oldest", title: "Oldest record waiting (s)", unit: " s", series: function (s) {
      return [["oldest", s.spool_oldest, "#59636e"]]; } },
    { id: "problems", title: "Dead letters and rate-limited / s", unit: "/s",
      series: function (s) { return [
        ["dead letters", s.dead_letters, "#cf222e"], ["rate-limited", s.rate_limited, "#bc4c00"]];
      } }
  ];

  function el(name, attrs, parent, ns) {
    var node = ns ? document.createElementNS(SVGNS, name) : document.createElement(name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function svg(name, attrs, parent) { return el(name, attrs, parent, true); }
  function last(values) {
    for (var i = values.length - 1; i >= 0; i--) {
      if (values[i] !== null && values[i] !== undefined) { return values[i]; }
    }
    return null;
  }
  function fmt(v) {
    if (v === null || v === undefined) { return "\xe2\x80\x93"; }
    if (Math.abs(v) >= 1000) { return Math.round(v).toLocaleString("en-US"); }
    if (Math.abs(v) >= 10 || v === Math.round(v)) { return String(Math.round(v)); }
    return String(parseFloat(v.toFixed(Math.abs(v) >= 1 ? 1 : 2)));
  }
  function ms(v) { return v === null || v === undefined ? "\xe2\x80\x93" : fmt(v) + " ms"; }
  function seconds(v) { return v === null || v === undefined ? "\xe2\x80\x93" : fmt(v) + " s"; }
  function shade(color, i) { return i < 3 ? color : ["#8250df", "#0969da", "#9a6700"][i % 3]; }
  function niceMax(v) {
    if (!(v > 0)) { return 1; }
    var p = Math.pow(10, Math.floor(Math.log10(v))), m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  function buildTiles() {
    var box = document.getElementById("tiles");
    TILES.forEach(function (tile) {
      var div = el("div", { "class": "tile", "id": "tile-" + tile[0] }, box);
      el("div", { "class": "label" }, div).textContent = tile[1];
      el("div", { "class": "value", "data-value": "" }, div).textContent = "\xe2\x80\x93";
    });
  }
  function buildCharts() {
    var box = document.getElementById("charts");
    CHARTS.forEach(function (chart) {
      var fig = el("figure", { "id": "chart-" + chart.id, "class": "chart" }, box);
      el("figcaption", {}, fig).textContent = chart.title;
      svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": chart.title }, fig);
      el("div", { "class": "legend" }, fig);
    });
    var fig = el("figure", { "id": "rejects" }, box);
    el("figcaption", {}, fig).textContent = "Top rejects by error key (last 10 min)";
    el("table", {}, fig);
  }

  function drawChart(chart, data) {
    var fig = document.getElementById("chart-" + chart.id);
    var root = fig.querySelector("svg"), legend = fig.querySelector(".legend");
    root.textContent = ""; legend.textContent = "";
    var series = chart.series(data.samples), t = data.samples.t;
    var end = data.now, start = end - data.window, max = 0;
    series.forEach(function (s) { s[1].forEach(function (v) { if (v > max) { max = v; } }); });
    var top = niceMax(max);
    function x(ts) { return L + (W - L - R) * Math.max(0, ts - start) / data.window; }
    function y(v) { return T + (H - T - B) * (1 - v / top); }
    [0, 0.5, 1].forEach(function (f) {
      svg("line", { x1: L, x2: W - R, y1: y(top * f), y2: y(top * f),
                    stroke: f ? "#eaeef2" : "#d1d9e0" }, root);
      svg("text", { x: L - 6, y: y(top * f) + 4, "text-anchor": "end" }, root).textContent =
        fmt(top * f) + chart.unit;
    });
    var minutes = Math.round(data.window / 60);
    [[start, "-" + minutes + " min", "start"], [start + data.window / 2,
      "-" + minutes / 2 + " min", "middle"], [end, "now", "end"]].forEach(function (tick) {
      svg("text", { x: x(tick[0]), y: H - 6, "text-anchor": tick[2] }, root).textContent = tick[1];
    });
    series.forEach(function (s) {
      var d = "", pen = "M", dots = [], values = s[1];
      function gap(i) { return values[i] === null || values[i] === undefined; }
      values.forEach(function (v, i) {
        if (gap(i)) { pen = "M"; return; }
        d += pen + x(t[i]).toFixed(1) + " " + y(v).toFixed(1) + " "; pen = "L";
        // a lone point (no neighbour to draw a line to) and the newest one get a dot
        if (i === values.length - 1 || ((i === 0 || gap(i - 1)) && gap(i + 1))) {
          dots.push([x(t[i]), y(v)]);
        }
      });
      if (d) {
        svg("path", { d: d.trim(), fill: "none", stroke: s[2], "stroke-width": 2,
                      "stroke-linejoin": "round", "class": "series", "data-series": s[0] }, root);
      }
      dots.forEach(function (dot) {
        svg("circle", { cx: dot[0], cy: dot[1], r: 3, fill: s[2] }, root);
      });
      var item = el("span", {}, legend);
      item.appendChild(swatch(s[2]));
      item.appendChild(document.createTextNode(s[0] + " "));
      el("b", {}, item).textContent = fmt(last(s[1])) + chart.unit;
    });
    if (!series.length) {
      el("span", { "class": "empty" }, legend).textContent = "nothing yet";
    }
  }
  function swatch(color) {
    var box = svg("svg", { "class": "swatch", width: 10, height: 10, viewBox: "0 0 10 10" });
    svg("rect", { width: 10, height: 10, rx: 2, fill: color }, box);
    return box;
  }

  function drawRejects(data) {
    var table = document.querySelector("#rejects table");
    table.textContent = "";
    if (!data.top_rejects.length) {
      el("td", { "class": "empty" }, el("tr", {}, table)).textContent = "no rejects";
      return;
    }
    data.top_rejects.forEach(function (row) {
      var tr = el("tr", {}, table);
      el("td", { "class": "key" }, tr).textContent = row.key;
      el("td", { "class": "count" }, tr).textContent = fmt(row.count);
    });
  }

  function render(data) {
    TILES.forEach(function (tile) {
      var value = tile[2](data);
      var node = document.querySelector("#tile-" + tile[0] + " .value");
      node.textContent = typeof value === "string" ? value : fmt(value);
      node.setAttribute("data-value", value === null ? "" : String(value));
    });
    CHARTS.forEach(function (chart) { drawChart(chart, data); });
    drawRejects(data);
    var meta = document.getElementById("meta");
    meta.className = "";
    meta.textContent = "worker pid " + data.pid + " \xc2\xb7 " + data.samples.t.length +
      " samples every " + data.interval + " s \xc2\xb7 updated " +
      new Date(data.now * 1000).toLocaleTimeString();
    document.body.setAttribute("data-ready", "1");
  }

  function refresh() {
    fetch("/status.json", { cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error("status " + r.status); } return r.json(); })
      .then(render)
      .catch(function (err) {
        var meta = document.getElementById("meta");
        meta.className = "down";
        meta.textContent = "cannot reach the gateway (" + err.message + "); retrying";
      })
      .then(function () { setTimeout(refresh, INTERVAL); });
  }

  buildTiles();
  buildCharts();
  refresh();
})();
</script>
</body>
</html>
"""
