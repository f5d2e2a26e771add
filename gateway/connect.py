"""The Instacart Connect client: pyreqwest clients, tokens, one request per record.

pyreqwest (Rust reqwest, hyper and rustls under a thin Python layer), not
aiohttp: forwarding is one upstream request per event, so the client's CPU per
request is the forwarder's ceiling, and pyreqwest's is the lowest measured
(docs/performance.md, "Library choices").

HTTP/2 is used when the upstream offers it by ALPN, HTTP/1.1 keep-alive
otherwise. One reqwest client keeps a single HTTP/2 connection per host, and
servers cap the streams of a connection (nginx: 128), which would cap
throughput at 128 ÷ round trip; so requests are spread round robin over
enough clients that each carries at most `STREAMS_PER_CONNECTION`.

Redirects are never followed: the forwarder sends credentials and shoppers'
data to `IAN_UPSTREAM_URL` and nowhere else, so a 3xx is an answer like
another (the forwarder keeps the record and retries). The upstream's
certificate is always verified, against the system's roots plus
`IAN_UPSTREAM_CA`; `HTTPS_PROXY` / `NO_PROXY` come from the settings only.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import NamedTuple

import orjson
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import PyreqwestError, RequestTimeoutError
from pyreqwest.http import Url
from pyreqwest.proxy import ProxyBuilder

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
# Under nginx's default of 128 concurrent streams per HTTP/2 connection, with room to spare.
STREAMS_PER_CONNECTION = 100


class Answer(NamedTuple):
    """What the upstream said: status 0 means no answer (connection error or timeout)."""

    status: int
    body: str
    retry_after: float | None = None
    location: str | None = None  # of a 3xx: where the upstream wanted us to go (never followed)


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
            answer = await connect.post_json(TOKEN_PATH, orjson.dumps(self._credentials))
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


def build_client(settings: Settings, headers: dict[str, str]) -> Client:
    """One reqwest client as the upstream needs it: verified TLS, no redirects, no cookies,
    `headers` on every request (set once here, not converted again for each)."""
    builder = (
        ClientBuilder()
        .default_headers(headers)
        .http2(True)  # offered by ALPN; HTTP/1.1 when the upstream does not take it
        .follow_redirects(False)
        .referer(False)
        .gzip(False).brotli(False).zstd(False).deflate(False)  # answers are a few bytes
        .timeout(timedelta(seconds=settings.upstream_timeout))
        .no_proxy()  # proxies from the settings only, never from other variables
    )
    if settings.https_proxy:
        builder = builder.proxy(ProxyBuilder.https(settings.https_proxy)
                                .no_proxy(settings.no_proxy))
    if settings.upstream_ca:
        with open(settings.upstream_ca, "rb") as bundle:
            builder = builder.add_root_certificate_pem(bundle.read())
    return builder.build()


class Connect:
    def __init__(self, settings: Settings) -> None:
        assert settings.upstream_url, "IAN_UPSTREAM_URL is required to forward"
        self._settings = settings
        self._base = settings.upstream_url.rstrip("/")
        self._urls = {path: Url(self._base + path) for path in (*PATHS.values(), TOKEN_PATH)}
        self._connections = max(1, math.ceil(settings.forward_concurrency
                                             / STREAMS_PER_CONNECTION))
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if settings.retailer_id:
            self._headers["X-Retailer-Id"] = settings.retailer_id
        self.tokens = Tokens(settings)
        self._clients: list[Client] = []
        self._next: Iterator[Client] = iter(())

    async def start(self) -> None:
        self._clients = [build_client(self._settings, self._headers)
                         for _ in range(self._connections)]
        self._next = itertools.cycle(self._clients)

    async def close(self) -> None:
        clients, self._clients, self._next = self._clients, [], iter(())
        await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)

    async def send(self, record: Record) -> Answer:
        """POST one record with a valid token; on a 401, refresh once and try again."""
        token = self.tokens.current()
        if token is None:
            try:
                token = await self.tokens.get(self)
            except TokenError as exc:
                return exc.answer
        path = PATHS[record.kind]
        # track doc example: the shopper's user agent travels as User-Agent too
        user_agent = record.user_agent or OWN_USER_AGENT
        answer = await self.post_json(path, record.body, f"Bearer {token}", user_agent)
        if answer.status != 401:
            return answer
        try:
            await self.tokens.refresh(self, stale=token)
            token = await self.tokens.get(self)
        except TokenError as exc:
            return exc.answer
        return await self.post_json(path, record.body, f"Bearer {token}", user_agent)

    async def post_json(self, path: str, body: bytes, authorization: str | None = None,
                        user_agent: str = OWN_USER_AGENT) -> Answer:
        """POST `body` with the client's default headers, `User-Agent` and, when given,
        `Authorization`."""
        assert self._clients, "Connect.start() first"
        # A parsed Url and a header() call per header: a URL string is parsed again and a
        # dict of headers converted on every request, which costs the hot path about 4 µs
        # more per record (docs/performance.md, "Settings chosen by measurement").
        request = next(self._next).post(self._urls[path]).header("User-Agent", user_agent)
        if authorization is not None:
            request = request.header("Authorization", authorization)
        request = request.body_bytes(body)
        try:
            # build(), not build_streamed(): send() has read the whole answer already
            response = await request.build().send()
            status = response.status
            if 200 <= status < 300 and path != TOKEN_PATH:
                # The hot path: nothing to keep of a success, and not reading it saves an
                # await per record (docs/performance.md, "The forwarder's own CPU").
                return Answer(status, "")
            answer = await response.bytes()
        except RequestTimeoutError:
            timeout = self._settings.upstream_timeout
            return Answer(0, f"TimeoutError: no answer within {timeout:g} s")
        except (PyreqwestError, OSError) as exc:
            return Answer(0, f"{type(exc).__name__}: {exc}")
        return Answer(status, bytes(answer).decode("utf-8", errors="replace"),
                      retry_after(response.get_header("Retry-After")),
                      response.get_header("Location") if 300 <= status < 400 else None)
