"""Dedupe by `event_id` (and order key): the in-process fast path.

Keys are remembered for `IAN_DEDUPE_TTL` seconds in generations: a set per
slice of the TTL, the oldest dropped as its slice expires, so a key is
remembered for at least the TTL and at most one slice more. Sets of 128-bit
ints (an event_id is a UUID) take a fraction of the memory of a cachetools
TTLCache of strings (docs/performance.md), and a lookup is a few set probes
with no per-key timer. `IAN_DEDUPE_MAX` bounds the keys held: past it the oldest
generation goes early. Across worker processes and instances the spool's own
record of keys has the last word (`Spool.put` answers which records were new).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable

GENERATIONS = 8  # slices of the TTL: a key lives at most TTL * (1 + 1/8)

Key = int | str


def compact(key: str) -> Key:
    """A UUID key as its 128-bit int (44 bytes instead of 85); anything else as it is."""
    if len(key) == 36 and key[8] == "-":
        try:
            return int(key.replace("-", ""), 16)
        except ValueError:
            return key
    return key


class Dedupe:
    def __init__(self, ttl: float, maxsize: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._slice = ttl / GENERATIONS
        self._maxsize = maxsize
        self._clock = clock
        self._current: set[Key] = set()
        self._current_ends = clock() + self._slice
        self._older: deque[tuple[float, set[Key]]] = deque()  # (expires_at, keys), oldest first
        self._size = 0

    def is_duplicate(self, key: str) -> bool:
        """True when `key` was seen within the TTL; otherwise remember it and answer False."""
        self._rotate()
        compacted = compact(key)
        if compacted in self._current or any(compacted in keys for _, keys in self._older):
            return True
        self._current.add(compacted)
        self._size += 1
        if self._size > self._maxsize:
            self._drop_oldest()
        return False

    def forget(self, keys: Iterable[str]) -> None:
        """Drop keys whose events were not stored after all (spool full), so a retry is new."""
        for key in keys:
            compacted = compact(key)
            for generation in (self._current, *(members for _, members in self._older)):
                if compacted in generation:
                    generation.discard(compacted)
                    self._size -= 1

    def __len__(self) -> int:
        self._rotate()
        return self._size

    def _rotate(self) -> None:
        now = self._clock()
        if now < self._current_ends:
            return
        # the current generation is remembered for a whole TTL after its slice ends
        self._older.append((self._current_ends + self._slice * GENERATIONS, self._current))
        self._current = set()
        self._current_ends = now + self._slice
        while self._older and self._older[0][0] <= now:
            self._size -= len(self._older.popleft()[1])

    def _drop_oldest(self) -> None:
        if self._older:
            self._size -= len(self._older.popleft()[1])
            return
        # one generation over the bound by itself: start afresh rather than grow
        self._size -= len(self._current)
        self._current = set()
