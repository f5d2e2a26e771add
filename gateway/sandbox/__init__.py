"""A local Instacart Connect, in memory: what the gateway forwards to in tests and demos.

Connect endpoints (faults apply; all but the first need a valid bearer token):
    POST /v2/oauth/token                                   client credentials -> token
    POST /v2/ian/track                                     track document (001)
    POST /v2/ian/order/log                                 order-log document (000)
    POST /v2/fulfillment/users/{user_id}/orders/delivery   document 002
    GET  /v2/fulfillment/users/{user_id}/orders/{order_id} document 003
Admin API (no token, loopback):
    GET  /_sandbox/seed             users, stores, catalog, holds, limits, and how to meet
                                    each row of document 002's error table (seed.json)
    GET  /_sandbox/received         ?kind=track|order_log|delivery&offset=&limit=
    GET  /_sandbox/stats            accepted, rejected, distinct ids, duplicates per kind
    GET|PUT /_sandbox/faults        error_rate, status, latency_ms, outage, retry_after_s,
                                    drop_rate, seed; try_later_s (create order: 2003)
    GET|POST /_sandbox/clock        {"advance_s": 600} moves order lifecycles (doc 004)
    GET|PUT /_sandbox/tokens        {"ttl": 2}: lifetime of tokens issued from now on
    POST /_sandbox/tokens/expire    revokes every token: the next call gets a 401
    GET  /_sandbox/orders[/{id}]    orders in document 004's shape (an order's `order_url`)
    POST /_sandbox/orders/{id}/cancel  {"reason": "shopper_driven"}
    POST /_sandbox/reset            forgets records, orders, clock; faults to start-up

Errors use Instacart's error object: a 400 answers `{"errors": [Error, ...]}`, other
statuses one `Error`. The rest of the project calls `create_sandbox` (an ASGI app
whose state is public) and `add_arguments` / `run` for `ian-gateway sandbox`.
"""

from __future__ import annotations

from gateway.sandbox.app import Sandbox
from gateway.sandbox.cli import add_arguments, create_sandbox, run

__all__ = ["Sandbox", "add_arguments", "create_sandbox", "run"]
