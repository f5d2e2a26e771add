"""Rate limit: a token bucket per client IP in front of the intake endpoints.

Plain ASGI, as the intake it guards: no per-request middleware task. Each client IP (as
`ClientAddress` resolves it, so behind a trusted CDN it is the shopper, not the
edge) may make `burst` requests at once and `rate` per second after that; past
it the answer is 429 with `Retry-After` and Instacart's error object.

The buckets live in a bounded TTL cache: an attacker spraying source addresses
can only evict old buckets (those clients start again with a full bucket),
never grow the process's memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

from cachetools import TTLCache

from gateway.asgi import cors_headers, header, respond_error
from gateway.enrich import ClientAddress
from gateway.errors import ISSUES_CODE
from gateway.metrics import Metrics
from gateway.types import ASGIApp, Receive, Scope, Send

LIMITED_PATHS = ("/v1/events", "/v1/orders")
# About 100 bytes of bucket plus the cache's own bookkeeping per client: tens of MB at most.
MAX_CLIENTS = 100_000
MESSAGE = "too many requests from this client; retry after the Retry-After seconds"


class Bucket:
    """Tokens left and when they were counted; refilled lazily on the next request."""

    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class Buckets:
    """The token buckets of every recent client, bounded in number and in time."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = MAX_CLIENTS) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        # An idle bucket is full again after burst/rate seconds: forgetting it then loses nothing.
        self._cache: TTLCache[str, Bucket] = TTLCache(
            maxsize=max_clients, ttl=self.burst / rate, timer=clock)

    def __len__(self) -> int:
        return len(self._cache)

    def take(self, client: str) -> float:
        """Take one token for `client`: 0.0 when allowed, else the seconds until one is free."""
        now = self._clock()
        bucket = self._cache.get(client)
        if bucket is None:
            bucket = Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        # Set again on every request: the TTL counts from the last write, not the first.
        self._cache[client] = bucket
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


def retry_after(wait: float) -> bytes:
    """Whole seconds, at least 1 (RFC 9110: delay-seconds is a non-negative integer)."""
    return str(max(1, math.ceil(wait))).encode()


class RateLimit:
    """429 for a client IP past its rate on `paths`; everything else passes untouched."""

    def __init__(
        self,
        app: ASGIApp,
        rate: float,
        burst: int,
        address: ClientAddress,
        metrics: Metrics,
        paths: Iterable[str] = LIMITED_PATHS,
        *,
        allowed_origins: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.app = app
        self.buckets = Buckets(rate, burst, clock, max_clients)
        self._address = address
        self._counter = metrics.rate_limited
        self._paths = frozenset(paths)
        self._origins = frozenset(o.encode("latin-1") for o in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._limited(scope):
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(self._address.resolve(scope))
        if wait <= 0.0:
            await self.app(scope, receive, send)
            return
        self._counter.inc()
        headers = [(b"retry-after", retry_after(wait)), *self._cors(scope)]
        await respond_error(send, 429, MESSAGE, ISSUES_CODE, headers)

    def _cors(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        """The storefront may read its 429: else fetch sees a network error and retries sooner."""
        origin = header(scope, b"origin")
        if origin is None or origin not in self._origins:
            return []
        return cors_headers(origin)

    def _limited(self, scope: Scope) -> bool:
        # CORS preflights pass: the browser caches them, and refusing one hides the real answer.
        return (scope["type"] == "http" and scope["method"] != "OPTIONS"
                and scope["path"] in self._paths)
