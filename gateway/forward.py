"""The forwarder: spool -> Connect -> ack | retry later | dead letter.

It owns all upstream traffic. How many records are in flight adapts to the
upstream (`gateway/limiter.py`), up to `IAN_FORWARD_CONCURRENCY`; a 2xx acks,
a 5xx/429/timeout/connection error retries with exponential backoff and full
jitter (honouring Retry-After) for as long as the spool holds the record, and
any other 4xx is a dead letter with the upstream's answer: never retried
blindly. A 3xx is not a delivery either: the client never follows it (records
go to `IAN_UPSTREAM_URL` or nowhere), so the record is retried, and the
`Location` is logged once and counted.

When the upstream fails `TRIP` times in a row it is taken as down: the
forwarder sends one record at a time, spaced by the same backoff, instead of
its whole concurrency against a dead host. The first answer after that (a 2xx
or a 4xx: the upstream is up) makes every waiting retry due at once, so an
outage's backlog drains as soon as the upstream is back, not when each
record's own backoff ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from gateway.connect import Answer, Connect
from gateway.limiter import Limiter
from gateway.metrics import Metrics
from gateway.orders import rules as order_rules
from gateway.spool import Claimed, Record, Spool

log = logging.getLogger("gateway.forward")

BACKOFF_BASE = 0.5  # seconds before the first retry, at most
BACKOFF_CAP = 60.0  # seconds between attempts of one record, at most
CLAIM_WAIT = 0.5  # seconds a claim waits for work before looking again
TRIP = 10  # retryable failures in a row that mean the upstream is down
PROBE_CAP = 10.0  # seconds between probes of a down upstream, at most: one request is cheap
# Answers that say the upstream is overloaded or unreachable: the limiter backs off on them.
DROPS = frozenset({0, 408, 429, 502, 503, 504})
# Records claimed ahead: up to AHEAD x the in-flight limit in hand (in flight or ready for a
# worker), claimed when a quarter of that is free. Workers never wait on a claim, and claims are few
# and large: each is one transaction of the spool's writer (docs/performance.md).
AHEAD = 2
# Most records in one claim: the spool's writer builds them all in one go, holding the GIL,
# and with a limit in the hundreds an unbounded claim would stall intake for milliseconds.
CLAIM_MAX = 256


def is_retryable(answer: Answer) -> bool:
    """5xx, 429, 408, no answer at all, a 401 the token refresh did not cure, or a 3xx."""
    return answer.status in (0, 401, 408, 429) or answer.status >= 500 or is_redirect(answer)


def is_redirect(answer: Answer) -> bool:
    return 300 <= answer.status < 400


def backoff(attempts: int, retry_after: float | None) -> float:
    """Full jitter, floored by Retry-After.

    Full jitter: AWS Architecture Blog, "Exponential Backoff And Jitter" (2015).
    """
    delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(attempts, 30)))
    return max(delay, retry_after or 0.0)


def too_old(record: Record, now: Callable[[], datetime] = lambda: datetime.now(UTC)
            ) -> str | None:
    """Why Instacart would not count this record any more, or None: only orders age out
    (the clock is read for them only: it costs a track record a microsecond or more)."""
    return order_rules.too_old(record.body, now()) if record.kind == "order_log" else None


class Forwarder:
    def __init__(self, spool: Spool, connect: Connect, concurrency: int, metrics: Metrics) -> None:
        self._spool = spool
        self._connect = connect
        self.limiter = Limiter(concurrency, on_round=self._new_round)
        metrics.observe_limiter(self.limiter)  # the starting limit, before the first round
        self._metrics = metrics
        self._redirected_to: str | None = None  # the Location last logged
        # The claimer hands records to long-lived workers: no task per record. A worker
        # takes a record only with a free slot of the limiter, and one that ends a request
        # goes on with the next record itself; it parks only when there is no record or
        # no slot (`_park`), so a record costs no future of its own on the way.
        self._ready: deque[Claimed] = deque()
        self._parked: deque[asyncio.Future[None]] = deque()
        self._waking = 0  # parked workers woken that have not run yet
        self._workers: list[asyncio.Task[None]] = []
        self._busy = 0  # records handed to the workers and not yet settled
        # The claimer waits for room for a claim: until no more than `_claim_at` records are
        # in hand. Not woken by every record settled: most would find too little room.
        self._room = asyncio.Event()
        self._claim_at = 0
        self._idle = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failures = 0  # retryable answers in a row
        self._probe_at = 0.0  # while down: when the next single record may go
        self._probe_delay = BACKOFF_BASE

    @property
    def upstream_down(self) -> bool:
        return self._failures >= TRIP

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work(), name=f"forwarder-{i}")
                         for i in range(self.limiter.ceiling)]
        self._task = asyncio.create_task(self._run(), name="forwarder")

    async def stop(self, drain_timeout: float = 10.0) -> None:
        """Stop claiming, let requests in flight finish; what does not finish stays in the spool."""
        self._stopping.set()
        self._room.set()  # a claimer waiting for room sees the stop now
        if self._task is not None:
            await self._task
        if self._busy:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), drain_timeout)
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            capacity = 1 if self.upstream_down else AHEAD * self.limiter.limit
            least = max(1, min(capacity // 4, CLAIM_MAX))  # the smallest claim worth making
            free = capacity - self._busy
            if free < least:
                self._claim_at = capacity - least
                self._room.clear()
                await self._room.wait()
                continue
            if self.upstream_down and await self._wait_for_probe():
                continue
            try:
                claimed = await self._spool.claim(min(free, CLAIM_MAX), wait=CLAIM_WAIT)
            except Exception:
                log.exception("spool claim failed; trying again shortly")
                await asyncio.sleep(CLAIM_WAIT)
                continue
            self._busy += len(claimed)
            self._ready.extend(claimed)
            self._unpark()

    async def _wait_for_probe(self) -> bool:
        """Sleeps until the next probe may go; True when stopping or woken meanwhile."""
        delay = self._probe_at - time.monotonic()
        if delay <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), min(delay, CLAIM_WAIT))
        return True

    async def _work(self) -> None:
        ready, limiter = self._ready, self.limiter
        while True:
            if not ready or not limiter.try_acquire():
                await self._park()
                continue
            claimed = ready.popleft()
            try:
                await self._deliver(claimed)
            except Exception:
                # The record stays leased in the spool and is claimed again when its lease ends.
                log.exception("could not settle record %s", claimed.id)
            finally:
                self._busy -= 1
                if self._busy <= self._claim_at:
                    self._room.set()
                if not self._busy:
                    self._idle.set()

    async def _park(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._parked.append(waiter)
        try:
            await waiter
        finally:
            if waiter.done() and not waiter.cancelled():
                self._waking -= 1

    def _unpark(self) -> None:
        """Wake as many parked workers as there are records with a free slot for them."""
        wanted = min(len(self._ready), self.limiter.limit - self.limiter.in_flight)
        parked = self._parked
        while self._waking < wanted and parked:
            waiter = parked.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._waking += 1

    def _new_round(self, limiter: Limiter) -> None:
        """After each round of the limiter: its figures to the metrics, and a grown limit
        to the workers and the claimer."""
        self._metrics.observe_limiter(limiter)
        self._unpark()
        self._room.set()

    async def _deliver(self, claimed: Claimed) -> None:
        """Send one record with the slot its worker took, and settle it."""
        kind = claimed.record.kind
        limiter = self.limiter
        reason = too_old(claimed.record)
        if reason is not None:
            limiter.release(None)
            await self._dead(claimed, Answer(0, reason))
            return
        started = time.perf_counter()
        try:
            answer = await self._connect.send(claimed.record)
        except BaseException:
            limiter.release(None)
            raise
        elapsed = time.perf_counter() - started
        dropped = answer.status in DROPS
        limiter.release(None if dropped else elapsed, dropped)
        m = self._metrics
        m.child(m.forward_latency, kind).observe(elapsed)
        m.child(m.upstream, kind, str(answer.status)).inc()
        if is_redirect(answer):
            self._redirected(kind, answer)
        await self._settle(claimed, answer)

    async def _settle(self, claimed: Claimed, answer: Answer) -> None:
        kind = claimed.record.kind
        if is_retryable(answer):
            self._failed(answer)
            self._metrics.child(self._metrics.retries, kind).inc()
            await self._spool.retry(claimed, backoff(claimed.attempts, answer.retry_after))
            return
        if self._failures:
            await self._upstream_up()
        if 200 <= answer.status < 300:
            await self._spool.ack(claimed)
        else:
            await self._dead(claimed, answer)

    def _redirected(self, kind: str, answer: Answer) -> None:
        """Counted each time (an alert watches the counter), logged when the target changes."""
        self._metrics.child(self._metrics.redirects, kind).inc()
        if answer.location != self._redirected_to:
            self._redirected_to = answer.location
            log.error("upstream answered %s redirecting to %s: not followed; the gateway sends "
                      "only to IAN_UPSTREAM_URL (is it the right URL?). Records are kept and "
                      "retried", answer.status, answer.location)

    def _failed(self, answer: Answer) -> None:
        self._failures += 1
        if self._failures < TRIP:
            return
        now = time.monotonic()
        if self._failures == TRIP:
            log.warning("upstream down (%d failures in a row, last %s): probing one record "
                        "at a time", TRIP, answer.status)
            self._probe_delay = BACKOFF_BASE
        elif now >= self._probe_at:  # a probe failed, not a request already in flight at the trip
            self._probe_delay = min(self._probe_delay * 2, PROBE_CAP)
        # equal jitter: spaced at least half the delay, so probes do not bunch up
        delay = self._probe_delay / 2 + random.uniform(0, self._probe_delay / 2)
        self._probe_at = now + max(delay, answer.retry_after or 0.0)

    async def _upstream_up(self) -> None:
        """An answer that is not a failure: the count of failures in a row starts again."""
        was_down = self.upstream_down
        self._failures = 0
        if was_down:
            due = await self._spool.expedite()
            log.warning("upstream answering again: %d waiting records due now", due)

    async def _dead(self, claimed: Claimed, answer: Answer) -> None:
        self._metrics.child(self._metrics.dead_letters, claimed.record.kind).inc()
        log.warning("dead letter %s: upstream %s %s", claimed.record.key, answer.status,
                    answer.body[:500])
        await self._spool.dead(claimed, answer.status, answer.body)
