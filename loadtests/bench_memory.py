"""Memory per remembered event_id: `gateway.dedupe.Dedupe` holding a million keys.

Run in a fresh interpreter so nothing else moves its RSS. The keys are
36-character UUID strings as orjson parses them; once remembered the cache
holds the only reference, so their own size counts. Two measures: RSS delta
(what the process really grows by, including allocator slack) and, with
`--tracemalloc`, the traced delta (Python objects only) of a second structure.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tracemalloc
from typing import Any

from gateway.dedupe import Dedupe


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    import resource

    return resident_pages * resource.getpagesize()


def event_id(bits: int) -> str:
    """A version-4-shaped UUID string, several times faster to make than str(uuid4())."""
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def remember(count: int) -> Dedupe:
    dedupe = Dedupe(ttl=900.0, maxsize=count)
    draw = random.Random(count).getrandbits
    for _ in range(count):
        dedupe.is_duplicate(event_id(draw(128)))
    return dedupe


def by_rss(count: int) -> tuple[float, Dedupe]:
    gc.collect()
    before = rss_bytes()
    dedupe = remember(count)
    gc.collect()
    return (rss_bytes() - before) / count, dedupe


def by_tracemalloc(count: int) -> float:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    dedupe = remember(count)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(dedupe) == count
    return (after - before) / count


def measure(count: int, traced: bool) -> dict[str, Any]:
    per_key_rss, dedupe = by_rss(count)
    assert len(dedupe) == count, "every key must still be remembered"
    del dedupe
    gc.collect()
    result: dict[str, Any] = {
        "keys": count,
        "bytes_per_key_rss": per_key_rss,
        "key_string_bytes": sys.getsizeof(event_id(0)),
    }
    if traced:
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
