"""The Instacart Connect client: one aiohttp session, tokens, one request per record.

aiohttp, not httpx: DESIGN.md measured httpx's pool at ~420 req/s with 64
concurrent requests against ~7,700 for aiohttp on this machine class, and
forwarding is the hot path. For the same reason the session keeps no cookies
(DummyCookieJar: each request would filter the jar and each answer update it),
the URLs are parsed once, and `IAN_UPSTREAM_TIMEOUT` is kept by one watchdog
task rather than a timer armed and disarmed in aiohttp for every request
(together about a sixth of aiohttp's cost per request, measured with 64
concurrent POSTs to the bench's nginx stub).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
import orjson
from yarl import URL

from gateway import __version__
from gateway.settings import Settings
from gateway.spool import Record

# Where each kind of record goes upstream.
PATHS = {"track": "/v2/ian/track", "order_log": "/v2/ian/order/log"}
TOKEN_PATH = "/v2/oauth/token"
# Public Instacart docs: tokens last 24 h and should be reused; refresh well before expiry.
REFRESH_MARGIN = 0.1  # of the token's lifetime, at most REFRESH_MARGIN_MAX seconds
REFRESH_MARGIN_MAX = 300.0
OWN_USER_AGENT = f"ian-gateway/{__version__}"
WATCH_SLICES = 10  # the watchdog looks this many times per timeout: cuts at 90-100% of it
WATCH_INTERVAL_MAX = 1.0  # seconds between looks, at most


@dataclass(frozen=True, slots=True)
class Answer:
    """What the upstream said: status 0 means no answer (connection error or timeout)."""

    status: int
    body: str
    retry_after: float | None = None


class TokenError(Exception):
    """The token endpoint refused or could not be reached."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(f"token request failed: {answer.status} {answer.body[:200]}")
        self.answer = answer


class Tokens:
    """A static token, or OAuth client credentials fetched, cached and refreshed."""

    def __init__(self, settings: Settings) -> None:
        self._static = settings.access_token
        self._credentials = {
            "client_id": settings.client_id,
            "client_secret": settings.client_secret,
            "grant_type": "client_credentials",
            "scope": "connect:ian",
        }
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()

    def current(self) -> str | None:
        """The token to use now, or None when one must be fetched first (`get`)."""
        if self._static:
            return self._static
        if self._token is None or time.monotonic() >= self._refresh_at:
            return None
        return self._token

    async def get(self, connect: Connect) -> str:
        token = self.current()
        if token is not None:
            return token
        await self.refresh(connect, stale=self._token)
        assert self._token is not None
        return self._token

    async def refresh(self, connect: Connect, stale: str | None) -> None:
        """Fetch a new token unless another task already replaced `stale`."""
        if self._static:
            return
        async with self._lock:
            if self._token != stale and time.monotonic() < self._refresh_at:
                return
            answer = await connect.post_json(TOKEN_PATH, orjson.dumps(self._credentials), {})
            if answer.status != 200:
                raise TokenError(answer)
            self._store(answer)

    def _store(self, answer: Answer) -> None:
        try:
            payload = orjson.loads(answer.body)
            token = str(payload["access_token"])
            lifetime = float(payload.get("expires_in", 86400))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise TokenError(answer) from None
        self._token = token
        self._refresh_at = time.monotonic() + lifetime - min(
            lifetime * REFRESH_MARGIN, REFRESH_MARGIN_MAX
        )


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


class Watchdog:
    """Cancels requests that outlive the upstream timeout, from one task for them all.

    Each request registers its deadline; the watchdog looks every `interval` and
    cancels the tasks past theirs, which then answer a timeout the way
    `asyncio.timeout` does (uncancel, so a cancel from elsewhere stands). A
    deadline is one interval short of the timeout, so a request is cut between
    90% and 100% of `IAN_UPSTREAM_TIMEOUT`, never later: the spool's lease,
    checked to be longer, still outlasts it.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.interval = min(timeout / WATCH_SLICES, WATCH_INTERVAL_MAX)
        self._deadlines: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="upstream-watchdog")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def enter(self) -> asyncio.Task[object]:
        task = asyncio.current_task()
        assert task is not None, "requests run in tasks"
        self._deadlines[task] = time.monotonic() + self.timeout - self.interval
        return task

    def leave(self, task: asyncio.Task[object]) -> None:
        self._deadlines.pop(task, None)
        if task in self._expired:  # cancelled, but the request ended otherwise: take it back
            self._expired.discard(task)
            task.uncancel()

    def timed_out(self, task: asyncio.Task[object]) -> bool:
        """After a CancelledError: True when it was this watchdog's (now taken back) alone."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        return task.uncancel() == 0

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            now = time.monotonic()
            for task, deadline in list(self._deadlines.items()):
                if now >= deadline and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()


class Connect:
    def __init__(self, settings: Settings) -> None:
        assert settings.upstream_url, "IAN_UPSTREAM_URL is required to forward"
        self._base = settings.upstream_url.rstrip("/")
        self._urls = {path: URL(self._base + path) for path in (*PATHS.values(), TOKEN_PATH)}
        self._watchdog = Watchdog(settings.upstream_timeout)
        self._concurrency = settings.forward_concurrency
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if settings.retailer_id:
            self._headers["X-Retailer-Id"] = settings.retailer_id
        self.tokens = Tokens(settings)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._concurrency, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(),  # the watchdog's job
            skip_auto_headers=("User-Agent",), cookie_jar=aiohttp.DummyCookieJar(),
        )
        self._watchdog.start()

    async def close(self) -> None:
        await self._watchdog.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, record: Record) -> Answer:
        """POST one record with a valid token; on a 401, refresh once and try again."""
        token = self.tokens.current()
        if token is None:
            try:
                token = await self.tokens.get(self)
            except TokenError as exc:
                return exc.answer
        answer = await self._send(record, token)
        if answer.status != 401:
            return answer
        try:
            await self.tokens.refresh(self, stale=token)
            token = await self.tokens.get(self)
        except TokenError as exc:
            return exc.answer
        return await self._send(record, token)

    async def _send(self, record: Record, token: str) -> Answer:
        headers = {
            **self._headers,
            "Authorization": f"Bearer {token}",
            # track doc example: the shopper's user agent travels as User-Agent too
            "User-Agent": record.user_agent or OWN_USER_AGENT,
        }
        return await self.post_json(PATHS[record.kind], record.body, headers)

    async def post_json(self, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        assert self._session is not None, "Connect.start() first"
        if "Content-Type" not in headers:
            headers = {**self._headers, "User-Agent": OWN_USER_AGENT, **headers}
        task = self._watchdog.enter()
        try:
            async with self._session.post(self._urls[path], data=body, headers=headers) as resp:
                answer = await resp.read()
                status = resp.status
                if 200 <= status < 300 and path != TOKEN_PATH:
                    return Answer(status, "")  # the hot path: nothing to keep of a success
                text = answer.decode("utf-8", errors="replace")
                return Answer(status, text, retry_after(resp.headers.get("Retry-After")))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Answer(0, f"{type(exc).__name__}: {exc}")
        except asyncio.CancelledError:
            if not self._watchdog.timed_out(task):
                raise
            return Answer(0, f"TimeoutError: no answer within {self._watchdog.timeout:g} s")
        finally:
            self._watchdog.leave(task)
