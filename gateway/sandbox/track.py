"""`POST /v2/ian/track` and `POST /v2/ian/order/log`: validate, record, answer.

The rules are the gateway's own (`gateway.validate`, `gateway.orders`): one source
of truth, so the sandbox can never accept what the gateway would reject or the
other way round.
"""

from __future__ import annotations

import orjson

from gateway.orders.rules import validate_order
from gateway.sandbox.clock import Clock
from gateway.sandbox.http import Request, Response, errors_response, malformed
from gateway.sandbox.store import Store
from gateway.validate import validate_event

# track doc and order-log doc, "200 Success": {"message": "Successfully processed"}
SUCCESS = Response(200, orjson.dumps({"message": "Successfully processed"}))


class Track:
    """Handles the track endpoint: the sandbox's hot path."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def __call__(self, request: Request) -> Response:
        try:
            event = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            self.store.reject("track")
            return malformed()
        errors = validate_event(event)
        if errors:
            self.store.reject("track")
            return errors_response(errors)
        self.store.accept("track", event, request.raw_headers)
        return SUCCESS


class OrderLog:
    """Handles the order-log endpoint; "now" is the sandbox clock, so a test can age an order."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def __call__(self, request: Request) -> Response:
        try:
            order = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            self.store.reject("order_log")
            return malformed()
        errors = validate_order(order, self.clock.now())
        if errors:
            self.store.reject("order_log")
            return errors_response(errors)
        self.store.accept("order_log", order, request.raw_headers)
        return SUCCESS
