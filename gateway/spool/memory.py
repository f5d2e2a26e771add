"""An in-memory spool: the interface without durability, for tests and `memory:`.

Everything is lost when the process exits; `sqlite://` is the embedded default.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Sequence

from cachetools import TLRUCache

from gateway.spool import Claimed, DeadLetter, Record, SpoolFull, remember_for


class MemorySpool:
    def __init__(self, max_records: int, dedupe_ttl: float) -> None:
        self._max = max_records
        # key -> kind, each kept for its kind's time (`remember_for`)
        self._keys: TLRUCache[str, str] = TLRUCache(
            maxsize=max(max_records, 1024),
            ttu=lambda _, kind, now: now + remember_for(kind, dedupe_ttl))
        self._ids = itertools.count(1)
        # (due, id) for waiting records; the records themselves and their attempts.
        self._due: list[tuple[float, str]] = []
        self._records: dict[str, tuple[Record, int, float]] = {}
        self._in_flight: set[str] = set()
        self._dead: dict[str, DeadLetter] = {}
        self._wakeup = asyncio.Event()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._wakeup.set()

    async def put(self, records: Sequence[Record]) -> list[bool]:
        if len(self._records) + len(records) > self._max:
            raise SpoolFull()
        now = time.monotonic()
        stored = []
        for record in records:
            if record.key in self._keys:
                stored.append(False)
                continue
            self._keys[record.key] = record.kind
            self._push(record, attempts=0, due=now, enqueued=time.time())
            stored.append(True)
        self._wakeup.set()
        return stored

    def _push(self, record: Record, attempts: int, due: float, enqueued: float) -> None:
        record_id = str(next(self._ids))
        self._records[record_id] = (record, attempts, enqueued)
        heapq.heappush(self._due, (due, record_id))

    async def claim(self, limit: int, wait: float) -> list[Claimed]:
        claimed = self._take(limit)
        if claimed or wait <= 0:
            return claimed
        self._wakeup.clear()
        timeout = wait if not self._due else min(wait, max(self._due[0][0] - time.monotonic(), 0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)
        return self._take(limit)

    def _take(self, limit: int) -> list[Claimed]:
        now = time.monotonic()
        taken: list[Claimed] = []
        while self._due and len(taken) < limit and self._due[0][0] <= now:
            _, record_id = heapq.heappop(self._due)
            record, attempts, _ = self._records[record_id]
            self._in_flight.add(record_id)
            taken.append(Claimed(record_id, record, attempts))
        return taken

    async def ack(self, claimed: Claimed) -> None:
        self._in_flight.discard(claimed.id)
        self._records.pop(claimed.id, None)

    async def retry(self, claimed: Claimed, delay: float) -> None:
        self._in_flight.discard(claimed.id)
        _, attempts, enqueued = self._records.pop(claimed.id)
        self._push(claimed.record, attempts + 1, time.monotonic() + delay, enqueued)
        self._wakeup.set()

    async def dead(self, claimed: Claimed, status: int, answer: str) -> None:
        self._in_flight.discard(claimed.id)
        _, attempts, _ = self._records.pop(claimed.id)
        self._dead[claimed.id] = DeadLetter(
            claimed.id, claimed.record, status, answer, attempts + 1, time.time()
        )

    async def expedite(self) -> int:
        now = time.monotonic()
        waiting = sum(1 for due, _ in self._due if due > now)
        self._due = [(min(due, now), record_id) for due, record_id in self._due]
        heapq.heapify(self._due)
        self._wakeup.set()
        return waiting

    async def depth(self) -> int:
        return len(self._records)

    async def oldest_age(self) -> float:
        if not self._records:
            return 0.0
        return time.time() - min(enqueued for _, _, enqueued in self._records.values())

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return list(self._dead.values())[:limit]

    async def replay(self, ids: Sequence[str] | None = None) -> int:
        chosen = list(self._dead) if ids is None else [i for i in ids if i in self._dead]
        for dead_id in chosen:
            letter = self._dead.pop(dead_id)
            self._push(letter.record, 0, time.monotonic(), time.time())
        self._wakeup.set()
        return len(chosen)

    async def purge(self, ids: Sequence[str] | None = None) -> int:
        chosen = list(self._dead) if ids is None else [i for i in ids if i in self._dead]
        for dead_id in chosen:
            del self._dead[dead_id]
        return len(chosen)
