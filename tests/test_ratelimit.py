"""The per-client token bucket: unit tests on an injected clock, then a real `serve` process."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.asgi import respond
from gateway.enrich import ClientAddress
from gateway.metrics import Metrics
from gateway.ratelimit import Buckets, RateLimit, retry_after
from gateway.settings import Settings
from gateway.types import Receive, Scope, Send
from tests.support import Process, free_port
from tests.support.factories import event


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_burst_then_rate(clock: Clock) -> None:
    buckets = Buckets(rate=2, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # one token per 1/rate seconds
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0


def test_clients_have_their_own_buckets(clock: Clock) -> None:
    buckets = Buckets(rate=1, burst=1, clock=clock)
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    assert buckets.take("b") == 0.0


def test_refill_never_exceeds_burst(clock: Clock) -> None:
    buckets = Buckets(rate=10, burst=2, clock=clock)
    buckets.take("a")
    clock.now += 3600
    assert [buckets.take("a") for _ in range(3)][:2] == [0.0, 0.0]
    assert buckets.take("a") > 0


def test_idle_buckets_are_forgotten_once_full_again(clock: Clock) -> None:
    buckets = Buckets(rate=5, burst=10, clock=clock)
    for _ in range(10):
        buckets.take("a")
    clock.now += 2.0  # burst / rate: the bucket would be full again
    assert buckets.take("b") == 0.0  # any access lets the cache expire old entries
    assert len(buckets) == 1
    assert [buckets.take("a") for _ in range(10)] == [0.0] * 10


def test_memory_stays_bounded_under_ip_spraying(clock: Clock) -> None:
    buckets = Buckets(rate=1, burst=5, clock=clock, max_clients=1000)
    for n in range(20_000):
        buckets.take(str(ipaddress.IPv4Address(0x0A000000 + n)))
    assert len(buckets) == 1000


@pytest.mark.parametrize(("wait", "header"), [(0.001, b"1"), (1.0, b"1"), (1.01, b"2"),
                                              (7.5, b"8")])
def test_retry_after_is_whole_seconds_at_least_one(wait: float, header: bytes) -> None:
    assert retry_after(wait) == header


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send, 200, {"ok": True})


def limited(clock: Clock, metrics: Metrics, trusted: str = "") -> RateLimit:
    networks = [ipaddress.ip_network(trusted)] if trusted else []
    return RateLimit(ok_app, rate=1, burst=2, address=ClientAddress(networks, None),
                     metrics=metrics, allowed_origins=["https://shop.example"], clock=clock)


def client(app: Any, ip: str = "198.51.100.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway")


def counted(metrics: Metrics) -> float:
    return float(metrics.rate_limited._value.get())


async def test_429_with_retry_after_and_instacart_error(clock: Clock) -> None:
    metrics = Metrics()
    async with client(limited(clock, metrics)) as http:
        codes = [(await http.post("/v1/events", content=b"{}")).status_code for _ in range(2)]
        over = await http.post("/v1/events", content=b"{}")
    assert codes == [200, 200]
    assert over.status_code == 429
    assert over.headers["retry-after"] == "1"
    assert over.json() == {"errors": [{"error": {
        "message": "too many requests from this client; retry after the Retry-After seconds",
        "error_code": 9999}}]}
    assert counted(metrics) == 1


async def test_a_storefront_can_read_its_429(clock: Clock) -> None:
    async with client(limited(clock, Metrics())) as http:
        def post(origin: str) -> Any:
            return http.post("/v1/events", content=b"{}", headers={"Origin": origin})
        for _ in range(2):
            await post("https://shop.example")
        allowed = await post("https://shop.example")
        other = await post("https://evil.example")
    assert allowed.status_code == other.status_code == 429
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    assert allowed.headers["access-control-expose-headers"] == "Retry-After"
    assert "access-control-allow-origin" not in other.headers


async def test_recovers_after_waiting(clock: Clock) -> None:
    async with client(limited(clock, Metrics())) as http:
        for _ in range(3):
            await http.post("/v1/orders", content=b"{}")
        assert (await http.post("/v1/orders", content=b"{}")).status_code == 429
        clock.now += 1.0
        assert (await http.post("/v1/orders", content=b"{}")).status_code == 200


async def test_preflights_and_other_paths_pass(clock: Clock) -> None:
    metrics = Metrics()
    async with client(limited(clock, metrics)) as http:
        for _ in range(5):
            assert (await http.options("/v1/events")).status_code == 200
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/metrics")).status_code == 200
        assert (await http.post("/v1/events", content=b"{}")).status_code == 200
    assert counted(metrics) == 0


async def test_behind_a_trusted_proxy_each_shopper_has_a_bucket(clock: Clock) -> None:
    app = limited(clock, Metrics(), trusted="10.0.0.0/8")
    async with client(app, ip="10.1.2.3") as http:
        def post(shopper: str) -> Any:
            return http.post("/v1/events", content=b"{}", headers={"x-forwarded-for": shopper})
        assert [(await post("203.0.113.1")).status_code for _ in range(3)] == [200, 200, 429]
        assert (await post("203.0.113.2")).status_code == 200


def test_app_wraps_only_when_a_rate_is_set() -> None:
    base = Settings(spool="memory:", forwarder=False)
    off = create_app(base)
    on = create_app(base.with_(rate_limit=5.0, rate_burst=5))
    assert not isinstance(off.app.app, RateLimit)
    assert isinstance(on.app.app, RateLimit)
    assert on.parts.settings.rate_limit == 5.0


def post_event(http: httpx.Client, url: str) -> httpx.Response:
    return http.post(f"{url}/v1/events", json=event(), headers={"User-Agent": "Mozilla/5.0"})


def test_serve_answers_429_after_the_burst_and_recovers(
    spawn: Callable[..., Process], http: httpx.Client
) -> None:
    gateway = spawn(["serve", "--host", "127.0.0.1"], env={
        "IAN_UPSTREAM_URL": f"http://127.0.0.1:{free_port()}", "IAN_ACCESS_TOKEN": "x",
        "IAN_SPOOL": "memory:", "IAN_RATE_LIMIT": "5", "IAN_RATE_BURST": "5"})
    burst = [post_event(http, gateway.url).status_code for _ in range(5)]
    assert burst == [202] * 5
    # 5/s refill: a few more requests in a row must run dry, however slow this machine is.
    for _ in range(20):
        over = post_event(http, gateway.url)
        if over.status_code == 429:
            break
    assert over.status_code == 429, over.text
    assert int(over.headers["retry-after"]) >= 1
    assert over.json()["errors"][0]["error"]["error_code"] == 9999
    assert "x-request-id" in over.headers
    time.sleep(int(over.headers["retry-after"]))
    assert post_event(http, gateway.url).status_code == 202
    metrics = http.get(f"{gateway.url}/metrics").text
    assert "ian_rate_limited_requests_total 0.0" not in metrics
