"""Delivery orders: document 002's error rows, document 003's answers, document 004's
lifecycle checked against its JSON Schema on the sandbox clock."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest

from gateway.sandbox import Sandbox

SCHEMA = json.loads((Path(__file__).parent / "instacart-order-schema.json").read_text())
CREATE = "/v2/fulfillment/users/{user}/orders/delivery"
GET = "/v2/fulfillment/users/{user}/orders/{order}"
LIFECYCLE = ["brand_new", "acknowledged", "picking", "staging", "delivering", "delivered"]


def order(**changes: Any) -> dict[str, Any]:
    """A valid create-order body for the seed (doc 002's request example, filled in)."""
    body: dict[str, Any] = {
        "order_id": "order-1",
        "service_option_hold_id": 101,
        "initial_tip_cents": 500,
        "location_code": "000-31921",
        "locale": "en-US",
        "special_instructions": "Ring twice",
        "address": {"address_line_1": "123 Main St", "postal_code": "94105",
                    "city": "San Francisco"},
        "items": [
            {"line_num": "1", "count": 2, "item": {"upc": "123456789026"}},
            {"line_num": "2", "weight": 1.5, "item": {"rrc": "0100-00001"}},
        ],
    }
    body.update(changes)
    return body


def with_item(index: int, **changes: Any) -> dict[str, Any]:
    body = order()
    body["items"] = copy.deepcopy(body["items"])
    body["items"][index].update(changes)
    return body


def err(message: str, code: int | None = 1001, **meta: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"error": {"message": message, "error_code": code}}
    if meta:
        error["meta"] = meta
    return error


async def create(client: httpx.AsyncClient, body: Any, user: str = "user-1") -> httpx.Response:
    return await client.post(CREATE.format(user=user), json=body)


async def test_create_answers_like_the_document(client: httpx.AsyncClient) -> None:
    answer = await create(client, order())
    assert answer.status_code == 200
    body = answer.json()
    assert body["id"] == "order-1"
    assert body["status"] == "brand_new"
    assert body["locale"] == "en_US"
    assert body["fulfillment_details"]["store_location"] == "000-31921"
    assert body["fulfillment_details"]["window_starts_at"].endswith("Z")
    count, weight = body["items"]
    assert (count["line_num"], count["qty"], count["qty_unit"]) == ("1", 2, "each")
    assert (weight["qty"], weight["qty_unit"]) == (1.5, "lb")
    assert count["item"]["requested_upc"] == "123456789026"
    assert count["replacement_policy"] == "shoppers_choice"  # doc 002's default


# doc 002, "4XX Errors": each row the sandbox implements, its message, code and meta verbatim.
ROWS: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    ("Invalid user id", order(), "nobody", err("User Not Found", key="user_id")),
    ("User with invalid phone number", order(user={"phone_number": "call me"}), "user-1",
     err("Required parameter missing or invalid", key="user_phone")),
    ("User and order without phone number", order(), "user-no-phone",
     err("can't be blank", key="user.phone_number")),
    ("Invalid Quantity, expected count",
     with_item(0, count=None, weight=2.0, item={"upc": "0001234567892"}), "user-1",
     err("One of these items had an invalid quantity amount, 0001234567892 expected count",
         2012, item_code="0001234567892", expected_param="count",
         error_name="WrongQuantityParameterError")),
    ("Invalid Quantity, expected weight", with_item(1, weight=None, count=3), "user-1",
     err("One of these items had an invalid quantity amount, 0100-00001 expected weight",
         2012, upc="0100-00001", item_code="0100-00001", expected_param="weight")),
    ("Expired ETA option hold", order(service_option_hold_id=199), "user-1",
     err("ETA option hold has expired.", key="service_option_hold_id")),
    ("Invalid replacement_policy", with_item(0, replacement_policy="any"), "user-1",
     err("is not included in the list", key="items[0].replacement_policy")),
    ("Invalid quantity (negative count)", with_item(0, count=-1), "user-1",
     err("must be greater than or equal to 0", key="items[0].count")),
    ("Invalid quantity (negative weight)", with_item(1, weight=-0.5), "user-1",
     err("must be greater than or equal to 0", key="items[1].weight")),
    ("Invalid postal code", order(address={"address_line_1": "1 A St", "postal_code": "00000"}),
     "user-1", err("not found", key="postal_code")),
    ("Unsupported postal code",
     order(address={"address_line_1": "1 A St", "postal_code": "99501"}), "user-1",
     err("not supported", key="postal_code")),
    ("Invalid service option hold", order(service_option_hold_id=4242), "user-1",
     err("Hold not found", key="service_option_hold_id")),
    ("Tip over maximum", order(initial_tip_cents=30001), "user-1",
     err("Tip value is above maximum: $300.00.", key="initial_tip_cents")),
    ("Invalid location code", order(location_code="000-00000"), "user-1",
     err("Could not find specified store.", key="location_code")),
    ("Invalid address", order(address={"postal_code": "94105"}), "user-1",
     err("invalid_address", key="address")),
    ("Invalid items",
     order(items=[{"line_num": "1", "count": 1, "item": {"upc": "111111111111"}},
                  {"line_num": "2", "count": 1, "item": {"upc": "222222222222"}}]), "user-1",
     err("2 items not found.", 2000, upcs=["111111111111", "222222222222"],
         items=[{"item_upc": "111111111111"}, {"item_upc": "222222222222"}])),
    ("Duplicate items were provided",
     order(items=[{"line_num": "0", "count": 1, "item": {"upc": "123456789026"}},
                  {"line_num": "1", "count": 1, "item": {"upc": "123456789026"}}]), "user-1",
     err("Duplicate items provided for this order.", 2007, duplicate_items=[
         {"item_upc": "123456789026", "item_rrc": None, "line_num": "0"},
         {"item_upc": "123456789026", "item_rrc": None, "line_num": "1"}])),
    ("Duplicate line nums", with_item(1, line_num="1"), "user-1",
     err("Duplicate line_num values not allowed: 1", 2006, duplicate_line_nums=["1"])),
    ("Too many items", with_item(0, count=115), "user-1",
     err("The number of items in your cart exceeds our maximum limit for a single delivery. "
         "Please remove 15 items from your cart to continue.", 2024)),
    ("Too much weight", with_item(1, weight=120), "user-1",
     err("The total weight of items in your cart exceeds our maximum limit for a single "
         "delivery. Please remove 20 lb from your cart to continue.", 2027)),
    ("User birthday missing or invalid for alcohol order",
     with_item(0, item={"upc": "928473737373"}), "user-1",
     err("Required parameter missing or invalid", key="user_birthday",
         items=[{"item_upc": "928473737373"}])),
    ("Invalid zip code for alcohol",
     {**with_item(0, item={"upc": "928473737373"}), "user": {"birthday": "1980-01-01"},
      "address": {"address_line_1": "1 A St", "postal_code": "60614"}}, "user-1",
     err("Cannot deliver alcohol to this zip code.", items=[{"item_upc": "928473737373"}],
         key="zip_code")),
    ("Age requirement otc medicine",
     {**with_item(0, item={"upc": "300450449108"}), "user": {"birthday": "2015-01-01"}},
     "user-1", err("You must be over 18 to purchase over the counter medicine in your cart.",
                   items=[{"item_upc": "300450449108"}])),
    ("Some items are not deliverable", with_item(0, item={"upc": "071121962003"}), "user-1",
     err("Some items are not deliverable", 2005, items=[{"item_upc": "071121962003"}])),
    ("Fails alcohol compliance check",
     {**with_item(0, item={"upc": "928473737373"}), "user": {"birthday": "2015-01-01"}},
     "user-1", err("Alcoholic items can not be added to this order. Please remove and retry.",
                   2001)),
]


@pytest.mark.parametrize(("cause", "body", "user", "expected"), ROWS, ids=[r[0] for r in ROWS])
async def test_documented_create_errors(client: httpx.AsyncClient, sandbox: Sandbox, cause: str,
                                        body: dict[str, Any], user: str,
                                        expected: dict[str, Any]) -> None:
    answer = await create(client, body, user)
    assert answer.status_code == 400, cause
    assert answer.json() == {"errors": [expected]}
    assert sandbox.orders.orders == {}
    assert sandbox.store.stats["delivery"].rejected == 1


async def test_field_rows_are_answered_together(client: httpx.AsyncClient) -> None:
    body = order(initial_tip_cents=99999, location_code="nowhere", service_option_hold_id=199)
    keys = [e["meta"]["key"] for e in (await create(client, body)).json()["errors"]]
    assert keys == ["initial_tip_cents", "location_code", "service_option_hold_id"]


@pytest.mark.parametrize("body", [
    [], "order", order(order_id=""), order(order_id=None), order(service_option_hold_id="101"),
    order(initial_tip_cents=5.5), order(items=[]), order(items=[{"line_num": "1"}]),
    order(address="123 Main St"), with_item(0, count="2"), with_item(0, count=True),
])
async def test_invalid_order_params_are_9999(client: httpx.AsyncClient, body: Any) -> None:
    # doc 002: "Invalid order params*" -> "There were issues with your request" 9999
    answer = await create(client, body)
    assert answer.status_code == 400
    assert answer.json() == {"errors": [err("There were issues with your request", 9999)]}


async def test_order_id_already_in_use(client: httpx.AsyncClient) -> None:
    assert (await create(client, order())).status_code == 200
    again = await create(client, order(), "user-2")
    assert again.status_code == 400
    assert again.json() == {"errors": [err("Order already in use.", 1003)]}  # doc 002


async def test_inactive_user_is_403(client: httpx.AsyncClient) -> None:
    for answer in (await create(client, order(), "user-inactive"),
                   await client.get(GET.format(user="user-inactive", order="order-1"))):
        assert answer.status_code == 403
        # doc 002/003: "Inactive user" -> "User Not Active", error code null
        assert answer.json() == {"error": {"message": "User Not Active", "error_code": None}}


async def test_a_user_without_phone_can_order_with_one(client: httpx.AsyncClient) -> None:
    answer = await create(client, order(user={"phone_number": "+1 415 555 0100"}),
                          "user-no-phone")
    assert answer.status_code == 200


async def test_get_order(client: httpx.AsyncClient) -> None:
    await create(client, order())
    answer = await client.get(GET.format(user="user-1", order="order-1"))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["id"], body["status"]) == ("order-1", "brand_new")
    assert body["pos_payment_method"] == "UNSPECIFIED"  # doc 003's examples


@pytest.mark.parametrize(("user", "order_id", "status", "expected"), [
    ("nobody", "order-1", 400, {"errors": [err("User Not Found", key="user_id")]}),
    ("user-1", "missing", 404, err("Resource not found", 4000)),
    ("user-2", "order-1", 404, err("Resource not found", 4000)),  # someone else's order
])
async def test_documented_get_errors(client: httpx.AsyncClient, user: str, order_id: str,
                                     status: int, expected: dict[str, Any]) -> None:
    await create(client, order())
    answer = await client.get(GET.format(user=user, order=order_id))
    assert answer.status_code == status
    assert answer.json() == expected


async def test_lifecycle_on_the_sandbox_clock_matches_the_schema(
        client: httpx.AsyncClient) -> None:
    body = order(items=[*order()["items"],
                        {"line_num": "3", "count": 1, "item": {"upc": "123456789083"}}])
    assert (await create(client, body)).status_code == 200
    seen: list[str] = []
    for _ in range(12):
        view = (await client.get("/_sandbox/orders/order-1")).json()
        jsonschema.validate(view, SCHEMA, format_checker=jsonschema.FormatChecker())
        if not seen or seen[-1] != view["status"]:
            seen.append(view["status"])
        await client.post("/_sandbox/clock", json={"advance_s": 300})
    assert seen == LIFECYCLE  # doc 004: brand_new ... delivered, in order
    assert view["items"][2]["status"] == "replaced"
    assert "shopper" in view


async def test_delivered_order_reports_what_was_delivered(client: httpx.AsyncClient) -> None:
    body = order(items=[
        {"line_num": "1", "count": 1, "item": {"upc": "123456789083"},
         "replacement_items": [{"upc": "987665788999"}]},
        {"line_num": "2", "count": 1, "item": {"upc": "123456789083"},
         "replacement_policy": "no_replacements"},
    ])
    body["items"][1]["item"] = {"rrc": "0382-85741"}  # the same product, by its RRC
    twice = (await create(client, body)).json()["errors"][0]
    assert twice["error"]["error_code"] == 2007  # doc 002: duplicate items
    assert twice["meta"]["duplicate_items"][1] == {
        "item_upc": None, "item_rrc": "0382-85741", "line_num": "2"}
    body["items"][1] = {"line_num": "2", "count": 2, "item": {"upc": "123456789026"}}
    assert (await create(client, body)).status_code == 200
    await client.post("/_sandbox/clock", json={"advance_s": 3600})
    delivered = (await client.get(GET.format(user="user-1", order="order-1"))).json()
    assert delivered["status"] == "delivered"
    assert "delivered_at" in delivered["fulfillment_details"]
    assert delivered["fulfillment_details"]["bag_count"] >= 1
    replaced = delivered["items"][0]
    assert replaced["replaced"] is True
    assert replaced["replacement_policy"] == "users_choice"  # default with replacement_items
    assert replaced["item"]["requested_upc"] == "123456789083"
    assert replaced["item"]["delivered_upc"] == replaced["item"]["upc"] == "987665788999"
    assert delivered["items"][1]["qty_fulfilled"] == 2


async def test_accepted_orders_are_recorded(client: httpx.AsyncClient) -> None:
    await create(client, order())
    received = (await client.get("/_sandbox/received?kind=delivery")).json()
    assert received["items"][0]["body"]["order_id"] == "order-1"


async def test_no_replacements_leaves_an_item_out(client: httpx.AsyncClient) -> None:
    body = order(items=[{"line_num": "1", "count": 1, "item": {"upc": "123456789083"},
                         "replacement_policy": "no_replacements"}])
    assert (await create(client, body)).status_code == 200
    await client.post("/_sandbox/clock", json={"advance_s": 3600})
    item = (await client.get(GET.format(user="user-1", order="order-1"))).json()["items"][0]
    assert (item["replaced"], item["qty_fulfilled"]) == (False, 0)
    assert item["item"]["delivered_upc"] == ""
    view = (await client.get("/_sandbox/orders/order-1")).json()
    jsonschema.validate(view, SCHEMA)
    assert view["items"][0]["status"] == "not_found"


async def test_an_order_can_be_canceled_before_delivery(client: httpx.AsyncClient) -> None:
    await create(client, order())
    await client.post("/_sandbox/clock", json={"advance_s": 600})
    canceled = await client.post("/_sandbox/orders/order-1/cancel",
                                 json={"reason": "shopper_driven"})
    assert canceled.status_code == 200
    jsonschema.validate(canceled.json(), SCHEMA)
    assert canceled.json()["status"] == "canceled"
    answer = (await client.get(GET.format(user="user-1", order="order-1"))).json()
    # doc 002: cancellation_reason "Only present in canceled orders"
    assert (answer["status"], answer["cancellation_reason"]) == ("canceled", "shopper_driven")
    await client.post("/_sandbox/clock", json={"advance_s": 3600})
    assert (await client.get("/_sandbox/orders")).json()[0]["status"] == "canceled"


async def test_cancel_rejects_unknown_reasons_and_delivered_orders(
        client: httpx.AsyncClient) -> None:
    await create(client, order())
    wrong = await client.post("/_sandbox/orders/order-1/cancel", json={"reason": "bored"})
    assert wrong.json()["errors"][0]["meta"] == {"key": "reason"}
    await client.post("/_sandbox/clock", json={"advance_s": 3600})
    late = await client.post("/_sandbox/orders/order-1/cancel")
    assert late.status_code == 400
    missing = await client.post("/_sandbox/orders/nope/cancel")
    assert missing.status_code == 404


async def test_an_adult_can_order_alcohol_and_medicine(client: httpx.AsyncClient) -> None:
    body = order(user={"birthday": "1980-06-01"}, items=[
        {"line_num": "1", "count": 1, "item": {"upc": "928473737373"}},
        {"line_num": "2", "count": 1, "item": {"rrc": "0900-00002"}}])
    assert (await create(client, body)).status_code == 200


def no_longer_available() -> dict[str, Any]:
    # doc 002: "Service option is no longer available"
    return {"errors": [err("The delivery time you selected is no longer available - please "
                           "select another time", key="service_option_id")]}


async def test_a_fixed_window_hold_is_gone_once_its_window_begins(
        client: httpx.AsyncClient) -> None:
    first = await create(client, order(order_id="a", service_option_hold_id=105))
    assert first.status_code == 200
    await client.post("/_sandbox/clock", json={"advance_s": 300})
    second = await create(client, order(order_id="b", service_option_hold_id=105), "user-2")
    assert second.status_code == 200
    # the window is the hold's, fixed on the sandbox clock, not re-anchored at each order
    windows = {answer.json()["fulfillment_details"]["window_starts_at"]
               for answer in (first, second)}
    assert len(windows) == 1
    await client.post("/_sandbox/clock", json={"advance_s": 600})
    late = await create(client, order(order_id="c", service_option_hold_id=105))
    assert (late.status_code, late.json()) == (400, no_longer_available())
    await client.post("/_sandbox/reset")  # the sandbox starts again: so does the hold
    assert (await create(client, order(service_option_hold_id=105))).status_code == 200


async def test_a_hold_expires_on_the_sandbox_clock(client: httpx.AsyncClient) -> None:
    assert (await create(client, order(order_id="a", service_option_hold_id=106))).status_code \
        == 200
    await client.post("/_sandbox/clock", json={"advance_s": 600})
    late = await create(client, order(order_id="b", service_option_hold_id=106))
    assert late.json() == {"errors": [err("ETA option hold has expired.",
                                          key="service_option_hold_id")]}


async def test_a_full_hold_takes_no_more_orders_until_reset(client: httpx.AsyncClient) -> None:
    assert (await create(client, order(order_id="a", service_option_hold_id=104))).status_code \
        == 200
    full = await create(client, order(order_id="b", service_option_hold_id=104), "user-2")
    assert full.json() == no_longer_available()
    await client.post("/_sandbox/reset")
    assert (await create(client, order(order_id="b", service_option_hold_id=104))).status_code \
        == 200


async def test_the_pause_between_one_users_orders_runs_on_the_sandbox_clock(
        client: httpx.AsyncClient) -> None:
    assert (await create(client, order(order_id="a"), "user-busy")).status_code == 200
    assert (await create(client, order(order_id="b"), "user-1")).status_code == 200  # others not
    await client.post("/_sandbox/clock", json={"advance_s": 4})
    again = (await create(client, order(order_id="c"), "user-busy")).json()
    assert again["errors"][0]["meta"] == {"wait": 6, "retry": True}
    await client.post("/_sandbox/clock", json={"advance_s": 6})
    assert (await create(client, order(order_id="c"), "user-busy")).status_code == 200


async def test_unknown_items_above_the_pass_threshold_are_still_not_found(
        client: httpx.AsyncClient) -> None:
    # 4 of 5 lines found (0.8) worth over min_total_cost_cents: the threshold is met, so 2000
    codes = ["987665788999", "123456789012", "0001234567892"]
    items: list[dict[str, Any]] = [{"line_num": str(n), "count": 1, "item": {"upc": code}}
                                   for n, code in enumerate(codes)]
    items[0]["count"] = 4
    items.append({"line_num": "3", "weight": 1, "item": {"upc": "204000000001"}})
    items.append({"line_num": "9", "count": 1, "item": {"rrc": "no-such-rrc"}})
    answer = (await create(client, order(items=items))).json()
    assert answer == {"errors": [err("1 item not found.", 2000, upcs=[],
                                     items=[{"item_rrc": "no-such-rrc"}], rrcs=["no-such-rrc"])]}
    items[0]["count"] = 1  # now worth less than min_total_cost_cents: 2008
    meta = (await create(client, order(items=items))).json()["errors"][0]["meta"]
    assert (meta["item_found_ratio"], meta["total_cost_cents"]) == (0.8, 899 + 449 + 500 + 69)


async def test_try_later_answers_every_create_until_turned_off(
        client: httpx.AsyncClient) -> None:
    faults = (await client.put("/_sandbox/faults", json={"try_later_s": 2.5})).json()
    assert faults["try_later_s"] == 2.5
    busy = await create(client, order())
    assert busy.json()["errors"][0]["meta"] == {"wait": "3"}  # whole seconds, rounded up
    assert (await client.get("/v2/fulfillment/users/user-1/orders/x")).status_code == 404
    await client.put("/_sandbox/faults", json={})
    assert "try_later_s" not in (await client.get("/_sandbox/faults")).json()
    assert (await create(client, order())).status_code == 200


async def test_limits_count_beverages_by_weight_and_bulky_items_by_unit(
        client: httpx.AsyncClient) -> None:
    # 6 waters (60 lb) and 2 chairs: at both limits, not over them
    ok = order(items=[{"line_num": "1", "count": 6, "item": {"upc": "123456789026"}},
                      {"line_num": "2", "count": 2, "item": {"upc": "071121960001"}}])
    assert (await create(client, ok)).status_code == 200
    milk = order(order_id="order-2", items=[
        {"line_num": "1", "count": 6, "item": {"upc": "123456789026"}},
        {"line_num": "2", "count": 1, "item": {"upc": "123456789012"}}])
    answer = (await create(client, milk)).json()["errors"][0]["error"]
    assert answer["error_code"] == 2026
    assert "Please remove 8.6lb of beverages" in answer["message"]
