"""The bare forwarding baselines: an aiohttp or a pyreqwest loop POSTing events to the stub.

`concurrency` tasks share one keep-alive client and POST one event per request
to `/v2/ian/track` with the headers the gateway's forwarder sends, on uvloop as
the gateway runs under uvicorn. What is left is the HTTP client's own cost, so
`end-to-end ÷ this` is what the gateway's spool, claim and ack add to it.
`--ca` trusts a PEM CA for an `https://` stub; pyreqwest then offers HTTP/2 by
ALPN unless `--http1`. Prints one JSON line:
`{"requests", "errors", "seconds", "rps", "cpu_s"}` (`cpu_s`: this process's CPU
over the measured window, all threads).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import uvloop  # uvicorn[standard] brings it; the gateway runs on it

from loadtests.bench_lua import USER_AGENT, body_template, fill


@dataclass
class Tally:
    requests: int = 0
    errors: int = 0
    measuring: bool = False
    started: float = field(default_factory=time.monotonic)


def upstream_headers() -> dict[str, str]:
    """The forwarder's headers (docs/contract.md, "Upstream requests")."""
    return {
        "Authorization": "Bearer bench",
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }


Post = Callable[[], Awaitable[bool]]  # one request; True when the stub answered 200


async def post_until(post: Post, deadline: float, tally: Tally) -> None:
    while time.monotonic() < deadline:
        ok = await post()
        if tally.measuring:
            tally.requests += ok
            tally.errors += not ok


async def run_loop(post: Post, concurrency: int, warmup: float, duration: float
                   ) -> dict[str, float]:
    tally = Tally()
    deadline = time.monotonic() + warmup + duration
    tasks = [asyncio.create_task(post_until(post, deadline, tally)) for _ in range(concurrency)]
    await asyncio.sleep(warmup)
    tally.measuring, tally.started = True, time.monotonic()
    cpu = time.process_time()
    await asyncio.gather(*tasks)
    seconds = time.monotonic() - tally.started
    return {"requests": tally.requests, "errors": tally.errors, "seconds": seconds,
            "rps": tally.requests / seconds, "cpu_s": time.process_time() - cpu}


async def with_aiohttp(url: str, concurrency: int, warmup: float, duration: float,
                       ca: bytes | None) -> dict[str, float]:
    body, headers = fill(body_template(1)), upstream_headers()
    tls = ssl.create_default_context(cadata=ca.decode()) if ca else None
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=tls if tls else True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post() -> bool:
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        return await run_loop(post, concurrency, warmup, duration)


async def with_pyreqwest(url: str, concurrency: int, warmup: float, duration: float,
                         ca: bytes | None, http1: bool) -> dict[str, float]:
    from pyreqwest.client import ClientBuilder
    from pyreqwest.exceptions import PyreqwestError

    body, headers = fill(body_template(1)), upstream_headers()
    builder = ClientBuilder().http2(not http1).follow_redirects(False).no_proxy()
    if ca:
        builder = builder.add_root_certificate_pem(ca)
    async with builder.build() as client:

        async def post() -> bool:
            try:
                response = await client.post(url).headers(headers).body_bytes(body).build().send()
                await response.bytes()
                return response.status == 200
            except PyreqwestError:
                return False

        return await run_loop(post, concurrency, warmup, duration)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="the stub's track URL")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--client", choices=("aiohttp", "pyreqwest"), default="aiohttp")
    parser.add_argument("--ca", help="PEM CA to trust for an https:// stub")
    parser.add_argument("--http1", action="store_true", help="pyreqwest: never HTTP/2")
    args = parser.parse_args()
    ca = Path(args.ca).read_bytes() if args.ca else None
    timing = (args.url, args.concurrency, args.warmup, args.duration, ca)
    if args.client == "aiohttp":
        result = uvloop.run(with_aiohttp(*timing))
    else:
        result = uvloop.run(with_pyreqwest(*timing, args.http1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
