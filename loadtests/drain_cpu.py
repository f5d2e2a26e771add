"""CPU per event of `ian-gateway forward` draining a filled spool, for A/B runs of two trees.

    python3 -m loadtests.drain_cpu /path/to/tree-a [--posts 750]    # from the repository root
    python3 -m loadtests.drain_cpu /path/to/tree-b

Fills a SQLite spool through `serve` (forwarder off) with `posts` 20-event
beacons, then starts `forward` from `tree` (its own `gateway` package, pinned
to the second CPU) against the loopback nginx stub (pinned to the first), and
measures the forwarder's CPU time (all threads, /proc) and rate between the
2,000th and the last-but-2,000 event, so start-up and the tail are left out.
CPU time is steadier than throughput on a shared machine: run the trees
alternately, a few times each. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from loadtests import bench_stub
from loadtests.bench import cpu_seconds
from loadtests.bench_lua import HEADERS, body_template, fill
from tests.support import free_port

EDGE = 2000  # events left out at each end


def fill_spool(tree: str, env: dict[str, str], posts: int) -> None:
    port = free_port()
    serve = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1",
                              "--port", str(port)], env={**env, "IAN_FORWARDER": "false"},
                             cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/readyz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        template = body_template(20)
        for _ in range(posts):
            request = urllib.request.Request(url + "/v1/events", data=fill(template),
                                             headers=HEADERS)
            urllib.request.urlopen(request, timeout=10).read()
    finally:
        serve.terminate()
        serve.wait(30)


def wait_received(stub: Path, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while bench_stub.received(stub) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def measure(tree: str, posts: int, workdir: Path) -> dict[str, object]:
    stub_port, stub = free_port(), workdir / "stub"
    conf = bench_stub.prepare(stub, bench_stub.stub_conf(stub, stub_port))
    nginx = subprocess.Popen(["taskset", "-c", "0", *bench_stub.nginx_argv(conf)])
    env = {**os.environ, "PYTHONPATH": tree, "IAN_UPSTREAM_URL": f"http://127.0.0.1:{stub_port}",
           "IAN_ACCESS_TOKEN": "bench", "IAN_SPOOL": f"sqlite:///{workdir}/spool.db",
           "IAN_SPOOL_MAX": "100000000", "IAN_RATE_LIMIT": "0", "IAN_LOG_FORMAT": "text"}
    try:
        fill_spool(tree, env, posts)
        total = posts * 20
        forward = subprocess.Popen(["taskset", "-c", "1", sys.executable, "-m", "gateway",
                                    "forward"], env=env, cwd=tree,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_received(stub, EDGE, 120)
            started, cpu, first = time.monotonic(), cpu_seconds(forward.pid), \
                bench_stub.received(stub)
            wait_received(stub, total - EDGE, 300)
            seconds = time.monotonic() - started
            used, events = cpu_seconds(forward.pid) - cpu, bench_stub.received(stub) - first
        finally:
            forward.terminate()
            forward.wait(30)
    finally:
        nginx.terminate()
        nginx.wait(10)
    return {"tree": tree, "events": events, "seconds": round(seconds, 2),
            "events_per_s": round(events / seconds), "cpu_us_per_event":
            round(used / max(events, 1) * 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tree", help="a checkout whose `gateway` package is measured")
    parser.add_argument("--posts", type=int, default=750, help="20-event beacons to spool")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ian-drain-") as tmp:
        print(json.dumps(measure(str(Path(args.tree).resolve()), args.posts, Path(tmp))))


if __name__ == "__main__":
    main()
