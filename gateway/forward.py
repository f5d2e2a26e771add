"""The forwarder: spool -> Connect -> ack | retry later | dead letter.

It owns all upstream traffic. Up to `IAN_FORWARD_CONCURRENCY` records are in
flight; a 2xx acks, a 5xx/429/timeout/connection error retries with
exponential backoff and full jitter (honouring Retry-After) for as long as the
spool holds the record, and any other 4xx is a dead letter with the
upstream's answer: never retried blindly.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import UTC, datetime

import orjson

from gateway.connect import Answer, Connect
from gateway.metrics import Metrics
from gateway.orders import MAX_AGE, parse_time
from gateway.spool import Claimed, Record, Spool

log = logging.getLogger("gateway.forward")

BACKOFF_BASE = 0.5  # seconds before the first retry, at most
BACKOFF_CAP = 300.0  # seconds between attempts, at most
CLAIM_WAIT = 0.5  # seconds a claim waits for work before looking again


def is_retryable(answer: Answer) -> bool:
    """5xx, 429, 408, no answer at all, or a 401 the token refresh did not cure."""
    return answer.status in (0, 401, 408, 429) or answer.status >= 500


def backoff(attempts: int, retry_after: float | None) -> float:
    """Full jitter, floored by Retry-After.

    Full jitter: AWS Architecture Blog, "Exponential Backoff And Jitter" (2015).
    """
    delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(attempts, 30)))
    return max(delay, retry_after or 0.0)


def too_old(record: Record, now: datetime) -> str | None:
    """Why Instacart would not count this record any more, or None.

    order-log doc: orders must be sent within three days of creation. An order that
    waited out an outage past that goes to the dead letters instead of upstream.
    """
    if record.kind != "order_log":
        return None
    try:
        created = parse_time(orjson.loads(record.body)["properties"]["created_at_utc"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if created is None or now - created <= MAX_AGE:
        return None
    return f"not sent: created_at_utc {created.isoformat()} is more than 3 days ago"


class Forwarder:
    def __init__(self, spool: Spool, connect: Connect, concurrency: int, metrics: Metrics) -> None:
        self._spool = spool
        self._connect = connect
        self._concurrency = concurrency
        self._metrics = metrics
        self._in_flight: set[asyncio.Task[None]] = set()
        self._slot_free = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="forwarder")

    async def stop(self, drain_timeout: float = 10.0) -> None:
        """Stop claiming, let requests in flight finish; what does not finish stays in the spool."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=drain_timeout)
        for task in self._in_flight:
            task.cancel()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            free = self._concurrency - len(self._in_flight)
            if free <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            try:
                claimed = await self._spool.claim(free, wait=CLAIM_WAIT)
            except Exception:
                log.exception("spool claim failed; trying again shortly")
                await asyncio.sleep(CLAIM_WAIT)
                continue
            for item in claimed:
                task = asyncio.create_task(self._forward(item))
                self._in_flight.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slot_free.set()

    async def _forward(self, claimed: Claimed) -> None:
        try:
            await self._deliver(claimed)
        except Exception:
            # The record stays leased in the spool and is claimed again when its lease ends.
            log.exception("could not settle record %s", claimed.id)

    async def _deliver(self, claimed: Claimed) -> None:
        kind = claimed.record.kind
        reason = too_old(claimed.record, datetime.now(UTC))
        if reason is not None:
            await self._dead(claimed, Answer(0, reason))
            return
        started = time.perf_counter()
        answer = await self._connect.send(claimed.record)
        self._metrics.forward_latency.labels(kind).observe(time.perf_counter() - started)
        self._metrics.upstream.labels(kind, str(answer.status)).inc()
        await self._settle(claimed, answer)

    async def _settle(self, claimed: Claimed, answer: Answer) -> None:
        kind = claimed.record.kind
        if 200 <= answer.status < 300:
            await self._spool.ack(claimed)
        elif is_retryable(answer):
            self._metrics.retries.labels(kind).inc()
            await self._spool.retry(claimed, backoff(claimed.attempts, answer.retry_after))
        else:
            await self._dead(claimed, answer)

    async def _dead(self, claimed: Claimed, answer: Answer) -> None:
        self._metrics.dead_letters.labels(claimed.record.kind).inc()
        log.warning("dead letter %s: upstream %s %s", claimed.record.key, answer.status,
                    answer.body[:500])
        await self._spool.dead(claimed, answer.status, answer.body)
