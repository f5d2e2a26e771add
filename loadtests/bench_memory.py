"""Memory per remembered event_id: a gateway process holding a million keys.

A `serve` process remembers each event_id twice: intake's `Dedupe` and the
SQLite spool's `KnownKeys` (what its writer decides against). Both are filled
here with the same keys, the spool's in batches of 64 as its commits learn
them, and the figure is what the two grow by together (measured alone:
Dedupe ~82, KnownKeys ~101 bytes per key). Run in a fresh interpreter so
nothing else moves its RSS. The keys are 36-character UUID strings as orjson
parses them; once remembered only the structures hold them (compacted to
128-bit ints), so their own size counts. Two measures: RSS delta
(what the process really grows by, including allocator slack) and, with
`--tracemalloc`, the traced delta (Python objects only) of a second fill of both.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

from gateway.dedupe import Dedupe, Key, compact
from gateway.spool.keys import KnownKeys

COMMIT = 64  # keys the spool learns at once


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    import resource

    return resident_pages * resource.getpagesize()


def event_id(bits: int) -> str:
    """A version-4-shaped UUID string, several times faster to make than str(uuid4())."""
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def event_ids(count: int) -> Iterator[str]:
    """Made one at a time: only the structure under test keeps anything."""
    draw = random.Random(count).getrandbits
    return (event_id(draw(128)) for _ in range(count))


def remember(count: int) -> tuple[Dedupe, KnownKeys]:
    """`count` event_ids, each in intake's `Dedupe` and in the spool's `KnownKeys`."""
    dedupe, known = Dedupe(ttl=900.0, maxsize=count), KnownKeys()
    expires_at = time.time() + 900.0
    commit: list[tuple[Key, float]] = []
    for key in event_ids(count):
        dedupe.is_duplicate(key)
        commit.append((compact(key), expires_at))  # as the spool's writer hands them over
        if len(commit) == COMMIT:
            known.learn(commit)
            commit = []
    known.learn(commit)
    assert len(dedupe) == len(known) == count, "every key must still be remembered"
    return dedupe, known


def by_rss(count: int) -> float:
    gc.collect()
    before = rss_bytes()
    held = remember(count)
    gc.collect()
    grown = rss_bytes() - before
    del held
    return grown / count


def by_tracemalloc(count: int) -> float:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held = remember(count)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del held
    return (after - before) / count


def measure(count: int, traced: bool) -> dict[str, Any]:
    result: dict[str, Any] = {
        "keys": count,
        "bytes_per_key_rss": by_rss(count),
        "key_string_bytes": sys.getsizeof(event_id(0)),
    }
    if traced:
        gc.collect()
        result["bytes_per_key_tracemalloc"] = by_tracemalloc(count)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--tracemalloc", action="store_true", help="also trace (slow)")
    args = parser.parse_args()
    print(json.dumps(measure(args.keys, args.tracemalloc)))


if __name__ == "__main__":
    main()
