"""Request bodies and small helpers the sandbox's tests share."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

CREDENTIALS = {
    "client_id": "sandbox-client",
    "client_secret": "sandbox-secret",
    "grant_type": "client_credentials",
    "scope": "connect:ian",
}


def token(http: httpx.Client, url: str) -> str:
    answer = http.post(f"{url}/v2/oauth/token", json=CREDENTIALS)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def track_event(**fields: Any) -> dict[str, Any]:
    """A valid sponsored-product impression as the gateway forwards it."""
    data = {
        "event_id": str(uuid.uuid4()),
        "event_tracking_context": {"user_agent": "Mozilla/5.0 test", "user_ip": "203.0.113.7"},
        "object_tracking_id": "tracking-1",
        "product_id": "12345",
        "record_version": "999",
        **fields,
    }
    return {"event": "ian.sponsored_product.1px_in_viewport", "user_id": "u-42",
            "sent_at": now_iso(), "data": {"sponsored_product_data": data}}


def order_created(order_id: str | None = None, **properties: Any) -> dict[str, Any]:
    """A valid order-log `order.created` body (document 000)."""
    return {
        "event": "order.created",
        "user_id": "u-42",
        "sent_at_utc": now_iso(),
        "properties": {
            "order_id": order_id or str(uuid.uuid4()),
            "created_at_utc": now_iso(),
            "location_code": "000-31921",
            "order_items": [{"ordered_upc": "123456789026",
                             "ordered_price_per_unit": "1990000000", "ordered_quantity": "2"}],
            **properties,
        },
    }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
