"""gateway/request_timeout.py: slow clients against a real `ian-gateway serve`, real sockets.

The gateway runs with IAN_REQUEST_TIMEOUT=1; clients trickle requests a byte at a
time (slowloris), sit idle, or are merely slow but within the bound, while normal
traffic goes on beside them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx
import orjson
import pytest

from tests.support import BEACON, metric
from tests.support.factories import event, event_id

BOUND = 1.0  # IAN_REQUEST_TIMEOUT in these tests
LATE = 2.5  # how long past the bound a loaded machine may take to cut a connection
DRIP = 0.2  # seconds between two trickled bytes
TIMEOUT = {"error": {"message": "the request did not arrive whole within 1 s (IAN_REQUEST_TIMEOUT)",
                     "error_code": 9999}}


@pytest.fixture
def gw(gateway: Any) -> Any:
    return gateway(IAN_SPOOL="memory:", IAN_REQUEST_TIMEOUT=str(BOUND))


def beacon_head(length: int) -> bytes:
    return (b"POST /v1/events HTTP/1.1\r\nHost: shop.example\r\nContent-Type: text/plain\r\n"
            b"Content-Length: %d\r\n\r\n" % length)


async def read_all(reader: asyncio.StreamReader) -> bytes:
    """Everything the gateway sends until it closes (a reset after its answer ends it too)."""
    chunks: list[bytes] = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := await reader.read(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def trickle(port: int, sent_at_once: bytes, dripped: bytes) -> tuple[float, bytes]:
    """Send `sent_at_once`, then `dripped` a byte every DRIP seconds; answers how long the
    gateway kept the connection and what it sent before closing it."""
    started = time.monotonic()  # before the connection: the gateway's clock starts after
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def drip() -> None:
        with contextlib.suppress(ConnectionError):
            writer.write(sent_at_once)
            for byte in dripped:
                await asyncio.sleep(DRIP)
                writer.write(bytes([byte]))

    dripping = asyncio.create_task(drip())
    try:
        answer = await asyncio.wait_for(read_all(reader), BOUND + 10)
    finally:
        dripping.cancel()
        writer.close()
    return time.monotonic() - started, answer


def error_of(answer: bytes) -> tuple[bytes, Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], orjson.loads(body)


async def normal_traffic(gw: Any, seconds: float) -> list[dict[str, Any]]:
    """Beacons at 20 a second while the slow clients trickle; each must be accepted."""
    sent = []
    async with httpx.AsyncClient(timeout=10) as http:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            evt = event()
            answer = await http.post(gw.url + "/v1/events", content=orjson.dumps(evt),
                                     headers=BEACON)
            assert answer.status_code == 202, answer.text
            sent.append(evt)
            await asyncio.sleep(0.05)
    return sent


async def test_trickling_clients_are_cut_after_the_bound_and_normal_traffic_goes_on(
        gw: Any, upstream: Any) -> None:
    body = orjson.dumps(event())  # a valid event: only its slowness is wrong
    headers = [trickle(gw.port, b"", beacon_head(len(body)) + body) for _ in range(50)]
    bodies = [trickle(gw.port, beacon_head(len(body)), body) for _ in range(50)]
    traffic = asyncio.create_task(normal_traffic(gw, BOUND + 2))
    cut = await asyncio.gather(*headers, *bodies)
    sent = await traffic
    for kept, answer in cut:
        assert BOUND <= kept <= BOUND + LATE, kept
        status, error = error_of(answer)
        assert status == b"HTTP/1.1 408 Request Timeout"
        assert error == {"errors": [TIMEOUT]}
    received = upstream.wait_for("/v2/ian/track", len(sent))
    # the trickled event was never whole: not one of them was stored or forwarded
    assert sorted(event_id(r.json()) for r in received) == sorted(event_id(e) for e in sent)
    with httpx.Client() as http:
        incomplete = 'ian_incomplete_requests_total{reason="%s"}'
        assert metric(http, gw, incomplete % "headers_timeout") == 50
        assert metric(http, gw, incomplete % "body_timeout") == 50


async def test_an_idle_connection_is_closed_without_an_answer(gw: Any) -> None:
    kept, answer = await trickle(gw.port, b"", b"")
    assert BOUND <= kept <= BOUND + LATE
    assert answer == b""
    with httpx.Client() as http:
        assert metric(http, gw, 'ian_incomplete_requests_total{reason="idle_timeout"}') == 1


async def test_slow_but_within_the_bound_is_served_and_each_request_has_its_own_bound(
        gw: Any, upstream: Any) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    first, second = orjson.dumps(event()), orjson.dumps(event())
    for body in (first, second):  # together longer than the bound, each within it
        writer.write(beacon_head(len(body)))
        await asyncio.sleep(BOUND * 0.6)
        writer.write(body)
        status = await asyncio.wait_for(reader.readline(), 5)
        assert status == b"HTTP/1.1 202 Accepted\r\n"
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
    writer.close()
    assert len(upstream.wait_for("/v2/ian/track", 2)) == 2


async def exchange(port: int, request: bytes) -> bytes:
    """Send `request` whole (or as much as the gateway reads), answer what came back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    with contextlib.suppress(ConnectionError):
        writer.write(request)
        await writer.drain()
    try:
        return await asyncio.wait_for(read_all(reader), 10)
    finally:
        writer.close()


async def test_headers_over_64_kib_are_431_and_big_cookies_are_served(gw: Any) -> None:
    body = orjson.dumps(event())
    huge = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(200))  # 200 KB
    answer = await exchange(gw.port, beacon_head(len(body))[:-2] + huge + b"\r\n" + body)
    status, error = error_of(answer)
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert error["errors"][0]["error"]["error_code"] == 9999
    cookies = b"Cookie: " + b"; ".join(b"c%d=%s" % (i, b"v" * 100) for i in range(400)) + b"\r\n"
    answer = await exchange(gw.port, beacon_head(len(body))[:-2] + cookies + b"Connection: close"
                            b"\r\n\r\n" + body)  # 40 KB of cookies: a storefront's own domain
    assert answer.startswith(b"HTTP/1.1 202 Accepted\r\n"), answer[:200]
    with httpx.Client() as http:
        assert metric(http, gw, 'ian_incomplete_requests_total{reason="headers_too_large"}') == 1


async def test_what_is_not_http_is_400_with_the_error_object(gw: Any) -> None:
    status, error = error_of(await exchange(gw.port, b"\x16\x03\x01 not http at all\r\n\r\n"))
    assert status == b"HTTP/1.1 400 Bad Request"
    assert error == {"errors": [{"error": {"message": "Invalid HTTP request received.",
                                           "error_code": 9999}}]}
