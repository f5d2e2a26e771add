"""`POST /v2/ian/track` and `POST /v2/ian/order/log`: validate, record, answer.

The rules are the gateway's own (`gateway.validate`, `gateway.orders`): one source
of truth, so the sandbox can never accept what the gateway would reject or the
other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from gateway.orders.rules import validate_order
from gateway.sandbox.clock import Clock
from gateway.sandbox.http import Request, Response, errors_response, malformed
from gateway.sandbox.store import Store
from gateway.types import Error
from gateway.validate import validate_event

# track doc and order-log doc, "200 Success": {"message": "Successfully processed"}
SUCCESS = Response(200, orjson.dumps({"message": "Successfully processed"}))


class Recorder:
    """Handles one of the two endpoints: a valid body is recorded under `kind` and
    answered 200; any other is counted as rejected and answered with its errors."""

    def __init__(self, store: Store, kind: str, validate: Callable[[Any], list[Error]]) -> None:
        self.store = store
        self.kind = kind
        self.validate = validate

    async def __call__(self, request: Request) -> Response:
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            self.store.reject(self.kind)
            return malformed()
        errors = self.validate(body)
        if errors:
            self.store.reject(self.kind)
            return errors_response(errors)
        self.store.accept(self.kind, body, request.raw_headers)
        return SUCCESS


def track(store: Store) -> Recorder:
    """The track endpoint: the sandbox's hot path."""
    return Recorder(store, "track", validate_event)


def order_log(store: Store, clock: Clock) -> Recorder:
    """The order-log endpoint; "now" is the sandbox clock, so a test can age an order."""
    return Recorder(store, "order_log", lambda order: validate_order(order, clock.now()))
