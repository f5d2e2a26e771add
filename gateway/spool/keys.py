"""The dedupe keys a spool remembers, in memory, each until its own expiry.

The SQLite spool decides which records are new against these, and keeps the
keys themselves in an append-only log on disk, for its other processes and
for a restart (gateway/spool/sqlite/keylog.py says why not a unique index).
"""

from __future__ import annotations

import heapq
import itertools
import operator
from collections.abc import Iterable

from gateway.dedupe import Key


class KnownKeys:
    """Exact: a key is known while `now` is before its expiry. Expired keys are
    forgotten by batches in expiry order (a heap of batches), never by a scan.
    Keys come compacted (`dedupe.compact`): the caller compacts each once."""

    def __init__(self) -> None:
        self._expiry: dict[Key, float] = {}
        # (expires_at, order, keys): tuples of ints, which the cyclic GC stops tracking, so
        # its full collections do not walk every key (docs/performance.md)
        self._batches: list[tuple[float, int, tuple[Key, ...]]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._expiry)

    def known(self, key: Key, now: float) -> bool:
        return self._expiry.get(key, 0.0) > now

    def learn(self, keys: Iterable[tuple[Key, float]]) -> None:
        """Remember each key until its expiry (a later expiry of a key already known wins)."""
        for expires_at, group in itertools.groupby(keys, key=operator.itemgetter(1)):
            batch = []
            for key, _ in group:
                if self._expiry.get(key, 0.0) < expires_at:
                    self._expiry[key] = expires_at
                    batch.append(key)
            if batch:
                heapq.heappush(self._batches, (expires_at, next(self._order), tuple(batch)))

    def forget_expired(self, now: float) -> None:
        while self._batches and self._batches[0][0] <= now:
            expires_at, _, batch = heapq.heappop(self._batches)
            for key in batch:
                if self._expiry.get(key) == expires_at:  # not learned again since
                    del self._expiry[key]
