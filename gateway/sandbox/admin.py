"""The admin API under `/_sandbox/`: seed, inspection, faults, clock, tokens, reset.

No token: it is for tests and operators on loopback (README, "The sandbox").
Answers are plain JSON; mistakes get Instacart's error object like everything else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.errors import error, invalid
from gateway.sandbox.clock import iso
from gateway.sandbox.faults import FaultConfig, FaultError
from gateway.sandbox.http import Request, Response, errors_response, json_body, json_response
from gateway.sandbox.lifecycle import CANCELLATION_REASONS
from gateway.sandbox.store import KINDS

if TYPE_CHECKING:
    from gateway.sandbox.app import Sandbox

NOT_IN_LIST = "is not included in the list"
NOT_A_COUNT = "must be an integer >= 0"


def bad(message: str, key: str) -> Response:
    return errors_response([invalid(message, key)])


class Admin:
    """Handlers for the admin routes of one sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def seed(self, request: Request) -> Response:
        return json_response(200, self.sandbox.seed.raw)

    async def received(self, request: Request) -> Response:
        query = request.query()
        kind = query.get("kind") or None
        if kind is not None and kind not in KINDS:
            return bad(NOT_IN_LIST, "kind")
        offset, limit = query.get("offset", "0"), query.get("limit")
        if not offset.isdecimal():
            return bad(NOT_A_COUNT, "offset")
        if limit is not None and not limit.isdecimal():
            return bad(NOT_A_COUNT, "limit")
        count = None if limit is None else int(limit)
        items = self.sandbox.store.received(kind, int(offset), count)
        return json_response(200, {"kind": kind, "count": len(items), "items": items})

    async def stats(self, request: Request) -> Response:
        stats = self.sandbox.store.stats_json()
        stats["orders"] = len(self.sandbox.orders.orders)
        stats["tokens"] = len(self.sandbox.tokens.expiry)
        return json_response(200, stats)

    async def get_faults(self, request: Request) -> Response:
        return json_response(200, self.sandbox.faults.config.as_json())

    async def put_faults(self, request: Request) -> Response:
        body = json_body(request)
        if isinstance(body, Response):
            return body
        try:
            config = FaultConfig.from_json(body)
        except (FaultError, TypeError) as exc:
            return errors_response([error(str(exc), 1001, "faults")])
        self.sandbox.faults.set(config)
        return json_response(200, config.as_json())

    async def clock(self, request: Request) -> Response:
        if request.method == "POST":
            body = json_body(request)
            if isinstance(body, Response):
                return body
            advance = body.get("advance_s")
            if not isinstance(advance, int | float) or isinstance(advance, bool) or advance < 0:
                return bad("must be a number >= 0", "advance_s")
            self.sandbox.clock.advance(advance)
        clock = self.sandbox.clock
        return json_response(200, {"now": iso(clock.now()),
                                    "offset_s": clock.offset.total_seconds()})

    async def tokens(self, request: Request) -> Response:
        """`GET` the token lifetime and live count; `PUT {"ttl": 2}` for tokens issued next."""
        tokens = self.sandbox.tokens
        if request.method == "PUT":
            body = json_body(request)
            if isinstance(body, Response):
                return body
            ttl = body.get("ttl")
            if not isinstance(ttl, int | float) or isinstance(ttl, bool) or ttl <= 0:
                return bad("must be a number > 0", "ttl")
            tokens.ttl = float(ttl)
        return json_response(200, {"ttl": tokens.ttl, "active": len(tokens.expiry)})

    async def expire_tokens(self, request: Request) -> Response:
        return json_response(200, {"expired": self.sandbox.tokens.expire_all()})

    async def reset(self, request: Request) -> Response:
        """Forget records, orders and clock; faults back to start-up; tokens stay valid."""
        self.sandbox.reset()
        return json_response(200, {"reset": True})

    async def orders(self, request: Request) -> Response:
        now = self.sandbox.clock.now()
        return json_response(200, [o.schema_view(now) for o in self.sandbox.orders.orders.values()])

    async def cancel(self, request: Request) -> Response:
        """Cancel an order as Instacart or a shopper would; body `{"reason": ...}`."""
        order = self.sandbox.orders.orders.get(request.params["order_id"])
        if order is None:
            return json_response(404, error("Resource not found", 4000))
        body = json_body(request) if request.body else {"reason": "other"}
        if isinstance(body, Response):
            return body
        reason = body.get("reason", "other")
        if reason not in CANCELLATION_REASONS:
            return bad(NOT_IN_LIST, "reason")
        if not order.cancel(self.sandbox.clock.now(), reason):
            return bad("cannot be canceled once delivered or canceled", "status")
        return json_response(200, order.schema_view(self.sandbox.clock.now()))

    async def order(self, request: Request) -> Response:
        """An order in document 004's shape (the schema tests check), with its user."""
        order = self.sandbox.orders.orders.get(request.params["order_id"])
        if order is None:
            return json_response(404, error("Resource not found", 4000))
        return json_response(200, order.schema_view(self.sandbox.clock.now()))
