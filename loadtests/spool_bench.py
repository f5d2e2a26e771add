"""Benchmark of the SQLite spool: put under many concurrent putters, then claim + ack.

    python loadtests/spool_bench.py                      # FULL and NORMAL, 200 putters, 5 s each
    python loadtests/spool_bench.py --sync FULL --linger 0 0.002 --max-batch 1000 1

Each configuration gets a fresh file in a temporary directory (on the same
disk as the repository unless `--dir` says otherwise). A putter stores one
record per `put`, as intake does for a single beacon, and measures how long
`put` took to return (that is, until its transaction was committed). Then the
records are drained by `--forwarders` tasks that claim up to 64 and ack each,
as the forwarder does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass

from gateway.spool import Record
from gateway.spool.sqlite import SqliteSpool

BODY = (
    b'{"event":"ian.sponsored_product.impression","user_id":"u-42",'
    b'"sent_at":"2026-11-22T15:00:00+00:00","data":{"sponsored_product_data":{'
    b'"event_id":"%s","product_id":1234567,"display_position":"3","page_view_id":'
    b'"6f1d1c3e-8f4e-4a8f-9c83-1d8f0c3b2a11","ad_id":"0d4f7f2e-6a3b-4c55-8a9e-2f0b6c1d9e77",'
    b'"event_tracking_context":{"user_agent":"Mozilla/5.0 (X11; Linux x86_64) '
    b'AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",'
    b'"user_ip":"203.0.113.7"}}}}'
)
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"


@dataclass
class Result:
    sync: str
    linger: float
    max_batch: int
    puts: int
    seconds: float
    latencies: list[float]
    commits: int
    drained: int
    drain_seconds: float

    def row(self) -> str:
        ordered = sorted(self.latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
        return (
            f"| {self.sync} | {self.linger * 1000:g} | {self.max_batch} "
            f"| {self.puts / self.seconds:,.0f} | {p50:.2f} | {p99:.2f} "
            f"| {self.puts / max(self.commits, 1):.1f} "
            f"| {self.drained / self.drain_seconds:,.0f} |"
        )


async def putter(spool: SqliteSpool, until: float, latencies: list[float]) -> int:
    # Keys are unique and cheap to make: the benchmark measures the spool, not uuid4.
    prefix = uuid.uuid4().hex
    body = BODY % prefix.encode()
    count = 0
    while time.perf_counter() < until:
        started = time.perf_counter()
        await spool.put([Record("track", f"{prefix}-{count}", body, UA)])
        latencies.append(time.perf_counter() - started)
        count += 1
    return count


async def forwarder(spool: SqliteSpool) -> int:
    drained = 0
    while claimed := await spool.claim(64, wait=0.05):
        await asyncio.gather(*(spool.ack(item) for item in claimed))
        drained += len(claimed)
    return drained


async def bench(path: str, sync: str, linger: float, max_batch: int,
                putters: int, seconds: float, forwarders: int) -> Result:
    spool = SqliteSpool(path, 100_000_000, 900, synchronous=sync, linger=linger,
                        max_batch=max_batch)
    await spool.start()
    latencies: list[float] = []
    started = time.perf_counter()
    counts = await asyncio.gather(
        *(putter(spool, started + seconds, latencies) for _ in range(putters))
    )
    elapsed = time.perf_counter() - started
    commits = spool.commits
    drain_started = time.perf_counter()
    drained = sum(await asyncio.gather(*(forwarder(spool) for _ in range(forwarders))))
    drain_seconds = time.perf_counter() - drain_started
    await spool.close()
    return Result(sync, linger, max_batch, sum(counts), elapsed, latencies, commits,
                  drained, drain_seconds)


async def main(args: argparse.Namespace) -> None:
    print(f"{args.putters} putters x {args.seconds:g} s, one record per put; "
          f"then {args.forwarders} forwarders claim 64 and ack each; files in {args.dir}")
    print("| synchronous | linger ms | max batch | puts/s | p50 ms | p99 ms "
          "| records/commit | claim+ack/s |")
    print("|---|---|---|---|---|---|---|---|")
    for sync in args.sync:
        for linger in args.linger:
            for max_batch in args.max_batch:
                with tempfile.TemporaryDirectory(dir=args.dir) as directory:
                    path = os.path.join(directory, "spool.db")
                    result = await bench(path, sync, linger, max_batch, args.putters,
                                         args.seconds, args.forwarders)
                print(result.row(), flush=True)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sync", nargs="+", default=["FULL", "NORMAL"],
                        choices=["FULL", "NORMAL"])
    parser.add_argument("--linger", nargs="+", type=float, default=[0.0],
                        help="seconds the writer waits for more puts after the first")
    parser.add_argument("--max-batch", nargs="+", type=int, default=[1000])
    parser.add_argument("--putters", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--forwarders", type=int, default=4)
    parser.add_argument("--dir", default=os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop, as uvicorn does")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    if arguments.uvloop:
        import uvloop

        uvloop.run(main(arguments))
    else:
        asyncio.run(main(arguments))
