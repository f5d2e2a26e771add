"""`POST /v2/ian/track`: the track document's answers, and what the sandbox records."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from gateway.sandbox import Sandbox

from .bodies import track_event

SUCCESS = {"message": "Successfully processed"}  # track doc, "200 Success"
ISSUES = {"error": {"message": "There were issues with your request", "error_code": 9999}}


def error(message: str, key: str) -> dict[str, Any]:
    return {"error": {"message": message, "error_code": 1001}, "meta": {"key": key}}


async def test_a_valid_event_is_processed_and_recorded(
        client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    event = track_event()
    answer = await client.post("/v2/ian/track", json=event, headers={
        "User-Agent": "Mozilla/5.0 shopper", "X-Retailer-Id": "shop-banner"})
    assert answer.status_code == 200
    assert answer.json() == SUCCESS
    received = (await client.get("/_sandbox/received?kind=track")).json()
    assert received["count"] == 1
    record = received["items"][0]
    assert record["body"] == event
    assert record["headers"]["user-agent"] == "Mozilla/5.0 shopper"
    assert record["headers"]["x-retailer-id"] == "shop-banner"
    assert "authorization" not in record["headers"]  # the token is never recorded


async def test_records_keep_arrival_order(client: httpx.AsyncClient) -> None:
    events = [track_event() for _ in range(5)]
    for event in events:
        assert (await client.post("/v2/ian/track", json=event)).status_code == 200
    items = (await client.get("/_sandbox/received", params={"kind": "track"})).json()["items"]
    assert [item["body"] for item in items] == events


# Rows of the track document's error table that the gateway's validator implements.
ROWS = [
    # "Missing event data*"
    ({"data": {}}, [ISSUES]),
    # "No event params"
    ({"user_id": None},
     [{"error": {"message": "Couldn't find user_id in the request", "error_code": 4001}}]),
    # "Invalid event name"
    ({"event": "Clicked an ad"}, [error("Invalid event name Clicked an ad", "data")]),
    # "Invalid ad id"
    ({"ad_id": "nope"}, [error("must be a UUID", "data.sponsored_product_data.ad_id")]),
    # "Invalid display position"
    ({"display_position": "third"},
     [error("is not a number", "data.sponsored_product_data.display_position")]),
    # "Invalid organic position"
    ({"organic_position": "x"},
     [error("Invalid organic position given.", "data.sponsored_product_data.organic_position")]),
    # "Invalid product id"
    ({"product_id": "abc"}, [error("is not a number", "data.sponsored_product_data.product_id")]),
    # "Invalid search id" / "Invalid mgs correlation ID"
    ({"search_id": "s-1"}, [error("must be a UUID", "data.sponsored_product_data.search_id")]),
    ({"mgs_correlation_id": "m-1"},
     [error("must be a UUID", "data.sponsored_product_data.mgs_correlation_id")]),
    # "Invalid record version type"
    ({"record_version": "v1"},
     [error("is not a number", "data.sponsored_product_data.record_version")]),
    # "product_id can't be a decimal" / "is a number under 1"
    ({"product_id": "1.5"},
     [error("must be an integer", "data.sponsored_product_data.product_id")]),
    ({"product_id": "0"}, [error("must be greater than or equal to 1",
                                 "data.sponsored_product_data.product_id")]),
    # "Invalid page view ID"
    ({"page_view_id": "pv-1"},
     [error("must be a UUID or 'None'", "data.sponsored_product_data.page_view_id")]),
    # "Invalid block number"
    ({"block_number": "b"}, [error("is not a number", "data.sponsored_product_data.block_number")]),
    # "User agent is too long"
    ({"event_tracking_context": {"user_agent": "x" * 1001, "user_ip": "203.0.113.7"}},
     [error("is too long (maximum is 1000 characters)",
            "data.sponsored_product_data.event_tracking_context.user_agent")]),
]


def broken(change: dict[str, Any]) -> dict[str, Any]:
    event = track_event()
    data = event["data"]["sponsored_product_data"]
    for key, value in change.items():
        if key in ("data", "user_id", "event"):
            event[key] = value
        else:
            data[key] = value
    return event


@pytest.mark.parametrize(("change", "errors"), ROWS)
async def test_documented_errors(client: httpx.AsyncClient, sandbox: Sandbox,
                                 change: dict[str, Any], errors: list[Any]) -> None:
    answer = await client.post("/v2/ian/track", json=broken(change))
    assert answer.status_code == 400
    assert answer.json() == {"errors": errors}
    assert sandbox.store.stats["track"].rejected == 1
    assert sandbox.store.records == []


def video_item(**fields: Any) -> dict[str, Any]:
    data = {"event_id": str(uuid.uuid4()), "interaction_id": str(uuid.uuid4()),
            "event_tracking_context": {"user_agent": "UA", "user_ip": "203.0.113.7"},
            "product_id": "7", **fields}
    return {"event": "ian.display.click_creative_item", "user_id": "u-1",
            "data": {"shoppable_video_item_data": {k: v for k, v in data.items() if v}}}


@pytest.mark.parametrize(("fields", "message", "key"), [
    # "Invalid UUID for interaction id"
    ({"interaction_id": "i-1"}, "must be a UUID", "interaction_id"),
    # "Invalid UUID for event id"
    ({"event_id": "e-1"}, "must be a UUID", "event_id"),
    # "Missing product id"
    ({"product_id": None}, "can't be blank", "product_id"),
])
async def test_documented_item_errors(client: httpx.AsyncClient, fields: dict[str, Any],
                                      message: str, key: str) -> None:
    answer = await client.post("/v2/ian/track", json=video_item(**fields))
    assert answer.status_code == 400
    assert answer.json() == {"errors": [error(message, f"data.shoppable_video_item_data.{key}")]}


async def test_a_valid_item_event_is_processed(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v2/ian/track", json=video_item())).json() == SUCCESS


async def test_missing_event_context_on_an_item_event(client: httpx.AsyncClient) -> None:
    # track doc: "Missing event context" with key data.shoppable_video_item_data...
    event = {"event": "ian.display.viewport_1px_creative_item", "user_id": "u-1",
             "data": {"shoppable_video_item_data": {
                 "event_id": str(uuid.uuid4()), "product_id": "7"}}}
    answer = await client.post("/v2/ian/track", json=event)
    assert answer.status_code == 400
    assert error("can't be blank", "data.shoppable_video_item_data.event_tracking_context") \
        in answer.json()["errors"]


async def test_extra_event_data_is_9999(client: httpx.AsyncClient) -> None:
    event = track_event()
    event["data"]["display_banner_data"] = event["data"]["sponsored_product_data"]
    answer = await client.post("/v2/ian/track", json=event)
    assert answer.json() == {"errors": [ISSUES]}  # track doc: "Extra event data*"


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b"[]", b"42"])
async def test_a_malformed_body_is_9999_never_500(client: httpx.AsyncClient, body: bytes) -> None:
    answer = await client.post("/v2/ian/track", content=body)
    assert answer.status_code == 400
    assert answer.json() == {"errors": [ISSUES]}


async def test_stats_count_duplicates_by_event_id(
        client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    first, second = track_event(), track_event()
    for event in (first, second, first, first):
        await client.post("/v2/ian/track", json=event)
    await client.post("/v2/ian/track", json=broken({"ad_id": "nope"}))
    stats = (await client.get("/_sandbox/stats")).json()
    assert stats["track"] == {"accepted": 4, "rejected": 1, "distinct_ids": 2, "duplicates": 2}
    event_id = first["data"]["sponsored_product_data"]["event_id"]
    assert stats["duplicate_ids"] == {"track": [event_id, event_id]}


async def test_unknown_fields_pass_through_to_the_record(client: httpx.AsyncClient) -> None:
    event = track_event(future_field={"nested": [1, 2]})
    assert (await client.post("/v2/ian/track", json=event)).status_code == 200
    items = (await client.get("/_sandbox/received?kind=track")).json()["items"]
    assert items[0]["body"]["data"]["sponsored_product_data"]["future_field"] == {"nested": [1, 2]}
