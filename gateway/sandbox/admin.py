"""The admin API under `/_sandbox/`: seed, inspection, faults, clock, tokens, reset.

No token: it is for tests and operators on loopback (README, "The sandbox").
Answers are plain JSON; mistakes get Instacart's error object like everything else.
"""

from __future__ import annotations

from gateway.errors import NOT_IN_LIST, error, invalid
from gateway.sandbox.faults import FaultError
from gateway.sandbox.http import (
    NOT_FOUND,
    Request,
    Response,
    errors_response,
    is_number,
    json_body,
    json_response,
)
from gateway.sandbox.lifecycle import CANCELLATION_REASONS
from gateway.sandbox.state import State
from gateway.sandbox.store import KINDS

NOT_A_COUNT = "must be an integer >= 0"


def bad(message: str, key: str) -> Response:
    return errors_response([invalid(message, key)])


class Admin:
    """Handlers for the admin routes of one sandbox: each reads the request, calls its
    state and answers in JSON."""

    def __init__(self, state: State) -> None:
        self.state = state

    async def seed(self, request: Request) -> Response:
        return json_response(200, self.state.seed_json())

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
        items = self.state.store.received(kind, int(offset), count)
        return json_response(200, {"kind": kind, "count": len(items), "items": items})

    async def stats(self, request: Request) -> Response:
        return json_response(200, self.state.stats())

    async def get_faults(self, request: Request) -> Response:
        return json_response(200, self.state.fault_settings())

    async def put_faults(self, request: Request) -> Response:
        body = json_body(request)
        if isinstance(body, Response):
            return body
        try:
            config = self.state.set_faults(**body)
        except (FaultError, TypeError) as exc:
            return errors_response([error(str(exc), 1001, "faults")])
        return json_response(200, config.as_json())

    async def clock(self, request: Request) -> Response:
        if request.method == "POST":
            body = json_body(request)
            if isinstance(body, Response):
                return body
            advance = body.get("advance_s")
            if not is_number(advance) or advance < 0:
                return bad("must be a number >= 0", "advance_s")
            self.state.clock.advance(advance)
        return json_response(200, self.state.clock_view())

    async def tokens(self, request: Request) -> Response:
        """`GET` the token lifetime and live count; `PUT {"ttl": 2}` for tokens issued next."""
        if request.method == "PUT":
            body = json_body(request)
            if isinstance(body, Response):
                return body
            ttl = body.get("ttl")
            if not is_number(ttl) or ttl <= 0:
                return bad("must be a number > 0", "ttl")
            self.state.set_token_ttl(float(ttl))
        return json_response(200, self.state.token_settings())

    async def expire_tokens(self, request: Request) -> Response:
        return json_response(200, {"expired": self.state.tokens.expire_all()})

    async def reset(self, request: Request) -> Response:
        """Forget records, orders and clock; faults back to start-up; tokens stay valid."""
        self.state.reset()
        return json_response(200, {"reset": True})

    async def orders(self, request: Request) -> Response:
        return json_response(200, self.state.order_views())

    async def cancel(self, request: Request) -> Response:
        """Cancel an order as Instacart or a shopper would; body `{"reason": ...}`."""
        order_id = request.params["order_id"]
        if not self.state.has_order(order_id):
            return NOT_FOUND
        body = json_body(request) if request.body else {"reason": "other"}
        if isinstance(body, Response):
            return body
        reason = body.get("reason", "other")
        if reason not in CANCELLATION_REASONS:
            return bad(NOT_IN_LIST, "reason")
        if not self.state.cancel_order(order_id, reason):
            return bad("cannot be canceled once delivered or canceled", "status")
        return json_response(200, self.state.order_view(order_id))

    async def order(self, request: Request) -> Response:
        """An order in document 004's shape (the schema tests check), with its user."""
        view = self.state.order_view(request.params["order_id"])
        return NOT_FOUND if view is None else json_response(200, view)
