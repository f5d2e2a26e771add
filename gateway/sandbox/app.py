"""The sandbox as one raw ASGI app: its state (state.py) behind a route table.

`Sandbox.__init__` builds everything (state, routes, precomputed answers);
`__call__` only dispatches: match the route, inject faults on Connect calls,
check the token, read the body, hand it to the handler (work once at construction, a thin hot path).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.asgi import BodyTooLarge, Disconnected, read_body
from gateway.errors import error
from gateway.sandbox.admin import Admin
from gateway.sandbox.auth import TOKEN_TTL
from gateway.sandbox.faults import FaultConfig
from gateway.sandbox.http import (
    DROP,
    MAX_BODY,
    NOT_FOUND,
    Request,
    Response,
    drop,
    error_response,
    send_response,
)
from gateway.sandbox.seed import Seed
from gateway.sandbox.state import State
from gateway.sandbox.store import MAX_RECORDS
from gateway.sandbox.track import order_log, track
from gateway.types import Receive, Scope, Send

logger = logging.getLogger("gateway.sandbox")

Handler = Callable[[Request], Awaitable[Response]]

METHOD_NOT_ALLOWED = error_response(405, error("Method Not Allowed", 405))
TOO_LARGE = error_response(413, error("Request Entity Too Large", 413))
BROKEN = error_response(500, error("Internal Server Error", 500))


@dataclass(frozen=True, slots=True)
class Route:
    handlers: dict[str, Handler]  # by method
    connect: bool  # a Connect endpoint: faults apply
    auth: bool  # needs a valid bearer token


class Sandbox(State):
    """A local Instacart Connect: its `State` (public, for in-process tests) served over
    a route table."""

    def __init__(self, client_id: str, client_secret: str, token_ttl: float = TOKEN_TTL,
                 faults: FaultConfig | None = None, seed: Seed | None = None,
                 max_records: int = MAX_RECORDS) -> None:
        super().__init__(client_id, client_secret, token_ttl, faults, seed, max_records)
        self.admin = Admin(self)
        self.exact, self.patterns = self.routes()

    def routes(self) -> tuple[dict[str, Route], list[tuple[re.Pattern[str], Route]]]:
        admin, orders = self.admin, self.orders
        exact = {
            "/v2/oauth/token": Route({"POST": self.tokens.token_endpoint}, True, False),
            "/v2/ian/track": Route({"POST": track(self.store)}, True, True),
            "/v2/ian/order/log": Route({"POST": order_log(self.store, self.clock)},
                                      True, True),
            "/_sandbox/seed": Route({"GET": admin.seed}, False, False),
            "/_sandbox/received": Route({"GET": admin.received}, False, False),
            "/_sandbox/stats": Route({"GET": admin.stats}, False, False),
            "/_sandbox/faults": Route({"GET": admin.get_faults, "PUT": admin.put_faults},
                                      False, False),
            "/_sandbox/clock": Route({"GET": admin.clock, "POST": admin.clock}, False, False),
            "/_sandbox/tokens": Route({"GET": admin.tokens, "PUT": admin.tokens}, False, False),
            "/_sandbox/tokens/expire": Route({"POST": admin.expire_tokens}, False, False),
            "/_sandbox/reset": Route({"POST": admin.reset}, False, False),
            "/_sandbox/orders": Route({"GET": admin.orders}, False, False),
        }
        users = r"/v2/fulfillment/users/(?P<user_id>[^/]+)/orders"
        patterns = [
            (re.compile(users + "/delivery"), Route({"POST": orders.create}, True, True)),
            (re.compile(users + "/(?P<order_id>[^/]+)"), Route({"GET": orders.get}, True, True)),
            (re.compile(r"/_sandbox/orders/(?P<order_id>[^/]+)/cancel"),
             Route({"POST": admin.cancel}, False, False)),
            (re.compile(r"/_sandbox/orders/(?P<order_id>[^/]+)"),
             Route({"GET": admin.order}, False, False)),
        ]
        return exact, patterns

    def match(self, path: str) -> tuple[Route, dict[str, str]] | None:
        route = self.exact.get(path)
        if route is not None:
            return route, {}
        for pattern, candidate in self.patterns:
            found = pattern.fullmatch(path)
            if found is not None:
                return candidate, found.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope["method"], scope["path"], scope["headers"], scope["query_string"])
        try:
            response = await self.handle(request, receive)
        except Disconnected:
            return  # the client left before its body's end: no one to answer
        if response is DROP:
            await drop(scope, receive, send)
            return
        await send_response(send, response)

    async def handle(self, request: Request, receive: Receive) -> Response:
        matched = self.match(request.path)
        if matched is None:
            return NOT_FOUND
        route, request.params = matched
        handler = route.handlers.get(request.method)
        if handler is None:
            return METHOD_NOT_ALLOWED
        try:
            request.body = await read_body(receive, MAX_BODY,
                                           request.raw_header(b"content-length"))
        except BodyTooLarge:
            return TOO_LARGE
        if route.connect and self.faults.config.active:
            fault = await self.faults.inject()
            if fault is not None:
                return fault
        if route.auth:
            denied = self.tokens.check(request.raw_header(b"authorization"))
            if denied is not None:
                return denied
        return await call(handler, request)


async def call(handler: Handler, request: Request) -> Response:
    """The handler's answer; a bug answers 500 with the error object, never a traceback page."""
    try:
        return await handler(request)
    except Exception:
        logger.exception("sandbox handler failed: %s %s", request.method, request.path)
        return BROKEN


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
