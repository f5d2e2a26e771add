"""Dedupe: a bounded memory of event_ids over the TTL."""

from __future__ import annotations

import uuid

from gateway.dedupe import GENERATIONS, Dedupe, compact


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_second_sighting_is_a_duplicate() -> None:
    dedupe = Dedupe(ttl=60, maxsize=10)
    assert dedupe.is_duplicate("a") is False
    assert dedupe.is_duplicate("a") is True
    assert dedupe.is_duplicate("b") is False


def test_uuid_keys_are_kept_as_ints_and_still_match() -> None:
    event_id = str(uuid.uuid4())
    assert compact(event_id) == uuid.UUID(event_id).int
    assert compact("order:o-1@2026-11-22T10:00:00+00:00") == "order:o-1@2026-11-22T10:00:00+00:00"
    assert compact("x" * 8 + "-" + "y" * 27) == "x" * 8 + "-" + "y" * 27  # not hex: as it is
    dedupe = Dedupe(ttl=60, maxsize=10)
    assert dedupe.is_duplicate(event_id) is False
    assert dedupe.is_duplicate(event_id) is True


def test_forgotten_keys_are_new_again() -> None:
    dedupe = Dedupe(ttl=60, maxsize=10)
    dedupe.is_duplicate("a")
    dedupe.forget(["a", "never-seen"])
    assert dedupe.is_duplicate("a") is False
    assert len(dedupe) == 1


def test_keys_live_at_least_the_ttl_and_at_most_one_slice_more() -> None:
    clock = Clock()
    dedupe = Dedupe(ttl=80, maxsize=100, clock=clock)
    dedupe.is_duplicate("a")
    for step in range(1, 9):  # across every generation boundary up to the TTL
        clock.now = 1000.0 + step * 10 - 0.001
        assert dedupe.is_duplicate("a") is True, step
    clock.now = 1000.0 + 80 + 80 / GENERATIONS + 0.001
    assert dedupe.is_duplicate("a") is False


def test_size_is_bounded() -> None:
    clock = Clock()
    dedupe = Dedupe(ttl=80, maxsize=100, clock=clock)
    for i in range(1000):
        clock.now += 1.0
        dedupe.is_duplicate(str(i))
    assert len(dedupe) <= 100
    assert dedupe.is_duplicate("999") is True  # the newest are the ones kept


def test_one_burst_over_the_bound_stays_bounded() -> None:
    dedupe = Dedupe(ttl=60, maxsize=100)
    for i in range(1000):
        dedupe.is_duplicate(str(i))
    assert len(dedupe) <= 100
