"""A bound on how long a request may take to arrive (slowloris): uvicorn's httptools
protocol with a deadline.

uvicorn reads a request's headers before the ASGI app runs and bounds nothing until
the request has arrived whole (its `timeout_keep_alive` runs only between requests),
so a client trickling a request a byte a second holds a socket and a task for as
long as it likes, and a few thousand of them exhaust the process's file descriptors.
Here a connection gets `IAN_REQUEST_TIMEOUT` seconds from its opening, and each later
request on it from its first byte, until the request's last byte. Past that it is
answered 408 with Instacart's error object when an answer can still be sent (nothing
of the request used), or else closed, and counted in `ian_incomplete_requests_total`
by where it stalled: `idle_timeout` (not a byte sent: closed without an answer, as
a browser's unused pre-connection may be), `headers_timeout`, `body_timeout`; a
client that leaves in the middle of a request is counted there too (`disconnected`),
and so is a request line with headers over MAX_HEAD bytes, answered 431
(`headers_too_large`).

`serve` runs uvicorn with this protocol (gateway/cli.py); the gateway's lifespan puts
the bound and the metrics in uvicorn's lifespan state (ASGI's state shared by the app
with its server), where each connection finds them.
"""

from __future__ import annotations

import asyncio
import http
from typing import Any

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from gateway.asgi import JSON_TYPE, NO_STORE
from gateway.errors import ISSUES_CODE, error
from gateway.metrics import Metrics
from gateway.types import Headers

STATE_KEY = "ian.request_deadline"
IDLE, HEADERS, BODY = "idle_timeout", "headers_timeout", "body_timeout"
DISCONNECTED = "disconnected"
# httptools bounds neither the request line nor the headers: past this, 431 (nginx's are
# 32 KiB, Node's 16 KiB; a first-party beacon carries the storefront's cookies).
MAX_HEAD = 64 * 1024
HEAD_TOO_LARGE = "headers_too_large"
SWEEPS = 10  # looks per bound: a connection is cut at most a tenth of the bound late
SWEEP_MAX = 1.0  # seconds between looks, at most


class RequestDeadline:
    """The bound (IAN_REQUEST_TIMEOUT), where to count, and the connections it watches.

    A sweep every tenth of the bound cuts the connections past it, so a request costs
    the hot path a read of the loop's clock, not a timer of its own (a `call_later`
    and its `cancel`, a libuv timer each under uvloop).
    """

    def __init__(self, seconds: float, metrics: Metrics) -> None:
        self.seconds = seconds
        self.metrics = metrics
        self.message = (f"the request did not arrive whole within {seconds:g} s "
                        "(IAN_REQUEST_TIMEOUT)")
        self._interval = min(SWEEP_MAX, seconds / SWEEPS)
        self._open: set[DeadlineProtocol] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def watch(self, connection: DeadlineProtocol) -> None:
        self._open.add(connection)
        if self._sweeper is None:  # the first connection: the server's loop is running
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def forget(self, connection: DeadlineProtocol) -> None:
        self._open.discard(connection)

    def count(self, reason: str) -> None:
        self.metrics.child(self.metrics.incomplete, reason).inc()

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._interval)
            cutoff = loop.time() - self.seconds
            late = [c for c in self._open if c.started is not None and c.started <= cutoff]
            for connection in late:
                connection.timed_out()


def raw_error(status: int, message: str, default_headers: Headers) -> bytes:
    """A whole HTTP/1.1 answer with Instacart's error object, closing the connection: for
    the server's own answers, sent before or instead of the app's."""
    body = orjson.dumps({"errors": [error(message, ISSUES_CODE)]})
    lines = [b"HTTP/1.1 %d %s" % (status, http.HTTPStatus(status).phrase.encode())]
    headers = [*default_headers, JSON_TYPE, NO_STORE,
               (b"content-length", b"%d" % len(body)), (b"connection", b"close")]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a request deadline and JSON error answers."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # None when the app did not set one (not the gateway's lifespan): plain uvicorn
        self._deadline: RequestDeadline | None = app_state.get(STATE_KEY)
        # loop time the connection opened, or its request's first byte came; None between
        # requests, while uvicorn's keep-alive timeout bounds the wait
        self.started: float | None = None
        self._phase = IDLE
        self._heads = 0  # request heads parsed on this connection
        self._head_bytes = 0  # bytes received since the last head ended

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self._deadline is not None:
            self.started = self.loop.time()
            self._deadline.watch(self)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = HEADERS
        if self.started is None:  # a later request on a kept-alive connection
            self.started = self.loop.time()

    def data_received(self, data: bytes) -> None:
        heads = self._heads
        super().data_received(data)
        if self._heads != heads or self.started is None:  # a head ended, or none begun
            self._head_bytes = 0
            return
        self._head_bytes += len(data)  # bounded to MAX_HEAD and one read beyond
        if self._phase == HEADERS and self._head_bytes > MAX_HEAD:
            self._refuse_head()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._phase = BODY
        self._heads += 1

    def _refuse_head(self) -> None:
        self.started = None
        if self._deadline is not None:
            self._deadline.count(HEAD_TOO_LARGE)
        message = f"request line and headers over {MAX_HEAD} bytes"
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(raw_error(431, message, self.server_state.default_headers))
        self.transport.close()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.started = None

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._deadline is None:
            return
        self._deadline.forget(self)
        if self.started is not None and self._phase != IDLE:
            # the client left in the middle of a request: the app abandons what came of it
            self._deadline.count(DISCONNECTED)
        self.started = None

    def send_400_response(self, msg: str) -> None:
        """A request that is not HTTP: uvicorn's plain-text 400, with the error object."""
        self.started = None
        self.transport.write(raw_error(400, msg, self.server_state.default_headers))
        self.transport.close()

    def timed_out(self) -> None:
        """Past the bound: a 408 if it can be the next answer, then the connection closed."""
        self.started = None
        if self._deadline is None or self.transport.is_closing():
            return
        self._deadline.count(self._phase)
        if self._can_answer():
            default_headers = self.server_state.default_headers
            self.transport.write(raw_error(408, self._deadline.message, default_headers))
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # what connection_lost does, now: the app's receive() answers http.disconnect
            # (intake abandons the body) and whatever it sends is dropped
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()

    def _can_answer(self) -> bool:
        """Whether a 408 would be the next answer on this connection: a request has begun
        and neither it nor an earlier one's answer is under way."""
        if self._phase == IDLE:
            return False
        if self.cycle is None:
            return True
        if self._phase == HEADERS:  # self.cycle is the previous request's
            return bool(self.cycle.response_complete)
        return not self.cycle.response_started
