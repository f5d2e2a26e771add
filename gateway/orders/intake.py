"""Order intake: `POST /v1/orders`, server to server.

Plain ASGI, the event intake's shape (gateway/intake.py, the batch mechanics of
gateway/batch.py) with the order-log document's rules: check the bearer key, read
the bounded JSON body, then for each order validate -> dedupe, and put the new ones
in the spool in one call as `order_log` records, forwarded to `/v2/ian/order/log`.
The answer is sent once the spool has them (202) and never waits on the upstream.

Not open to browsers (README, "Orders": server to server): no CORS headers, no preflight.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

from gateway.asgi import (
    BodyTooLarge,
    Disconnected,
    header,
    media_type,
    read_body,
    respond,
    respond_error,
    respond_errors,
)
from gateway.batch import Batch, Malformed, items_of
from gateway.dedupe import Dedupe
from gateway.errors import ISSUES_CODE, issues
from gateway.metrics import Metrics
from gateway.orders.rules import order_key, validate_order
from gateway.settings import Settings
from gateway.spool import Spool, SpoolFull
from gateway.types import Receive, Scope, Send

# README, "Orders": {"orders": [...]} with 1-500 orders, for backfills.
MAX_BATCH = 500
# A full batch of 500 orders of ~80 items each is about 8 MiB of JSON; past that a
# client should send smaller batches (413), and the gateway's memory stays bounded.
MAX_BODY = 8 * 1024 * 1024
KIND = "order_log"  # spool kind the forwarder sends to /v2/ian/order/log

UNAUTHORIZED = "missing or wrong API key: send Authorization: Bearer <key>"
WRONG_TYPE = "Content-Type must be application/json (UTF-8)"
TOO_LARGE = f"body over {MAX_BODY} bytes: send smaller batches"
SPOOL_FULL = "the gateway cannot take more orders now; retry later"


def bearer(value: bytes | None) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header (RFC 6750; scheme any case)."""
    if value is None:
        return None
    scheme, _, token = value.partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token:
        return None
    return token


class OrderIntake:
    def __init__(self, settings: Settings, dedupe: Dedupe, spool: Spool, metrics: Metrics) -> None:
        self._dedupe = dedupe
        self._spool = spool
        self._metrics = metrics
        # IAN_ORDERS_API_KEYS, as bytes once; empty: every request is refused.
        self._keys = tuple(key.encode() for key in settings.orders_api_keys)
        self._challenge = [(b"www-authenticate", b'Bearer realm="ian-gateway orders"')]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = await self._answer(scope, receive, send)
        if status is not None:
            self._metrics.child(self._metrics.requests, "orders", str(status)).inc()

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> int | None:
        """Answers the request; returns the status it answered, None if it could not."""
        if scope["method"] != "POST":
            await respond_error(send, 405, "use POST", ISSUES_CODE, [(b"allow", b"POST")])
            return 405
        if not self._authorized(header(scope, b"authorization")):
            await respond_error(send, 401, UNAUTHORIZED, ISSUES_CODE, self._challenge)
            return 401
        return await self._post(scope, receive, send)

    def _authorized(self, authorization: bytes | None) -> bool:
        """Constant-time against every key, so timing tells nothing about which one is near."""
        token = bearer(authorization)
        if token is None:
            return False
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(token, key)
        return matched

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> int | None:
        kind, charset = media_type(header(scope, b"content-type"))
        if kind != "application/json" or charset not in (None, "utf-8", "utf8"):
            await respond_error(send, 415, WRONG_TYPE, ISSUES_CODE)
            return 415
        try:
            body = await read_body(receive, MAX_BODY, header(scope, b"content-length"))
            orders = items_of(body, "orders", MAX_BATCH)
        except Disconnected:
            return None  # no one is left to answer; counted by the server (request_timeout.py)
        except BodyTooLarge:
            await respond_error(send, 413, TOO_LARGE, ISSUES_CODE)
            return 413
        except Malformed:
            await respond_errors(send, 400, [issues()])
            return 400
        try:
            batch = await self.accept(orders, datetime.now(UTC))
        except SpoolFull as full:
            retry = [(b"retry-after", str(full.retry_after).encode())]
            await respond_error(send, 503, SPOOL_FULL, ISSUES_CODE, retry)
            return 503
        await respond(send, batch.status, batch.answer())
        return batch.status

    async def accept(self, orders: list[Any], now: datetime) -> Batch:
        """validate -> dedupe each order, then spool the new ones together."""
        batch = Batch(KIND, self._dedupe)
        for index, order in enumerate(orders):
            errors = validate_order(order, now)
            if errors:
                batch.reject(index, errors)
                continue
            batch.add(index, order, order_key(order))
        await batch.store(self._spool)
        batch.count(self._metrics)
        return batch
