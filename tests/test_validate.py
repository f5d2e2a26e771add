"""Validation against the track document's 400 table, row by row.

Rows not applicable here, because the document does not give the allowed values:
"Invalid format type", "Invalid page type", "Invalid platform", "Invalid creative
type", "Invalid asset type" (no lists published), "Invalid placement type" and
"Improper placement for search" (no placement rules published), and the two brand
page rows (`brand_page_data` is not one of the six data objects; its
`session_token` UUID rule is applied wherever the field appears).
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.validate import validate_event
from tests.support.factories import ALL_PAIRS, enriched, event


def err(message: str, code: int = 1001, key: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": {"message": message, "error_code": code}}
    if key is not None:
        body["meta"] = {"key": key}
    return body


ISSUES = err("There were issues with your request", 9999)
SP = "data.sponsored_product_data."
SVI = "data.shoppable_video_item_data."


def sp(**fields: Any) -> dict[str, Any]:
    return enriched(event("ian.sponsored_product.clicked", "sponsored_product", **fields))


def video_item(name: str = "ian.display.click_creative_item", **fields: Any) -> dict[str, Any]:
    return enriched(event(name, "shoppable_video_item", **fields))


def without(evt: dict[str, Any], *path: str) -> dict[str, Any]:
    target = evt
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return evt


def with_data(data: Any) -> dict[str, Any]:
    evt = sp()
    evt["data"] = data
    return evt


# (document row, event, the errors the document says)
ROWS = [
    ("Missing event data", with_data({}), [ISSUES]),
    ("Missing event data (not an object)", with_data("x"), [ISSUES]),
    ("Extra event data",
     with_data({"sponsored_product_data": {}, "display_banner_data": {}}), [ISSUES]),
    ("No event params", without(sp(), "user_id"),
     [err("Couldn't find user_id in the request", 4001)]),
    ("Missing event context",
     without(video_item(), "data", "shoppable_video_item_data", "event_tracking_context"),
     [err("can't be blank", key=SVI + "event_tracking_context")]),
    ("Invalid ad id", sp(ad_id="abc"), [err("must be a UUID", key=SP + "ad_id")]),
    ("Invalid display position", sp(display_position="first"),
     [err("is not a number", key=SP + "display_position")]),
    ("Invalid organic position", sp(organic_position="x"),
     [err("Invalid organic position given.", key=SP + "organic_position")]),
    ("Invalid product id", sp(product_id="abc"),
     [err("is not a number", key=SP + "product_id")]),
    ("product_id can't be a decimal", sp(product_id="1.5"),
     [err("must be an integer", key=SP + "product_id")]),
    ("product_id is a number under 1", sp(product_id="0"),
     [err("must be greater than or equal to 1", key=SP + "product_id")]),
    ("Invalid search id", sp(search_id="nope"), [err("must be a UUID", key=SP + "search_id")]),
    ("Invalid event name",
     {**sp(), "event": "Clicked an ad"}, [err("Invalid event name Clicked an ad", key="data")]),
    ("Invalid block number", sp(block_number="b"),
     [err("is not a number", key=SP + "block_number")]),
    ("Invalid record version type", sp(record_version="v1"),
     [err("is not a number", key=SP + "record_version")]),
    ("Invalid page view ID", sp(page_view_id="pv-1"),
     [err("must be a UUID or 'None'", key=SP + "page_view_id")]),
    ("Invalid mgs correlation ID", sp(mgs_correlation_id="x"),
     [err("must be a UUID", key=SP + "mgs_correlation_id")]),
    ("User agent is too long", enriched(event(), user_agent="a" * 1001),
     [err("is too long (maximum is 1000 characters)",
          key=SP + "event_tracking_context.user_agent")]),
    ("Invalid UUID field (session_token)", sp(session_token="t"),
     [err("must be a UUID", key=SP + "session_token")]),
    ("Invalid UUID for interaction id", video_item(interaction_id="i"),
     [err("must be a UUID", key=SVI + "interaction_id")]),
    ("Invalid UUID for event id", video_item(event_id="e"),
     [err("must be a UUID", key=SVI + "event_id")]),
    ("Missing product id", video_item(product_id=...),
     [err("can't be blank", key=SVI + "product_id")]),
    # rules beyond the table: the document's field descriptions, and the gateway's own
    # (docs/contract.md, "Validation": each one and why it is kept)
    ("record_version other than 1 or 999", sp(record_version="2"),
     [err("is not included in the list", key=SP + "record_version")]),
    ("page must be greater than 0", sp(page="0"),
     [err("must be greater than 0", key=SP + "page")]),
    ("user_id over 50 characters", {**sp(), "user_id": "u" * 51},
     [err("is too long (maximum is 50 characters)", key="user_id")]),
    ("event_id is required", sp(event_id=...), [err("can't be blank", key=SP + "event_id")]),
    ("interaction_id required for a creative click",
     enriched(event("ian.display.click_creative", "shoppable_video", interaction_id=...)),
     [err("can't be blank", key="data.shoppable_video_data.interaction_id")]),
    ("interaction_id required for an item add",
     video_item("ian.display.add_creative_item", interaction_id=...),
     [err("can't be blank", key=SVI + "interaction_id")]),
    ("interaction_id a UUID wherever present, sponsored product included",
     sp(interaction_id="click-1"), [err("must be a UUID", key=SP + "interaction_id")]),
    ("asset_type required for an asset event",
     enriched(event("ian.display.viewport_viewable_creative_asset", "display_banner",
                    asset_type=...)),
     [err("can't be blank", key="data.display_banner_data.asset_type")]),
    ("event name of another ad type",
     enriched(event("ian.display.viewport_video_viewable", "shoppable_display", _any_pair=True)),
     [err("Invalid event name ian.display.viewport_video_viewable", key="data")]),
    ("sent_at without an offset", {**sp(), "sent_at": "2026-11-22T10:15:30"},
     [err("must be an ISO 8601 time with a time zone designator", key="sent_at")]),
]


@pytest.mark.parametrize(("row", "evt", "expected"), ROWS, ids=[r[0] for r in ROWS])
def test_document_error_rows(row: str, evt: dict[str, Any], expected: list[Any]) -> None:
    assert validate_event(evt) == expected


@pytest.mark.parametrize(("name", "ad_type"), ALL_PAIRS)
def test_one_valid_event_for_each_pair(name: str, ad_type: str) -> None:
    assert validate_event(enriched(event(name, ad_type))) == []


@pytest.mark.parametrize("name", ["ian.sponsored_product.clicked",
                                  "ian.sponsored_product.added_to_cart"])
def test_sponsored_product_click_and_add_need_no_interaction_id(name: str) -> None:
    # track doc: FeaturedProductEventProperties has no interaction_id field
    assert validate_event(enriched(event(name, interaction_id=...))) == []


@pytest.mark.parametrize("name", ["ian.display.viewport_1px_creative_item",
                                  "ian.display.viewport_viewable_creative_item"])
def test_item_impressions_need_no_interaction_id(name: str) -> None:
    assert validate_event(video_item(name, interaction_id=...)) == []


def test_errors_accumulate() -> None:
    evt = sp(display_position="x", block_number="y")
    evt["user_id"] = "u" * 51
    assert len(validate_event(evt)) == 3


def test_numbers_may_be_json_numbers_and_page_view_id_may_be_none() -> None:
    evt = sp(display_position=3, product_id=12, page=2, record_version=999, page_view_id="None")
    assert validate_event(evt) == []


def test_unknown_fields_pass() -> None:
    evt = sp(some_future_field={"x": 1})
    evt["data"]["brand_page_data"] = {"anything": True}
    evt["extra"] = [1, 2]
    assert validate_event(evt) == []


@pytest.mark.parametrize("value", [None, 42, [], "", "null"])
def test_anything_that_is_not_an_event_is_an_answer_not_an_exception(value: Any) -> None:
    assert validate_event(value) == [ISSUES]
