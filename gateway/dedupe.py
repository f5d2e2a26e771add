"""Dedupe by `event_id` (and order key): the in-process fast path.

A cachetools TTL cache remembers keys for `IAN_DEDUPE_TTL` seconds, bounded in
size. Across worker processes and instances the spool's own unique key has the
last word (`Spool.put` answers which records were new).
"""

from __future__ import annotations

from collections.abc import Iterable

from cachetools import TTLCache


class Dedupe:
    def __init__(self, ttl: float, maxsize: int) -> None:
        self._seen: TTLCache[str, bool] = TTLCache(maxsize=maxsize, ttl=ttl)

    def is_duplicate(self, key: str) -> bool:
        """True when `key` was seen within the TTL; otherwise remember it and answer False."""
        if key in self._seen:
            return True
        self._seen[key] = True
        return False

    def forget(self, keys: Iterable[str]) -> None:
        """Drop keys whose events were not stored after all (spool full), so a retry is new."""
        for key in keys:
            self._seen.pop(key, None)

    def __len__(self) -> int:
        return len(self._seen)
