"""Valid events for every (event, ad type) pair of the track document, for tests.

They are the traffic model's events (`loadtests/traffic.py`) with fixed placements,
so a test can name the fields it changes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.catalog import PAIRS
from loadtests.traffic import BY_NAME, ad_event, ad_fields

__all__ = ["ALL_PAIRS", "BY_NAME", "enriched", "event", "event_id", "order"]


def event(name: str = "ian.sponsored_product.clicked", ad_type: str = "sponsored_product",
          **overrides: Any) -> dict[str, Any]:
    """A valid browser event; `overrides` replace fields of its `*_data` object."""
    assert (name, ad_type) in PAIRS or overrides.pop("_any_pair", False), (name, ad_type)
    product_id = "1234" if ad_type == "sponsored_product" else "987"
    ad = ad_fields(ad_type, "tracking-1", product_id, position=3, organic_position=4,
                   block_number=2)
    evt = ad_event(name, ad_type, ad, user_id="u-42", sent_at="2026-11-22T10:15:30+08:00",
                   page_view_id=str(uuid.uuid4()), record_version="1")
    (data,) = evt["data"].values()
    data.update(overrides)
    for key in [k for k, v in data.items() if v is ...]:
        del data[key]
    return evt


def enriched(evt: dict[str, Any], user_agent: str = "Mozilla/5.0", ip: str = "203.0.113.9"
             ) -> dict[str, Any]:
    """What the gateway makes of `evt`: the tracking context set on its data object."""
    (data,) = evt["data"].values()
    data["event_tracking_context"] = {"user_agent": user_agent, "user_ip": ip}
    return evt


def event_id(evt: dict[str, Any]) -> str:
    (data,) = evt["data"].values()
    return str(data["event_id"])


ALL_PAIRS = sorted(PAIRS)


def order(order_id: str = "o-1", **properties: Any) -> dict[str, Any]:
    """A valid order.created request, made an hour ago; `properties` replace its fields."""
    now = datetime.now(UTC)
    order: dict[str, Any] = {
        "event": "order.created",
        "properties": {
            "order_id": order_id,
            "created_at_utc": (now - timedelta(hours=1)).isoformat(),
            "location_code": "store-42",
            "order_items": [{"ordered_upc": "012345678905",
                             "ordered_price_per_unit": "2990000000", "ordered_quantity": "1"}],
        },
        "user_id": "u-42",
        "sent_at_utc": now.isoformat(),
    }
    order["properties"].update(properties)
    return order
