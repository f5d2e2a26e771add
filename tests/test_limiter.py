"""The adaptive in-flight limit, driven by a fake clock and scripted round trips (no timing)."""

from __future__ import annotations

import pytest

from gateway.limiter import INITIAL, MINIMUM, ROUND_MIN, Limiter

FIELD_RTT = 0.04  # a distant upstream


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def round_trip(limiter: Limiter, clock: Clock, rtt: float, busy: float = 1.0,
               drops: int = 0) -> int:
    """`busy` x the limit acquired at once, answered `rtt` later (`drops` of them dropped)."""
    count = max(1, int(limiter.limit * busy))
    for _ in range(count):
        assert limiter.try_acquire()
    clock.now += max(rtt, ROUND_MIN) * 1.001  # a hair over: a round is one round trip
    for i in range(count):
        dropped = i < drops
        limiter.release(None if dropped else rtt, dropped)
    return limiter.limit


def make(ceiling: int = 1024) -> tuple[Limiter, Clock]:
    clock = Clock()
    return Limiter(ceiling, clock=clock), clock


def test_grows_while_latency_stays_at_its_minimum_up_to_the_ceiling() -> None:
    limiter, clock = make(ceiling=512)
    assert limiter.limit == INITIAL
    limits = [round_trip(limiter, clock, FIELD_RTT) for _ in range(60)]
    assert limits == sorted(limits)  # never down
    assert limits[20] > 150  # √limit per round: a few hundred within a second at 40 ms
    assert limits[-1] == 512  # the ceiling, IAN_FORWARD_CONCURRENCY
    assert limiter.rtt == pytest.approx(FIELD_RTT) and limiter.baseline == pytest.approx(FIELD_RTT)


def test_does_not_grow_when_the_limit_is_not_reached() -> None:
    limiter, clock = make()
    limits = {round_trip(limiter, clock, FIELD_RTT, busy=0.5) for _ in range(20)}
    assert limits == {INITIAL}


def test_a_drop_halves_the_limit_once_per_round_down_to_a_floor() -> None:
    limiter, clock = make()
    for _ in range(30):
        round_trip(limiter, clock, FIELD_RTT)
    before = limiter.limit
    assert round_trip(limiter, clock, FIELD_RTT, drops=5) == before // 2
    for _ in range(20):
        round_trip(limiter, clock, FIELD_RTT, drops=limiter.limit)
    assert limiter.limit == MINIMUM


def test_rising_latency_stops_growth_then_takes_a_tenth_off_each_round() -> None:
    limiter, clock = make()
    for _ in range(30):
        round_trip(limiter, clock, FIELD_RTT)
    before = limiter.limit
    assert round_trip(limiter, clock, 0.065) > before  # within 1.5 x + 10 ms: grows
    held = [round_trip(limiter, clock, 0.1) for _ in range(4)]
    assert len(set(held[1:])) == 1  # 2.5 x: holds (the first round still had 65 ms)
    slow = [round_trip(limiter, clock, 0.12) for _ in range(3)]
    # the round that ends at the first slow answer still has the previous ones' mean
    assert slow[0] == held[-1] and slow[2] < slow[1] < slow[0]
    assert slow[2] >= int(slow[0] * 0.81) - 1  # a tenth off per round, not more


def test_recovers_after_a_throttling_spell() -> None:
    limiter, clock = make(ceiling=512)
    for _ in range(60):
        round_trip(limiter, clock, FIELD_RTT)
    assert limiter.limit == 512
    for _ in range(10):  # the upstream answers 429 for a while
        round_trip(limiter, clock, FIELD_RTT, drops=1)
    assert limiter.limit == MINIMUM
    recovered = [round_trip(limiter, clock, FIELD_RTT) for _ in range(60)]
    assert recovered[-1] == 512
    assert recovered.index(512) < 55  # within about two seconds of 40 ms rounds


def test_a_slot_is_taken_only_while_one_is_free() -> None:
    limiter = Limiter(2, clock=Clock())
    assert limiter.try_acquire() and limiter.try_acquire()
    assert not limiter.try_acquire() and limiter.in_flight == 2
    limiter.release(0.01)
    assert limiter.try_acquire() and limiter.in_flight == 2


def test_the_floor_is_never_above_the_ceiling() -> None:
    assert Limiter(1).limit == 1
    assert Limiter(2, initial=64).limit == 2


