"""How many upstream requests may be in flight: a limit that adapts to the upstream.

With a fixed number in flight, throughput is capped at that number ÷ the round
trip whatever the CPU, and a distant upstream needs hundreds; too many, and a
throttling upstream is hammered, or this process's own event loop queues the
answers (which is latency the intake shares). So the limit moves like a
congestion window (TCP Vegas; Netflix's concurrency-limits, Vegas and Gradient;
Envoy's adaptive-concurrency filter), once per round, a round being about one
round trip:

- a round with a drop (429, 503, a timeout, no answer: `Limiter.release(dropped=True)`)
  halves the limit;
- a round whose mean round trip rose past `SHRINK_ABOVE` x the baseline plus
  `SLACK` (the baseline: the lowest round mean of the last one to two
  `BASELINE_EPOCH`s) takes a tenth off;
- a round where the limit was reached (requests waited for a slot) and the
  mean round trip stayed within `GROW_BELOW` x the baseline plus `SLACK` adds
  √limit, up to the ceiling (`IAN_FORWARD_CONCURRENCY`);
- otherwise the limit stays: a forwarder with little to send does not grow it,
  and between the two thresholds it holds.

The band between the thresholds is wide on purpose, and `SLACK` is added to
both: a round trip is measured in this process, so it also grows when the core
is busy with intake (by milliseconds on a loaded core, which on loopback is
many times the upstream's own), and the limit must not collapse for latency
the upstream did not cause. A record waiting 10 ms more costs nothing: it
waited in the spool already. When the
client's own CPU is what binds, more in flight only lengthens the round trip
(it is limit ÷ throughput), so the limit settles where the round trip is
1.5-2.5 x its minimum (plus the slack): the most throughput, with a bounded queue.

Additive growth of √limit per round climbs from `INITIAL` to 500 in about 45
round trips (two seconds at 40 ms), and back as fast after a throttling spell.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

INITIAL = 16  # requests in flight before anything is known of the upstream
MINIMUM = 4  # never fewer: the forwarder's own down-upstream probe takes over below that
DROP_FACTOR = 0.5  # multiplicative decrease on a drop, as TCP's
LATENCY_FACTOR = 0.9  # gentler on latency alone: it is also noise
# Gradient2 (concurrency-limits) tolerates 1.5 x its long-term round trip by default.
GROW_BELOW = 1.5  # grow while a round's mean round trip is within this x the baseline ...
SHRINK_ABOVE = 2.5  # ... shrink once it is past this x the baseline ...
SLACK = 0.01  # ... plus this many seconds (see below)
ROUND_MIN = 0.02  # seconds a round lasts at least, so a round has samples to average
BASELINE_EPOCH = 30.0  # seconds: the baseline forgets what it saw one to two epochs ago


class Limiter:
    """A counting gate whose size is the adaptive limit."""

    def __init__(self, ceiling: int, clock: Callable[[], float] = time.monotonic,
                 initial: int = INITIAL,
                 on_round: Callable[[Limiter], None] | None = None) -> None:
        self.ceiling = ceiling
        self._clock = clock
        self._on_round = on_round  # told after each round: metrics read the limit there
        self._limit = float(max(1, min(initial, ceiling)))
        self._floor = float(min(MINIMUM, ceiling))
        self.in_flight = 0
        now = clock()
        self._round_start = now
        self._round_sum = 0.0
        self._round_count = 0
        self._round_drops = 0
        self._saturated = False
        self.rtt: float | None = None  # the last round's mean round trip, seconds
        self._epoch_start = now
        self._epoch_min = math.inf
        self._previous_min = math.inf

    @property
    def limit(self) -> int:
        return int(self._limit)

    @property
    def baseline(self) -> float | None:
        lowest = min(self._epoch_min, self._previous_min)
        return None if lowest == math.inf else lowest

    def try_acquire(self) -> bool:
        """A slot if one is free (True). The forwarder's workers park when none is
        (forward.py), so the limiter keeps no queue of its own."""
        if self.in_flight < self.limit:
            self.in_flight += 1
            self._saturated |= self.in_flight >= self.limit
            return True
        return False

    def release(self, rtt: float | None, dropped: bool = False) -> None:
        """One request ended: its round trip (None when there is nothing to learn from it)."""
        self.in_flight -= 1
        if dropped:
            self._round_drops += 1
        elif rtt is not None:
            self._round_sum += rtt
            self._round_count += 1
        now = self._clock()
        if now - self._round_start >= max(self.rtt or 0.0, ROUND_MIN):
            self._end_round(now)

    def _end_round(self, now: float) -> None:
        mean = self._round_sum / self._round_count if self._round_count else None
        if mean is not None:
            self.rtt = mean
            self._remember(mean, now)
        self._limit = self._next_limit(mean)
        self._round_start = now
        self._round_sum, self._round_count, self._round_drops = 0.0, 0, 0
        self._saturated = self.in_flight >= self.limit
        if self._on_round is not None:
            self._on_round(self)

    def _next_limit(self, mean: float | None) -> float:
        if self._round_drops:
            return max(self._floor, self._limit * DROP_FACTOR)
        baseline = self.baseline
        if mean is None or baseline is None:
            return self._limit
        if mean > baseline * SHRINK_ABOVE + SLACK:
            return max(self._floor, self._limit * LATENCY_FACTOR)
        if self._saturated and mean <= baseline * GROW_BELOW + SLACK:
            return min(float(self.ceiling), self._limit + math.sqrt(self._limit))
        return self._limit

    def _remember(self, mean: float, now: float) -> None:
        if now - self._epoch_start >= BASELINE_EPOCH:
            self._previous_min, self._epoch_min = self._epoch_min, math.inf
            self._epoch_start = now
        self._epoch_min = min(self._epoch_min, mean)
