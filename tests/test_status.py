"""The live status page: the sampler's numbers, the page's headers, and the page in Chromium."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.asgi import respond
from gateway.metrics import Metrics
from gateway.settings import Settings
from gateway.spool.memory import MemorySpool
from gateway.status import Status, build_page, csp_hash, quantile
from gateway.types import Receive, Scope, Send
from tests.browser.support import CHROMIUM, CHROMIUM_ARGS
from tests.support import Process, thread_server
from tests.support.factories import event


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_quantile_interpolates_inside_the_bucket() -> None:
    buckets = [(0.01, 0.0), (0.025, 10.0), (0.05, 10.0), (math.inf, 10.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.0175)
    assert quantile(0.99, buckets) == pytest.approx(0.02485)
    assert quantile(0.5, [(0.01, 0.0), (math.inf, 0.0)]) is None
    assert quantile(0.99, [(0.01, 1.0), (math.inf, 5.0)]) == 0.01  # only "more than 10 ms"


@pytest.fixture
def spool() -> MemorySpool:
    return MemorySpool(1000, 900.0)


async def test_samples_are_rates_since_the_last_reading(spool: MemorySpool) -> None:
    metrics, clock = Metrics(), Clock()
    status = Status(metrics, spool, interval=5, window=20, clock=clock, wall=clock)
    status.start()
    await status.stop()
    metrics.events.labels("track", "accepted").inc(50)
    metrics.events.labels("order_log", "accepted").inc(10)
    metrics.events.labels("track", "duplicate").inc(5)
    metrics.rejects.labels("data.sponsored_product_data.event_id", "1001").inc(3)
    metrics.upstream.labels("track", "200").inc(40)
    metrics.upstream.labels("track", "503").inc(2)
    metrics.forward_latency.labels("track").observe(0.02)
    metrics.rate_limited.inc(4)
    metrics.dead_letters.labels("track").inc()
    clock.now += 5
    sample = await status.sample()
    assert sample.rates["accepted"] == 12.0
    assert sample.rates["duplicates"] == 1.0
    assert sample.rates["rejected"] == 0.0
    assert sample.rates["rate_limited"] == 0.8
    assert sample.rates["dead_letters"] == 0.2
    assert sample.upstream == {"200": 8.0, "503": 0.4}
    assert sample.rejects == {"data.sponsored_product_data.event_id": 3.0}
    assert sample.p50_ms == pytest.approx(17.5)
    assert (sample.spool_depth, sample.spool_oldest) == (0, 0.0)
    clock.now += 5
    quiet = await status.sample()
    assert quiet.rates["accepted"] == 0.0
    assert quiet.p50_ms is None


async def test_the_ring_buffer_keeps_only_the_window(spool: MemorySpool) -> None:
    metrics, clock = Metrics(), Clock()
    status = Status(metrics, spool, interval=5, window=20, clock=clock, wall=clock)
    for _ in range(10):
        clock.now += 5
        await status.sample()
    assert len(status.history.samples) == 4
    columns = status.history.columns()
    assert columns["t"] == [clock.now - 15, clock.now - 10, clock.now - 5, clock.now]


async def test_top_rejects_over_the_window(spool: MemorySpool) -> None:
    metrics, clock = Metrics(), Clock()
    status = Status(metrics, spool, clock=clock, wall=clock)
    for n, key in enumerate(["a", "b", "c", "d", "e", "f", "g"]):
        metrics.rejects.labels(key, "1001").inc(n + 1)
    metrics.rejects.labels("", "9999").inc(100)
    clock.now += 5
    await status.sample()
    assert status.history.top_rejects() == [
        {"key": "(request)", "count": 100}, {"key": "g", "count": 7}, {"key": "f", "count": 6},
        {"key": "e", "count": 5}, {"key": "d", "count": 4}]


async def test_sampler_task_runs_on_its_interval_and_stops(spool: MemorySpool) -> None:
    status = Status(Metrics(), spool, interval=0.05, window=1)
    status.start()
    await asyncio.sleep(0.3)
    await status.stop()
    count = len(status.history.samples)
    assert count >= 2
    await asyncio.sleep(0.15)
    assert len(status.history.samples) == count


def client() -> httpx.AsyncClient:
    app = create_app(Settings(spool="memory:", forwarder=False))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


async def test_page_is_self_contained_with_safe_headers() -> None:
    async with client() as http:
        page = await http.get("/status")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'sha256-" in csp and "unsafe" not in csp
    assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-frame-options"] == "DENY"
    assert "http://" not in page.text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page.text


def test_page_is_the_static_files_with_its_style_and_script_inline() -> None:
    """What gateway/static holds is what runs: the CSP pins the two files' exact bytes."""
    body, headers = build_page()
    static = resources.files("gateway").joinpath("static")
    style, script = (static.joinpath(name).read_bytes() for name in ("status.css", "status.js"))
    assert b"<style>" + style + b"</style>" in body
    assert b'<script type="module">' + script + b"</script>" in body
    assert b'href="status.css"' not in body and b'src="status.js"' not in body
    csp = headers["Content-Security-Policy"]
    assert f"script-src {csp_hash(script)};" in csp and f"style-src {csp_hash(style)};" in csp


async def test_status_json_shape() -> None:
    async with client() as http:
        answer = await http.get("/status.json")
    data = answer.json()
    assert answer.headers["cache-control"] == "no-store"
    assert data["totals"] == {"accepted": 0, "duplicates": 0, "rejected": 0, "dead_letters": 0,
                              "rate_limited": 0, "upstream": {}}
    assert data["interval"] == 5.0 and data["window"] == 600.0
    assert set(data["samples"]) >= {"t", "accepted", "duplicates", "rejected", "spool_depth",
                                    "spool_oldest", "p50_ms", "p99_ms", "upstream",
                                    "dead_letters", "rate_limited"}


async def fast_upstream(scope: Scope, receive: Receive, send: Send) -> None:
    """Connect, as far as the forwarder can tell: 200 for every track request."""
    if scope["type"] != "http":
        return
    await asyncio.sleep(0.003)
    await respond(send, 200, {"status": "ok"})


@pytest.fixture
def gateway(spawn: Callable[..., Process]) -> Iterator[Process]:
    with thread_server(fast_upstream) as upstream:
        yield spawn(["serve", "--host", "127.0.0.1"], env={
            "IAN_UPSTREAM_URL": upstream.url, "IAN_ACCESS_TOKEN": "x", "IAN_SPOOL": "memory:"})


def drive_traffic(http: httpx.Client, url: str) -> dict[str, int]:
    """12 new events, 3 duplicates, 2 rejects: counts the page must show."""
    events = [event() for _ in range(12)]
    for start in range(0, 12, 4):
        assert http.post(f"{url}/v1/events", json={"events": events[start:start + 4]}
                         ).json()["accepted"] == 4
    assert http.post(f"{url}/v1/events", json={"events": events[:3]}).json()["duplicates"] == 3
    bad = [event(event_id="not-a-uuid"), event(event_id="also-not")]
    assert len(http.post(f"{url}/v1/events", json={"events": bad}).json()["rejected"]) == 2
    return {"accepted": 12, "duplicates": 3, "rejected": 2}


def wait_for_samples(http: httpx.Client, url: str, count: int) -> dict[str, Any]:
    """Until the sampler has `count` samples after the traffic and the forwarder is done."""
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        data: dict[str, Any] = http.get(f"{url}/status.json").json()
        seen = data["samples"]["accepted"]
        if (seen and max(seen) > 0 and len(seen) - seen.index(max(seen)) >= count
                and data["totals"]["upstream"].get("200") == 12):
            return data
        time.sleep(0.5)
    raise AssertionError(f"no samples with traffic: {data}")


@pytest.mark.browser
def test_status_page_draws_the_traffic_in_chromium(gateway: Process, http: httpx.Client) -> None:
    from playwright.sync_api import sync_playwright

    counts = drive_traffic(http, gateway.url)
    data = wait_for_samples(http, gateway.url, count=2)
    assert data["totals"]["accepted"] == counts["accepted"]
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.goto(f"{gateway.url}/status")
            page.wait_for_selector("body[data-ready='1']", timeout=10_000)
            shown = {name: page.text_content(f"#tile-{name} .value") for name in counts}
            accepted_path = page.get_attribute(
                "#chart-intake path[data-series='accepted']", "d") or ""
            upstream_series = page.eval_on_selector_all(
                "#chart-upstream path.series", "ps => ps.map(p => p.dataset.series)")
            latency_paths = page.locator("#chart-latency path.series").count()
            reject_keys = page.eval_on_selector_all(
                "#rejects td.key", "tds => tds.map(td => td.textContent)")
            page.screenshot(path="/tmp/ian-status.png", full_page=True)
        finally:
            browser.close()
    assert shown == {name: str(n) for name, n in counts.items()}
    assert accepted_path.startswith("M") and " L" in accepted_path
    assert "200" in upstream_series
    assert latency_paths == 2
    assert "data.sponsored_product_data.event_id" in reject_keys
    assert problems == []


def test_two_workers_report_together(spawn: Callable[..., Process], tmp_path: Any) -> None:
    """Under `serve --workers 2` every scrape and every /status.json counts both workers."""
    with thread_server(fast_upstream) as upstream:
        gateway = spawn(["serve", "--host", "127.0.0.1", "--workers", "2"], env={
            "IAN_UPSTREAM_URL": upstream.url, "IAN_ACCESS_TOKEN": "x",
            "IAN_SPOOL": f"sqlite:///{tmp_path}/spool.db"})
        deadline = time.monotonic() + 30
        while gateway.output().count("gateway ready") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        pids = set()
        for _ in range(40):  # a connection each: the kernel spreads them over both workers
            with httpx.Client(timeout=10) as http:
                answer = http.post(f"{gateway.url}/v1/events", json=event())
                assert answer.status_code == 202, answer.text
                pids.add(http.get(f"{gateway.url}/status.json").json()["pid"])
        assert len(pids) == 2, "every request reached the same worker"
        accepted = 'ian_intake_events_total{kind="track",outcome="accepted"} 40.0'
        for _ in range(6):
            with httpx.Client(timeout=10) as http:
                assert accepted in http.get(f"{gateway.url}/metrics").text
                assert http.get(f"{gateway.url}/status.json").json()["totals"]["accepted"] == 40
