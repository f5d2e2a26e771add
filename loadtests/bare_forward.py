"""The bare forwarding baseline: an aiohttp loop POSTing events to the stub.

`concurrency` tasks share one keep-alive session and POST one event per request
to `/v2/ian/track` with the headers the gateway's forwarder sends, on uvloop as
the gateway runs under uvicorn. What is left is the HTTP client's own cost, so
`end-to-end ÷ this` is what the gateway's spool, claim and ack add to it.
Prints one JSON line: `{"requests", "errors", "seconds", "rps"}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field

import aiohttp
import uvloop  # uvicorn[standard] brings it; the gateway runs on it
from bench_lua import USER_AGENT, body_template, fill


@dataclass
class Tally:
    requests: int = 0
    errors: int = 0
    measuring: bool = False
    started: float = field(default_factory=time.monotonic)


def upstream_headers() -> dict[str, str]:
    """The forwarder's headers (DESIGN.md: Forwarding)."""
    return {
        "Authorization": "Bearer bench",
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }


async def post_until(session: aiohttp.ClientSession, url: str, body: bytes, deadline: float,
                     tally: Tally) -> None:
    headers = upstream_headers()
    while time.monotonic() < deadline:
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                ok = response.status == 200
        except aiohttp.ClientError:
            ok = False
        if tally.measuring:
            tally.requests += ok
            tally.errors += not ok


async def measure(url: str, concurrency: int, warmup: float, duration: float) -> dict[str, float]:
    body = fill(body_template(1))
    tally = Tally()
    deadline = time.monotonic() + warmup + duration
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(post_until(session, url, body, deadline, tally))
                 for _ in range(concurrency)]
        await asyncio.sleep(warmup)
        tally.measuring, tally.started = True, time.monotonic()
        await asyncio.gather(*tasks)
    seconds = time.monotonic() - tally.started
    return {"requests": tally.requests, "errors": tally.errors, "seconds": seconds,
            "rps": tally.requests / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="the stub's track URL")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    result = uvloop.run(measure(args.url, args.concurrency, args.warmup, args.duration))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
