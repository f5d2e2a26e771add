"""The event catalog of `POST /v2/ian/track`, built once from the track document.

Event names per ad type, the field rules of each `*_data` object and the events
that require a field are data here; `validate.py` only walks them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from gateway.errors import NOT_IN_LIST

# A field check answers the track document's error message, or None when the value is fine.
Check = Callable[[Any], "str | None"]

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")

USER_AGENT_MAX = 1000  # track doc: "is too long (maximum is 1000 characters)"
USER_ID_MAX = 50  # track doc: user_id "Maximum 50 characters."
RECORD_VERSIONS = frozenset({1, 999})  # track doc: 1 for production, 999 for testing


def is_uuid(value: Any) -> bool:
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def as_number(value: Any) -> float | None:
    """A JSON number or a numeric string as a float; None when it is neither."""
    if isinstance(value, str):
        return _number_text(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


@functools.lru_cache(maxsize=4096)  # positions, pages and versions repeat in every beacon
def _number_text(value: str) -> float | None:
    return float(value) if _NUMBER.fullmatch(value) else None


def is_blank(value: Any) -> bool:
    return value is None or value == ""


def check_uuid(value: Any) -> str | None:
    return None if is_uuid(value) else "must be a UUID"


def check_uuid_or_none(value: Any) -> str | None:
    # track doc: "Invalid page view ID" -> "must be a UUID or 'None'"
    return None if value == "None" or is_uuid(value) else "must be a UUID or 'None'"


def check_number(value: Any) -> str | None:
    return None if as_number(value) is not None else "is not a number"


def check_organic_position(value: Any) -> str | None:
    return None if as_number(value) is not None else "Invalid organic position given."


def check_product_id(value: Any) -> str | None:
    # track doc rows: "is not a number", "must be an integer", "must be greater than or equal to 1"
    number = as_number(value)
    if number is None:
        return "is not a number"
    if not number.is_integer():
        return "must be an integer"
    return None if number >= 1 else "must be greater than or equal to 1"


def check_page(value: Any) -> str | None:
    # track doc: page "The value must be greater than 0."
    number = as_number(value)
    if number is None:
        return "is not a number"
    return None if number > 0 else "must be greater than 0"


def check_record_version(value: Any) -> str | None:
    # track doc: "Set to 1 for production events. Set to 999 for testing events.
    # Any other value returns an error code."
    number = as_number(value)
    if number is None:
        return "is not a number"
    return None if number in RECORD_VERSIONS else NOT_IN_LIST


def check_string(value: Any) -> str | None:
    return None if isinstance(value, str) else "must be a string"


# Fields every ad type's data object may carry. The UUID fields of the track
# document's error table are checked wherever they appear.
COMMON_FIELDS: Mapping[str, Check] = {
    "event_id": check_uuid,
    "interaction_id": check_uuid,
    "page_view_id": check_uuid_or_none,
    "record_version": check_record_version,
    "ad_id": check_uuid,
    "search_id": check_uuid,
    "mgs_correlation_id": check_uuid,
    "session_token": check_uuid,
    "object_tracking_id": check_string,
}

SPONSORED_PRODUCT_FIELDS: Mapping[str, Check] = {
    **COMMON_FIELDS,
    "display_position": check_number,
    "organic_position": check_organic_position,
    "product_id": check_product_id,
    "page": check_page,
    "block_number": check_number,
}

SPONSORED_PRODUCT_EVENTS = (
    "ian.sponsored_product.viewable_in_viewport",
    "ian.sponsored_product.begin_to_render_viewport",
    "ian.sponsored_product.1px_in_viewport",
    "ian.sponsored_product.clicked",
    "ian.sponsored_product.added_to_cart",
)
DISPLAY_EVENTS = (
    "ian.display.viewport_load_creative",
    "ian.display.viewport_1px_creative",
    "ian.display.viewport_viewable_creative",
    "ian.display.viewport_viewable_creative_asset",
    "ian.display.click_creative",
    "ian.display.viewport_viewable_begin_to_render_creative",
    "ian.display.viewport_viewable_begin_to_render_creative_asset",
)
VIDEO_EVENTS = (
    "ian.display.viewport_load_creative",
    "ian.display.viewport_1px_creative",
    "ian.display.viewport_viewable_creative",
    "ian.display.click_creative",
    "ian.display.viewport_viewable_begin_to_render_creative_asset",
    "ian.display.viewport_video_begin_to_render",
    "ian.display.viewport_1px_video",
    "ian.display.viewport_video_viewable",
)
ITEM_EVENTS = (
    "ian.display.add_creative_item",
    "ian.display.click_creative_item",
    "ian.display.viewport_1px_creative_item",
    "ian.display.viewport_viewable_creative_item",
)

# track doc, the interaction_id row of each object that has one: "This field is required
# for the following events: ['ian.display.click_creative']" (display banner, shoppable
# display, shoppable video) and "['ian.display.add_creative_item',
# 'ian.display.click_creative_item']" (both item objects). The sponsored-product object
# (FeaturedProductEventProperties) has no interaction_id field at all.
CREATIVE_INTERACTIONS = frozenset({"ian.display.click_creative"})
ITEM_INTERACTIONS = frozenset({"ian.display.add_creative_item", "ian.display.click_creative_item"})


@dataclass(frozen=True)
class AdType:
    """One `*_data` object of the track request: its events and its field rules."""

    name: str
    events: tuple[str, ...]
    fields: Mapping[str, Check]
    interactions: frozenset[str] = frozenset()  # events that require interaction_id
    item: bool = False

    @property
    def data_key(self) -> str:
        return f"{self.name}_data"

    def required(self, event: str) -> tuple[str, ...]:
        """The fields `event` cannot do without, beyond the context every event carries."""
        fields = ["event_id"]  # the gateway's own rule, for dedupe (docs/contract.md, "Validation")
        if event in self.interactions:
            fields.append("interaction_id")
        if self.item:
            fields.append("product_id")  # track doc: "Missing product id" -> "can't be blank"
        if event.endswith("_creative_asset"):
            fields.append("asset_type")  # track doc: required for events at the asset level
        return tuple(fields)


AD_TYPES: tuple[AdType, ...] = (
    AdType("sponsored_product", SPONSORED_PRODUCT_EVENTS, SPONSORED_PRODUCT_FIELDS),
    AdType("display_banner", DISPLAY_EVENTS, COMMON_FIELDS, CREATIVE_INTERACTIONS),
    AdType("shoppable_display", DISPLAY_EVENTS, COMMON_FIELDS, CREATIVE_INTERACTIONS),
    AdType("shoppable_video", VIDEO_EVENTS, COMMON_FIELDS, CREATIVE_INTERACTIONS),
    AdType("shoppable_display_item", ITEM_EVENTS, COMMON_FIELDS, ITEM_INTERACTIONS, item=True),
    AdType("shoppable_video_item", ITEM_EVENTS, COMMON_FIELDS, ITEM_INTERACTIONS, item=True),
)
BY_DATA_KEY: Mapping[str, AdType] = {ad.data_key: ad for ad in AD_TYPES}
EVENT_NAMES: frozenset[str] = frozenset(name for ad in AD_TYPES for name in ad.events)
# The 35 valid (event, ad type) pairs of the track document's event table.
PAIRS: frozenset[tuple[str, str]] = frozenset(
    (name, ad.name) for ad in AD_TYPES for name in ad.events
)
# The required-field checks, precomputed per pair so the hot path only looks them up.
REQUIRED: Mapping[tuple[str, str], tuple[str, ...]] = {
    (name, ad.name): ad.required(name) for ad in AD_TYPES for name in ad.events
}


class Found(NamedTuple):
    """An event's one `*_data` object and its ad type, as `ad_data` finds it."""

    ad: AdType
    data: dict[str, Any]


def ad_data(event: Any) -> Found | None:
    """The one known `*_data` object of an event, or None when there is not exactly one."""
    data = event.get("data") if isinstance(event, dict) else None
    if not isinstance(data, dict):
        return None
    found = [Found(BY_DATA_KEY[key], value) for key, value in data.items() if key in BY_DATA_KEY]
    if len(found) != 1 or not isinstance(found[0].data, dict):
        return None
    return found[0]


assert len(PAIRS) == 35, "track doc: 35 valid event/ad-type pairs"
