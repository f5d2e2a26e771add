"""Benchmark of the SQLite spool: put under many concurrent putters, then claim + ack.

    python loadtests/spool_bench.py                      # FULL and NORMAL, 200 putters, 5 s each
    python loadtests/spool_bench.py --sync FULL --linger 0 0.002 --max-batch 1000 1
    python loadtests/spool_bench.py --processes 2          # two workers sharing one file
    python loadtests/spool_bench.py --remembered 1000000   # a spool at its steady state
    python loadtests/spool_bench.py --redis redis://127.0.0.1:6379/0   # RedisSpool instead

Each configuration gets a fresh file in a temporary directory (on the same
disk as the repository unless `--dir` says otherwise). A putter stores one
record per `put`, as intake does for a single beacon, and measures how long
`put` took to return (that is, until its transaction was committed). Then the
records are drained by `--forwarders` tasks that claim up to 64 and ack each,
as the forwarder does. With `--processes N` the putters are split among N
processes sharing the file, as `serve --workers N` does. With `--remembered N`
the file already remembers N dedupe keys, as after 15 minutes at N/900 events/s;
the first put learns them (its time is printed). CPU is the process's per put.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass

from gateway.spool import Record, Spool
from gateway.spool.redis import RedisSpool
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
class Puts:
    """What the putters of one or more processes did."""

    count: int
    seconds: float
    latencies: list[float]
    commits: int
    cpu_seconds: float


@dataclass
class Result:
    sync: str
    linger: float
    max_batch: int
    puts: Puts
    drained: int
    drain_seconds: float

    def row(self, processes: int) -> str:
        ordered = sorted(self.puts.latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
        return (
            f"| {processes} | {self.sync} | {self.linger * 1000:g} | {self.max_batch} "
            f"| {self.puts.count / self.puts.seconds:,.0f} | {p50:.2f} | {p99:.2f} "
            f"| {self.puts.cpu_seconds / self.puts.count * 1e6:.1f} "
            f"| {self.puts.count / self.puts.commits if self.puts.commits else 0:.1f} "
            f"| {self.drained / self.drain_seconds:,.0f} |"
        )


def open_spool(path: str, sync: str, linger: float, max_batch: int) -> Spool:
    """`path` is a file, or `redis://…#run` (then the other knobs do not apply)."""
    if path.startswith("redis://"):
        url, _, run = path.partition("#")
        return RedisSpool(url, 100_000_000, 900, prefix=f"bench:{run}:")
    return SqliteSpool(path, 100_000_000, 900, synchronous=sync, linger=linger,
                       max_batch=max_batch)


def commits(spool: Spool) -> int:
    """Transactions so far (SQLite); a Redis put is not one transaction: 0."""
    return spool.commits if isinstance(spool, SqliteSpool) else 0


async def putter(spool: Spool, until: float, latencies: list[float]) -> int:
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


async def put_phase(spool: Spool, putters: int, seconds: float) -> Puts:
    latencies: list[float] = []
    before = commits(spool)
    started, cpu = time.perf_counter(), time.process_time()
    counts = await asyncio.gather(
        *(putter(spool, started + seconds, latencies) for _ in range(putters))
    )
    return Puts(sum(counts), time.perf_counter() - started, latencies, commits(spool) - before,
                time.process_time() - cpu)


async def child(path: str, sync: str, linger: float, max_batch: int, putters: int,
                seconds: float, start_at: float) -> None:
    """One of `--processes`: put from `start_at` (unix time) on, print what it did as JSON."""
    spool = open_spool(path, sync, linger, max_batch)
    await spool.start()
    await asyncio.sleep(max(start_at - time.time(), 0))
    puts = await put_phase(spool, putters, seconds)
    await spool.close()
    print(json.dumps([puts.count, puts.seconds, puts.latencies, puts.commits, puts.cpu_seconds]))


def put_in_processes(path: str, sync: str, linger: float, max_batch: int,
                     args: argparse.Namespace) -> Puts:
    start_at = str(time.time() + 2)  # every child has opened the file by then
    command = [sys.executable, __file__, "--child", path, sync, str(linger), str(max_batch),
               str(args.putters // args.processes), str(args.seconds), start_at,
               *(["--uvloop"] if args.uvloop else [])]
    children = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
                for _ in range(args.processes)]
    done = [json.loads(proc.communicate(timeout=args.seconds + 120)[0]) for proc in children]
    return Puts(sum(d[0] for d in done), max(d[1] for d in done),
                [latency for d in done for latency in d[2]], sum(d[3] for d in done),
                sum(d[4] for d in done))


async def forwarder(spool: Spool) -> int:
    drained = 0
    while claimed := await spool.claim(64, wait=0.05):
        await asyncio.gather(*(spool.ack(item) for item in claimed))
        drained += len(claimed)
    return drained


async def remember(spool: SqliteSpool, count: int) -> float:
    """Log `count` keys straight into the file, then the seconds of the put that learns them."""
    expires_at = time.time() + 900
    with sqlite3.connect(spool.path) as conn:
        keys = [str(uuid.uuid4()) for _ in range(count)]
        conn.executemany("INSERT INTO key_batches (keys, expires_at) VALUES (?, ?)",
                         ((json.dumps(keys[start:start + 1000]), expires_at)
                          for start in range(0, count, 1000)))
    started = time.perf_counter()
    await spool.put([Record("track", "learns-the-log", BODY % b"first", UA)])
    return time.perf_counter() - started


async def bench(path: str, sync: str, linger: float, max_batch: int,
                args: argparse.Namespace) -> Result:
    spool = open_spool(path, sync, linger, max_batch)
    await spool.start()
    if args.remembered and isinstance(spool, SqliteSpool):
        seconds = await remember(spool, args.remembered)
        print(f"{args.remembered:,} keys remembered; the first put learned them in "
              f"{seconds:.2f} s", flush=True)
    if args.processes > 1:
        puts = await asyncio.to_thread(put_in_processes, path, sync, linger, max_batch, args)
    else:
        puts = await put_phase(spool, args.putters, args.seconds)
    drain_started = time.perf_counter()
    drained = sum(await asyncio.gather(*(forwarder(spool) for _ in range(args.forwarders))))
    drain_seconds = time.perf_counter() - drain_started
    await spool.close()
    return Result(sync, linger, max_batch, puts, drained, drain_seconds)


async def main(args: argparse.Namespace) -> None:
    print(f"{args.putters} putters in {args.processes} process(es) x {args.seconds:g} s, "
          f"one record per put; then {args.forwarders} forwarders claim 64 and ack each; "
          f"files in {args.dir}; load average {os.getloadavg()[0]:.1f}")
    print("| processes | synchronous | linger ms | max batch | puts/s | p50 ms | p99 ms "
          "| CPU µs/put | records/commit | claim+ack/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    if args.redis:
        result = await bench(f"{args.redis}#{uuid.uuid4().hex}", "redis", 0, 0, args)
        print(result.row(args.processes), flush=True)
        return
    for sync in args.sync:
        for linger in args.linger:
            for max_batch in args.max_batch:
                with tempfile.TemporaryDirectory(dir=args.dir) as directory:
                    path = os.path.join(directory, "spool.db")
                    result = await bench(path, sync, linger, max_batch, args)
                print(result.row(args.processes), flush=True)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sync", nargs="+", default=["FULL", "NORMAL"],
                        choices=["FULL", "NORMAL"])
    parser.add_argument("--linger", nargs="+", type=float, default=[0.0],
                        help="seconds the writer waits for more puts after the first")
    parser.add_argument("--max-batch", nargs="+", type=int, default=[1000])
    parser.add_argument("--putters", type=int, default=200)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--forwarders", type=int, default=4)
    parser.add_argument("--remembered", type=int, default=0, metavar="N",
                        help="SQLite: dedupe keys the file remembers before the puts")
    parser.add_argument("--dir", default=os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--redis", metavar="URL",
                        help="bench RedisSpool on this server instead of SQLite")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop, as uvicorn does")
    parser.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    return parser.parse_args()


def run(args: argparse.Namespace) -> None:
    if args.child:
        path, sync, linger, max_batch, putters, seconds, start_at = args.child
        work = child(path, sync, float(linger), int(max_batch), int(putters), float(seconds),
                     float(start_at))
    else:
        work = main(args)
    if args.uvloop:
        import uvloop

        uvloop.run(work)
    else:
        asyncio.run(work)


if __name__ == "__main__":
    run(parse())
