"""`POST /v2/ian/order/log`: document 000's answers, validated by `gateway.orders`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.orders.rules import TOO_OLD
from gateway.sandbox import Sandbox

from .bodies import order_created


async def test_a_valid_order_is_processed_and_recorded(
        client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    order = order_created("order-1")
    answer = await client.post("/v2/ian/order/log", json=order,
                               headers={"X-Retailer-Id": "banner-2"})
    assert answer.status_code == 200
    assert answer.json() == {"message": "Successfully processed"}  # doc 000: 200 Success
    items = (await client.get("/_sandbox/received?kind=order_log")).json()["items"]
    assert [item["body"] for item in items] == [order]
    assert items[0]["headers"]["x-retailer-id"] == "banner-2"
    assert "authorization" not in items[0]["headers"]


# doc 000, "4XX Errors": its three rows, verbatim.
@pytest.mark.parametrize(("change", "message", "key"), [
    ({"properties": None}, "can't be blank", "properties"),  # Missing event properties
    ({"event": "order.updated"}, "is not included in the list", "event"),  # Invalid event name
])
async def test_documented_errors(client: httpx.AsyncClient, change: dict[str, Any],
                                 message: str, key: str) -> None:
    answer = await client.post("/v2/ian/order/log", json={**order_created(), **change})
    assert answer.status_code == 400
    assert answer.json() == {"errors": [
        {"error": {"message": message, "error_code": 1001}, "meta": {"key": key}}]}


async def test_empty_order_items_is_documented_error(client: httpx.AsyncClient) -> None:
    # doc 000: "order.created with empty order items"
    answer = await client.post("/v2/ian/order/log", json=order_created(order_items=[]))
    assert answer.status_code == 400
    assert answer.json() == {"errors": [{"error": {"message": "can't be blank", "error_code": 1001},
                                         "meta": {"key": "properties.order_items"}}]}


async def test_the_three_day_rule_runs_on_the_sandbox_clock(
        client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    order = order_created()
    await client.post("/_sandbox/clock", json={"advance_s": 3 * 86400 + 60})
    answer = await client.post("/v2/ian/order/log", json=order)
    assert answer.status_code == 400
    assert answer.json()["errors"] == [{"error": {"message": TOO_OLD, "error_code": 1001},
                                        "meta": {"key": "properties.created_at_utc"}}]
    assert sandbox.store.stats["order_log"].rejected == 1


async def test_stats_count_duplicates_by_order(client: httpx.AsyncClient) -> None:
    first, second = order_created("o-1"), order_created("o-2")
    update = order_created("o-1", updated_at_utc=first["properties"]["created_at_utc"]
                           .replace("+00:00", "+01:00"))
    for order in (first, second, first, update):
        assert (await client.post("/v2/ian/order/log", json=order)).status_code == 200
    stats = (await client.get("/_sandbox/stats")).json()["order_log"]
    # the same order twice is a duplicate; an update of it is news (gateway.orders.rules.order_key)
    assert stats == {"accepted": 4, "rejected": 0, "distinct_ids": 3, "duplicates": 1}


async def test_a_malformed_body_is_9999(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v2/ian/order/log", content=b"order?")
    assert answer.status_code == 400
    assert answer.json() == {"errors": [{"error": {
        "message": "There were issues with your request", "error_code": 9999}}]}
