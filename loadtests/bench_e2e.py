"""End-to-end throughput: events/s the stub receives while the spool depth holds still.

wrk cannot steer its rate by what comes out of the other end, so this is a
small aiohttp client that offers 20-event beacons (a few hundred requests/s,
cheap for one Python process) and adjusts the offered rate twice a second so
the backlog stays near `target_depth`: offered = what the stub received in the
last interval + (target - backlog) / 2 s. The backlog is counted end to end,
independent of the gateway's own metrics: events the gateway answered as
accepted minus requests the stub has received (that is the spool depth plus the
forwarder's in-flight requests). A backlog held above zero keeps the forwarder
busy all the time, and held still means intake and forwarding run at the same
rate: the figure is the gateway's sustained end-to-end capacity.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from loadtests.bench_lua import HEADERS, PATH, body_template, fill

DRAIN_SECONDS = 3.0
DRAIN_FLOOR = 300  # below this the forwarder may idle between claims: stop measuring
_DEPTH = re.compile(rb"^ian_spool_depth(?:\{[^}]*\})?\s+([0-9.eE+-]+)", re.MULTILINE)


def spool_depth_from(metrics: bytes) -> float | None:
    """The `ian_spool_depth` gauge of a Prometheus text page, if present."""
    match = _DEPTH.search(metrics)
    return float(match.group(1)) if match else None


def offered_rate(received_rate: float, backlog: float, target: float, horizon: float) -> float:
    """Events/s to offer next: keep up with the output and close the gap to `target`."""
    return max(0.0, received_rate + (target - backlog) / horizon)


@dataclass
class Window:
    """What one measurement window saw."""

    seconds: float = 0.0
    received: int = 0
    accepted: int = 0
    backlog_start: float = 0.0
    backlog_end: float = 0.0
    backlog_min: float = float("inf")
    backlog_max: float = 0.0
    spool_depth_start: float | None = None
    spool_depth_end: float | None = None

    def as_dict(self, events_per_beacon: int, errors: int) -> dict[str, Any]:
        seconds = self.seconds or 1.0
        drift = self.backlog_end - self.backlog_start
        return {
            "received_events_per_s": self.received / seconds,
            "offered_events_per_s": self.accepted / seconds,
            "seconds": self.seconds,
            "events_per_beacon": events_per_beacon,
            "backlog_start": self.backlog_start,
            "backlog_end": self.backlog_end,
            "backlog_min": self.backlog_min,
            "backlog_max": self.backlog_max,
            "spool_depth_start": self.spool_depth_start,
            "spool_depth_end": self.spool_depth_end,
            "errors": errors,
            # stable: the backlog moved by less than a tenth of what went through
            "stable": self.received > 0 and abs(drift) <= 0.1 * self.received,
        }


@dataclass
class Driver:
    gateway: str  # base URL
    received: Callable[[], int]  # the stub's count
    events_per_beacon: int = 20
    target_backlog: float = 3000.0
    horizon: float = 2.0
    max_in_flight: int = 128
    accepted: int = 0
    errors: int = 0
    rate: float = 1000.0
    origin: int = 0  # the stub's count when this driver started (baselines posted there too)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def run(self, settle: float, duration: float) -> dict[str, Any]:
        fragments = body_template(self.events_per_beacon)
        self.origin = self.received()
        connector = aiohttp.TCPConnector(limit=self.max_in_flight)
        async with aiohttp.ClientSession(connector=connector) as session:
            sender = asyncio.create_task(self._send_forever(session, fragments))
            try:
                await self._control(session, settle, None)
                window = Window()
                await self._control(session, duration, window)
            finally:
                sender.cancel()
                await asyncio.gather(sender, *self.tasks, return_exceptions=True)
        return {**window.as_dict(self.events_per_beacon, self.errors),
                "drain_events_per_s": await self.drain(DRAIN_SECONDS)}

    async def drain(self, seconds: float) -> float | None:
        """Events/s the forwarder delivers with intake idle, while the backlog lasts: the
        forwarder's own capacity, to tell its cost from intake's."""
        start, received0 = time.monotonic(), self.delivered()
        for _ in range(round(seconds / 0.1)):  # polls the stub's log: nothing to await on
            if self.backlog() <= DRAIN_FLOOR:
                break
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - start
        return (self.delivered() - received0) / elapsed if elapsed > 0.5 else None

    def delivered(self) -> int:
        return self.received() - self.origin

    def backlog(self) -> float:
        return float(self.accepted - self.delivered())

    async def _control(self, session: aiohttp.ClientSession, seconds: float,
                       window: Window | None) -> None:
        start, received0, accepted0 = time.monotonic(), self.delivered(), self.accepted
        if window is not None:
            window.backlog_start = self.backlog()
            window.spool_depth_start = await self._spool_depth(session)
        last_time, last_received = start, received0
        while (now := time.monotonic()) < start + seconds:
            await asyncio.sleep(0.5)
            now, received = time.monotonic(), self.delivered()
            rate = (received - last_received) / max(now - last_time, 1e-3)
            backlog = self.backlog()
            self.rate = offered_rate(rate, backlog, self.target_backlog, self.horizon)
            last_time, last_received = now, received
            if window is not None:
                window.backlog_min = min(window.backlog_min, backlog)
                window.backlog_max = max(window.backlog_max, backlog)
        if window is not None:
            window.seconds = time.monotonic() - start
            window.received = self.delivered() - received0
            window.accepted = self.accepted - accepted0
            window.backlog_end = self.backlog()
            window.spool_depth_end = await self._spool_depth(session)

    async def _send_forever(self, session: aiohttp.ClientSession, fragments: list[str]) -> None:
        budget, last = 0.0, time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            budget += self.rate * (now - last) / self.events_per_beacon
            last = now
            while budget >= 1 and len(self.tasks) < self.max_in_flight:
                budget -= 1
                task = asyncio.create_task(self._post(session, fill(fragments)))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            budget = min(budget, 1.0)  # no burst to make up for a full pipe

    async def _post(self, session: aiohttp.ClientSession, body: bytes) -> None:
        try:
            async with session.post(self.gateway + PATH, data=body, headers=HEADERS) as response:
                answer = await response.json(content_type=None)
                if response.status == 202:
                    self.accepted += int(answer.get("accepted", 0))
                    return
        except (aiohttp.ClientError, ValueError):
            pass
        self.errors += 1

    async def _spool_depth(self, session: aiohttp.ClientSession) -> float | None:
        try:
            async with session.get(self.gateway + "/metrics") as response:
                return spool_depth_from(await response.read()) if response.status == 200 else None
        except aiohttp.ClientError:
            return None
