"""Valid events for every (event, ad type) pair of the track document, for tests."""

from __future__ import annotations

import uuid
from typing import Any

from gateway.catalog import AD_TYPES, PAIRS, AdType

BY_NAME = {ad.name: ad for ad in AD_TYPES}


def fields_for(ad: AdType, name: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "object_tracking_id": "tracking-1",
        "record_version": "1",
        "page_view_id": str(uuid.uuid4()),
    }
    if "interaction_id" in ad.required(name):
        fields["interaction_id"] = str(uuid.uuid4())
    if ad.name == "sponsored_product":
        fields.update(display_position="3", organic_position="4", format_type="item_card",
                      product_id="1234", page="1", block_number="2")
    if ad.item:
        fields["product_id"] = "987"
    if ad.name != "sponsored_product":
        fields["creative_type"] = "image"
    if name.endswith("_creative_asset"):
        fields["asset_type"] = "image"
    return fields


def event(name: str = "ian.sponsored_product.clicked", ad_type: str = "sponsored_product",
          **overrides: Any) -> dict[str, Any]:
    """A valid browser event; `overrides` replace fields of its `*_data` object."""
    assert (name, ad_type) in PAIRS or overrides.pop("_any_pair", False), (name, ad_type)
    ad = BY_NAME[ad_type]
    fields = fields_for(ad, name)
    fields.update(overrides)
    fields = {k: v for k, v in fields.items() if v is not ...}
    return {
        "event": name,
        "user_id": "u-42",
        "sent_at": "2026-11-22T10:15:30+08:00",
        "data": {ad.data_key: fields},
    }


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
