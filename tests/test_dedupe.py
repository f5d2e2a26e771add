"""Dedupe: a bounded TTL memory of event_ids."""

from __future__ import annotations

import time

from gateway.dedupe import Dedupe


def test_second_sighting_is_a_duplicate() -> None:
    dedupe = Dedupe(ttl=60, maxsize=10)
    assert dedupe.is_duplicate("a") is False
    assert dedupe.is_duplicate("a") is True
    assert dedupe.is_duplicate("b") is False


def test_forgotten_keys_are_new_again() -> None:
    dedupe = Dedupe(ttl=60, maxsize=10)
    dedupe.is_duplicate("a")
    dedupe.forget(["a", "never-seen"])
    assert dedupe.is_duplicate("a") is False


def test_keys_expire_after_the_ttl() -> None:
    dedupe = Dedupe(ttl=0.05, maxsize=10)
    dedupe.is_duplicate("a")
    time.sleep(0.1)
    assert dedupe.is_duplicate("a") is False


def test_size_is_bounded() -> None:
    dedupe = Dedupe(ttl=60, maxsize=100)
    for i in range(1000):
        dedupe.is_duplicate(str(i))
    assert len(dedupe) == 100
