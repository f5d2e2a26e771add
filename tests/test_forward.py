"""Forwarding to `POST /v2/ian/track`: retries, backoff, the outage probe, `ian-gateway forward`.

A real gateway process forwards over real HTTP to the recording upstream.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from gateway.connect import Answer
from gateway.forward import backoff, is_retryable, too_old
from gateway.spool import Record
from tests.support import TRACK, send
from tests.support.factories import event, event_id


def test_5xx_is_retried_until_it_arrives(gateway: Any, http: httpx.Client, upstream: Any) -> None:
    upstream.answer_next(TRACK, 503, times=2)
    send(http, gateway(), (evt := event()))
    received = upstream.wait_for(TRACK, 3)
    assert [event_id(r.json()) for r in received] == [event_id(evt)] * 3
    time.sleep(1.0)
    assert len(upstream.to(TRACK)) == 3  # acked after the 200: never sent again


def test_an_upstream_that_does_not_answer_in_time_is_retried(
        gateway: Any, http: httpx.Client, upstream: Any) -> None:
    upstream.stall_next(TRACK, 5.0)
    send(http, gateway(IAN_UPSTREAM_TIMEOUT="0.5"), event())
    stalled, retried = upstream.wait_for(TRACK, 2)
    # cut at 0.5 s by the client, then a backoff of at most 0.5 s
    assert retried.at - stalled.at < 2.0
    assert retried.body == stalled.body


def test_429_honours_retry_after(gateway: Any, http: httpx.Client, upstream: Any) -> None:
    upstream.answer_next(TRACK, 429, headers={"Retry-After": "1"})
    send(http, gateway(), event())
    first, second = upstream.wait_for(TRACK, 2)
    assert second.at - first.at >= 0.95


def test_unreachable_upstream_keeps_events_in_the_spool(gateway: Any, http: httpx.Client
                                                        ) -> None:
    gw = gateway(IAN_UPSTREAM_URL="http://127.0.0.1:9")  # nothing listens
    send(http, gw, event())
    time.sleep(0.5)
    assert http.get(gw.url + "/readyz").json()["spool_depth"] == 1


@pytest.mark.parametrize(("status", "retry"), [
    (0, True), (500, True), (503, True), (429, True), (401, True), (408, True),
    (400, False), (403, False), (404, False), (422, False),
])
def test_which_answers_are_retried(status: int, retry: bool) -> None:
    assert is_retryable(Answer(status, "")) is retry


def test_backoff_is_full_jitter_under_a_growing_cap_and_honours_retry_after() -> None:
    delays = [backoff(3, None) for _ in range(200)]
    assert all(0 <= d <= 4.0 for d in delays) and max(delays) > 2.0
    assert backoff(0, 7.0) >= 7.0
    assert backoff(100, None) <= 300.0


def test_orders_past_three_days_are_not_sent() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def order(created: str) -> Record:
        body = {"event": "order.created", "properties": {"created_at_utc": created}}
        return Record("order_log", "order:1", orjson.dumps(body), "")

    assert too_old(order("2026-11-19T12:30:00+00:00"), lambda: now) is None
    reason = too_old(order("2026-11-19T11:00:00+00:00"), lambda: now)
    assert reason is not None and "more than 3 days ago" in reason

    def not_read() -> datetime:
        raise AssertionError("a track record never ages out: the clock is not read for it")

    assert too_old(Record("track", "k", b"{}", ""), not_read) is None


class ScriptedConnect:
    """A Connect double: answers 503 while `down`, else 200; records concurrency."""

    def __init__(self) -> None:
        self.down = True
        self.in_flight = 0
        self.most_in_flight_while_down = 0
        self.delivered: list[str] = []
        self.calls = 0

    async def send(self, record: Record) -> Answer:
        self.calls += 1
        self.in_flight += 1
        if self.down:
            self.most_in_flight_while_down = max(self.most_in_flight_while_down, self.in_flight)
        await asyncio.sleep(0.005)
        self.in_flight -= 1
        if self.down:
            return Answer(503, "down")
        self.delivered.append(record.key)
        return Answer(200, "ok")


async def test_after_an_outage_the_backlog_drains_at_once() -> None:
    from gateway.forward import PROBE_CAP, Forwarder
    from gateway.metrics import Metrics
    from gateway.spool.memory import MemorySpool

    spool = MemorySpool(max_records=1000, dedupe_ttl=60)
    connect = ScriptedConnect()
    forwarder = Forwarder(spool, connect, concurrency=16, metrics=Metrics())  # type: ignore[arg-type]
    await spool.put([Record("track", f"k{i}", b"{}", "") for i in range(50)])
    forwarder.start()
    await asyncio.sleep(1.0)
    assert forwarder.upstream_down and connect.delivered == []
    assert connect.most_in_flight_while_down == 16  # the whole concurrency until it tripped
    connect.most_in_flight_while_down, calls = 0, connect.calls
    await asyncio.sleep(4.0)  # every record has failed by now: backoffs of up to 8 s
    assert connect.most_in_flight_while_down == 1  # then one probe at a time
    assert 1 <= connect.calls - calls <= 4  # probes spaced ~0.5, 1, 2, 4 s … apart
    connect.down = False
    recovered = time.monotonic()
    for _ in range(400):
        if len(connect.delivered) == 50:
            break
        await asyncio.sleep(0.05)
    drained_in = time.monotonic() - recovered
    await forwarder.stop()
    assert sorted(connect.delivered) == sorted(f"k{i}" for i in range(50))
    assert not forwarder.upstream_down
    # the next probe goes within one probe delay (PROBE_CAP at most); then all at once,
    # although each record's own backoff would have it wait up to 60 s
    assert drained_in < PROBE_CAP, drained_in


class PacedConnect:
    """A Connect double answering 200 after 5 ms; checks the forwarder's limit on each send."""

    def __init__(self) -> None:
        self.limiter: Any = None
        self.in_flight = 0
        self.most_in_flight = 0
        self.over_the_limit = 0
        self.delivered = 0

    async def send(self, record: Record) -> Answer:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.over_the_limit += self.in_flight > self.limiter.limit
        await asyncio.sleep(0.005)
        self.in_flight -= 1
        self.delivered += 1
        return Answer(200, "")


async def test_in_flight_follows_the_limit_as_it_grows_and_never_passes_it() -> None:
    from gateway.forward import Forwarder
    from gateway.limiter import INITIAL
    from gateway.metrics import Metrics
    from gateway.spool.memory import MemorySpool

    spool = MemorySpool(max_records=5000, dedupe_ttl=60)
    connect = PacedConnect()
    forwarder = Forwarder(spool, connect, concurrency=64, metrics=Metrics())  # type: ignore[arg-type]
    connect.limiter = forwarder.limiter
    await spool.put([Record("track", f"k{i}", b"{}", "") for i in range(3000)])
    forwarder.start()
    for _ in range(200):
        if connect.delivered == 3000:
            break
        await asyncio.sleep(0.05)
    await forwarder.stop()
    assert connect.delivered == 3000 and await spool.depth() == 0
    assert connect.over_the_limit == 0
    # parked workers were woken as the limit grew from its start to the ceiling
    assert forwarder.limiter.limit == 64 and connect.most_in_flight == 64 > INITIAL


def test_forwarder_in_a_process_of_its_own(gateway: Any, http: httpx.Client, upstream: Any,
                                          tmp_path: Any) -> None:
    gw = gateway(IAN_FORWARDER="false")
    send(http, gw, *(evts := [event() for _ in range(5)]))
    time.sleep(0.5)
    assert upstream.to(TRACK) == []  # serve alone only spools
    env = {**os.environ, "IAN_UPSTREAM_URL": upstream.url, "IAN_CLIENT_ID": "client",
           "IAN_CLIENT_SECRET": "secret", "IAN_SPOOL": f"sqlite:///{tmp_path}/spool.db",
           "IAN_LOG_FORMAT": "text"}
    forwarder = subprocess.Popen([sys.executable, "-m", "gateway", "forward"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        received = upstream.wait_for(TRACK, 5)
        assert sorted(event_id(r.json()) for r in received) == sorted(map(event_id, evts))
    finally:
        forwarder.send_signal(signal.SIGTERM)
        _, errors = forwarder.communicate(timeout=20)
    assert forwarder.returncode == 0, errors.decode()
    assert b"forwarder stopped" in errors
