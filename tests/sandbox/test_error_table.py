"""Every row of document 002's 4XX table, met the way a retailer would meet it.

Each request is built from what `GET /_sandbox/seed` exposes (users, catalog, holds,
limits: found by their flags, never by the sandbox's code) and sent over real HTTP to a
sandbox under uvicorn; each answer must be the row's status, message, error_code and
meta, parsed from the row itself, quoted below as the document prints it (status, cause,
"message", code, meta run together). Where the document's meta names an example code
("alcohol_upc", "some_upc", "12345", an out-of-stock UPC), the seed's product of that
kind stands in for it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gateway.sandbox import create_sandbox
from tests.support import thread_server

from .bodies import token

# doc 002, "4XX Errors", verbatim: one row a line, however long.
# ruff: noqa: E501
DOCUMENT_TABLE = r"""
400Invalid user id"User Not Found"1001{"key":"user_id"}
400User with invalid phone number"Required parameter missing or invalid"1001{"key":"user_phone"}
400Invalid Quantity, expected count"One of these items had an invalid quantity amount, 0001234567892 expected count"2012{"item_code":"0001234567892","expected_param":"count","error_name":"WrongQuantityParameterError"}
400Expired ETA option hold"ETA option hold has expired."1001{"key":"service_option_hold_id"}
400Invalid replacement_policy"is not included in the list"1001{"key":"items[0].replacement_policy"}
400Invalid quantity (negative count)"must be greater than or equal to 0"1001{"key":"items[0].count"}
400Invalid quantity (negative weight)"must be greater than or equal to 0"1001{"key":"items[0].weight"}
400Invalid postal code"not found"1001{"key":"postal_code"}
400Unsupported postal code"not supported"1001{"key":"postal_code"}
400Invalid service option hold"Hold not found"1001{"key":"service_option_hold_id"}
400User and order without phone number"can't be blank"1001{"key":"user.phone_number"}
400Tip over maximum"Tip value is above maximum: $300.00."1001{"key":"initial_tip_cents"}
400Invalid location code"Could not find specified store."1001{"key":"location_code"}
400Invalid order params*"There were issues with your request"9999Not applicable
400Age requirement otc medicine"You must be over 18 to purchase over the counter medicine in your cart."1001{"items":[{"item_upc":"12345"}]}
400Fails alcohol compliance check"Alcoholic items can not be added to this order. Please remove and retry."2001Not applicable
400Invalid items"2 items not found."2000{"upcs":["111111111111","222222222222"],"items":[{"item_upc":"111111111111"},{"item_upc":"222222222222"}]}
400Insufficient items to meet order pass threshold"1 item not found. Insufficient items to meet order pass threshold."2008{"upcs":["123"],"items":[{"item_upc":"123"}],"error_name":"InsufficientItemsError","item_found_ratio":0.5,"min_item_found_ratio":0.8,"total_cost_cents":1000,"min_total_cost_cents":2000}
400Invalid address"invalid_address"1001{"key":"address"}
400Invalid zip code for alcohol"Cannot deliver alcohol to this zip code."1001{"items":[{"item_upc":"928473737373"}],"key":"zip_code"}
400Order id already exists"Order already in use."1003Not applicable
400Request could not be processed at this time"The request could not be completed at this time, try again later."2003{"wait":"30"}
400Duplicate items were provided"Duplicate items provided for this order."2007{"duplicate_items":[{"item_upc":"123456789999","item_rrc":null,"line_num":"0"},{"item_upc":"123456789999","item_rrc":null,"line_num":"1"}]}
400Duplicate line nums"Duplicate line_num values not allowed: 1"2006{"duplicate_line_nums":["1"]}
400Alcohol outside of allowed time window"State law restricts selling alcohol during the window you selected. Please change your delivery window to add alcohol."2001{"upcs":["alcohol_upc"],"items":[{"item_upc":"alcohol_upc"}]}
400Deactivated user account"The user account was deactivated."1002{"key":"access_token"}
400Service option is no longer available"The delivery time you selected is no longer available - please select another time"1001{"key":"service_option_id"}
400Too many big and bulky items"The number of big and bulky items in your cart exceeds our maximum limit for a single delivery. Please remove 2 such items from your cart to continue."2023Not applicable
400Too much beverage"The weight of beverages in your cart exceeds our maximum limit for a single delivery. Please remove 20lb of beverages from your cart to continue."2026Not applicable
400Too many items"The number of items in your cart exceeds our maximum limit for a single delivery. Please remove 15 items from your cart to continue."2024Not applicable
400Too much weight"The total weight of items in your cart exceeds our maximum limit for a single delivery. Please remove 20 lb from your cart to continue."2027Not applicable
400Some items are not deliverable"Some items are not deliverable"2005{"items":[{"item_upc":"123456789083"}]}
400Invalid Quantity, expected weight"One of these items had an invalid quantity amount, some_upc expected weight"2012{"upc":"some_upc","item_code":"some_upc","expected_param":"weight"}
400User birthday missing or invalid for alcohol order"Required parameter missing or invalid"1001{"key":"user_birthday","items":[{"item_upc":"alcohol_upc"}]}
400Another order created recently"Another order has been recently created for this user, please try again in a little while."2003{"wait":10,"retry":true}
403Inactive user"User Not Active"nullNot applicable
404Order not found"Resource not found"4000Not applicable
"""

ROW = re.compile(r'(?P<status>\d{3})(?P<cause>[^"]+?)\*?"(?P<message>[^"]*)"'
                 r'(?P<code>\d+|null)(?P<meta>.*)')
CREATE = "/v2/fulfillment/users/{user}/orders/delivery"


@dataclass(frozen=True)
class Row:
    status: int
    cause: str
    line: str  # the row as printed, message and meta still holding the document's examples


def rows() -> list[Row]:
    parsed = []
    for line in DOCUMENT_TABLE.strip().splitlines():
        found = ROW.fullmatch(line)
        assert found is not None, line
        parsed.append(Row(int(found["status"]), found["cause"], line))
    return parsed


def expected(row: Row, examples: dict[str, str]) -> dict[str, Any]:
    """The answer the row documents, its example codes replaced by the seed's."""
    line = row.line
    for example, code in examples.items():
        line = line.replace(example, code)
    found = ROW.fullmatch(line)
    assert found is not None
    error: dict[str, Any] = {"error": {"message": found["message"],
                                       "error_code": json.loads(found["code"])}}
    if found["meta"] != "Not applicable":
        error["meta"] = json.loads(found["meta"])
    # doc 002: "Error responses return either a single error or multiple errors"; the
    # sandbox answers its 400s as a list and other statuses as one error (doc 003 alike)
    return {"errors": [error]} if row.status == 400 else error


class Retailer:
    """A retailer's checkout rehearsing against the sandbox, knowing only its seed."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        self.http, self.url = http, url
        self.seed: dict[str, Any] = http.get(f"{url}/_sandbox/seed").json()
        http.headers["Authorization"] = f"Bearer {token(http, url)}"

    def user(self, **flags: Any) -> str:
        """The first user with these flags; with none, an active one who may order freely."""
        wanted = flags or {"active": True}
        plain = {"deactivated", "order_interval_s"} if not flags else set()
        return next(u["id"] for u in self.seed["users"]
                    if all(u.get(k) == v for k, v in wanted.items())
                    and u.get("phone_number") and not plain & set(u))

    def product(self, **flags: Any) -> dict[str, Any]:
        """The first catalog product with exactly these flags among the optional ones."""
        optional = {"out_of_stock", "alcohol", "otc_medicine", "deliverable", "beverage",
                    "bulky", "substitute_upc", "unit_weight_lb"}
        quantity_type = flags.pop("quantity_type", "count")
        return next(p for p in self.seed["catalog"] if p["quantity_type"] == quantity_type
                    and all(p.get(k) == v for k, v in flags.items())
                    and not (optional & set(p)) - set(flags) - {"unit_weight_lb"})

    def hold(self, **flags: Any) -> int:
        """The first hold with these flags; with none, one that is always open."""
        plain = {"id", "starts_in_s", "window_s"}
        return next(h["id"] for h in self.seed["holds"]
                    if all(h.get(k) == v for k, v in flags.items())
                    and (flags or set(h) == plain))

    def item(self, product: dict[str, Any], line: str, amount: float = 1) -> dict[str, Any]:
        unit = "weight" if product["quantity_type"] == "weight" else "count"
        return {"line_num": line, unit: amount, "item": {"upc": product["upc"]}}

    def order(self, **changes: Any) -> dict[str, Any]:
        """A valid order of two plain products, delivered from the first store's area."""
        store = self.seed["stores"][0]
        body = {
            "order_id": "order-1", "service_option_hold_id": self.hold(),
            "initial_tip_cents": 500, "location_code": store["location_code"],
            "address": {"address_line_1": "123 Main St",
                        "postal_code": store["address"]["postal_code"]},
            "items": [self.item(self.product(), "1", 2),
                      self.item(self.product(quantity_type="weight"), "2", 1.5)],
        }
        return {**body, **changes}

    def create(self, body: Any, user: str | None = None) -> httpx.Response:
        return self.http.post(self.url + CREATE.format(user=user or self.user()), json=body)

    def adult(self) -> dict[str, str]:
        return {"birthday": "1980-01-01"}

    def minor(self) -> dict[str, str]:
        return {"birthday": "2015-01-01"}

    def advance(self, seconds: float) -> None:
        self.http.post(f"{self.url}/_sandbox/clock", json={"advance_s": seconds})

    def postal_code(self, kind: str) -> str:
        return str(self.seed["postal_codes"][kind][0])


# What a retailer sends to meet each row: the answer, and the seed's codes that stand in
# for the document's example codes in it.
Rehearsal = Callable[[Retailer], "tuple[httpx.Response, dict[str, str]]"]


def only(answer: httpx.Response) -> tuple[httpx.Response, dict[str, str]]:
    return answer, {}


def alcohol_order(r: Retailer, **changes: Any) -> dict[str, Any]:
    return r.order(items=[r.item(r.product(alcohol=True), "1")], **changes)


def expected_count(r: Retailer) -> httpx.Response:
    # doc 002's own example code, 0001234567892, is a count item of the seed
    entry = {"line_num": "1", "weight": 2.0, "item": {"upc": "0001234567892"}}
    return r.create(r.order(items=[entry]))


def expected_weight(r: Retailer) -> tuple[httpx.Response, dict[str, str]]:
    product = r.product(quantity_type="weight")
    entry = {"line_num": "1", "count": 3, "item": {"upc": product["upc"]}}
    return r.create(r.order(items=[entry])), {"some_upc": product["upc"]}


def order_twice(r: Retailer) -> httpx.Response:
    assert r.create(r.order()).status_code == 200
    return r.create(r.order(), r.user(active=True, phone_number="+15555550102"))


def pass_threshold(r: Retailer) -> httpx.Response:
    # doc 002's own case: 1 of 2 items unknown ("123"), the other worth 1000 cents
    product = next(p for p in r.seed["catalog"] if p["quantity_type"] == "count"
                   and 1000 % p["price_cents"] == 0)
    return r.create(r.order(items=[r.item(product, "1", 1000 // product["price_cents"]),
                                   {"line_num": "2", "count": 1, "item": {"upc": "123"}}]))


def try_later(r: Retailer) -> httpx.Response:
    r.http.put(f"{r.url}/_sandbox/faults", json={"try_later_s": 30})
    return r.create(r.order())


def slot_full(r: Retailer) -> httpx.Response:
    hold = next(h for h in r.seed["holds"] if h.get("capacity") is not None)
    for number in range(hold["capacity"]):
        booked = r.create(r.order(order_id=f"earlier-{number}", service_option_hold_id=hold["id"]),
                          r.user(active=True, phone_number="+15555550102"))
        assert booked.status_code == 200, booked.text
    return r.create(r.order(service_option_hold_id=hold["id"]))


def too_soon(r: Retailer) -> httpx.Response:
    busy = next(u for u in r.seed["users"] if u.get("order_interval_s"))
    assert r.create(r.order(order_id="first"), busy["id"]).status_code == 200
    return r.create(r.order(order_id="second"), busy["id"])


def beverages(r: Retailer) -> httpx.Response:
    # doc 002: "Please remove 20lb of beverages": that much over the limit
    product = next(p for p in r.seed["catalog"] if p.get("beverage") and p.get("unit_weight_lb"))
    count = (r.seed["limits"]["max_beverage_lb"] + 20) / product["unit_weight_lb"]
    assert count.is_integer()
    return r.create(r.order(items=[r.item(product, "1", int(count))]))


def bulky(r: Retailer) -> httpx.Response:
    # doc 002: "Please remove 2 such items"
    product = r.product(bulky=True)
    return r.create(r.order(items=[r.item(product, "1", r.seed["limits"]["max_bulky_items"] + 2)]))


def not_found(r: Retailer) -> httpx.Response:
    # doc 002's own codes: "2 items not found." 111111111111 and 222222222222
    return r.create(r.order(items=[
        {"line_num": "1", "count": 1, "item": {"upc": "111111111111"}},
        {"line_num": "2", "count": 1, "item": {"upc": "222222222222"}}]))


def duplicates(r: Retailer) -> httpx.Response:
    # doc 002's own example: one code on lines "0" and "1"
    entry = {"count": 1, "item": {"upc": "123456789999"}}
    return r.create(r.order(items=[{"line_num": "0", **entry}, {"line_num": "1", **entry}]))


def order_not_found(r: Retailer) -> httpx.Response:
    return r.http.get(f"{r.url}/v2/fulfillment/users/{r.user()}/orders/no-such-order")


def alcohol_upc(r: Retailer) -> dict[str, str]:
    return {"alcohol_upc": r.product(alcohol=True)["upc"]}


REHEARSALS: dict[str, Rehearsal] = {
    "Invalid user id": lambda r: only(r.create(r.order(), "no-such-user")),
    "User with invalid phone number":
        lambda r: only(r.create(r.order(user={"phone_number": "call me"}))),
    "Invalid Quantity, expected count": lambda r: only(expected_count(r)),
    "Expired ETA option hold":
        lambda r: only(r.create(r.order(service_option_hold_id=r.hold(expired=True)))),
    "Invalid replacement_policy": lambda r: only(r.create(r.order(items=[
        {**r.item(r.product(), "1"), "replacement_policy": "any"}]))),
    "Invalid quantity (negative count)":
        lambda r: only(r.create(r.order(items=[r.item(r.product(), "1", -1)]))),
    "Invalid quantity (negative weight)": lambda r: only(r.create(r.order(items=[
        r.item(r.product(quantity_type="weight"), "1", -0.5)]))),
    "Invalid postal code": lambda r: only(r.create(r.order(
        address={"address_line_1": "1 A St", "postal_code": "00000"}))),
    "Unsupported postal code": lambda r: only(r.create(r.order(
        address={"address_line_1": "1 A St", "postal_code": r.postal_code("unsupported")}))),
    "Invalid service option hold":
        lambda r: only(r.create(r.order(service_option_hold_id=987654))),
    "User and order without phone number": lambda r: only(r.create(r.order(), next(
        u["id"] for u in r.seed["users"] if u["active"] and not u["phone_number"]))),
    "Tip over maximum": lambda r: only(r.create(r.order(
        initial_tip_cents=r.seed["limits"]["max_tip_cents"] + 1))),
    "Invalid location code": lambda r: only(r.create(r.order(location_code="no-such-store"))),
    "Invalid order params": lambda r: only(r.create(r.order(items=[]))),
    "Age requirement otc medicine": lambda r: (r.create(r.order(
        items=[r.item(r.product(otc_medicine=True), "1")], user=r.minor())),
        {"12345": r.product(otc_medicine=True)["upc"]}),
    "Fails alcohol compliance check":
        lambda r: only(r.create(alcohol_order(r, user=r.minor()))),
    "Invalid items": lambda r: only(not_found(r)),
    "Insufficient items to meet order pass threshold": lambda r: only(pass_threshold(r)),
    "Invalid address": lambda r: only(r.create(r.order(address={"postal_code": "94105"}))),
    "Invalid zip code for alcohol": lambda r: only(r.create(alcohol_order(
        r, user=r.adult(), address={"address_line_1": "1 A St",
                                    "postal_code": r.postal_code("no_alcohol")}))),
    "Order id already exists": lambda r: only(order_twice(r)),
    "Request could not be processed at this time": lambda r: only(try_later(r)),
    "Duplicate items were provided": lambda r: only(duplicates(r)),
    "Duplicate line nums": lambda r: only(r.create(r.order(items=[
        r.item(r.product(), "1"), r.item(r.product(quantity_type="weight"), "1")]))),
    "Alcohol outside of allowed time window": lambda r: (r.create(alcohol_order(
        r, user=r.adult(), service_option_hold_id=r.hold(alcohol_restricted=True))),
        alcohol_upc(r)),
    "Deactivated user account":
        lambda r: only(r.create(r.order(), r.user(deactivated=True))),
    "Service option is no longer available": lambda r: only(slot_full(r)),
    "Too many big and bulky items": lambda r: only(bulky(r)),
    "Too much beverage": lambda r: only(beverages(r)),
    "Too many items": lambda r: only(r.create(r.order(items=[
        r.item(r.product(), "1", r.seed["limits"]["max_items"] + 15)]))),
    "Too much weight": lambda r: only(r.create(r.order(items=[
        r.item(r.product(quantity_type="weight"), "1", r.seed["limits"]["max_weight_lb"] + 20)]))),
    "Some items are not deliverable": lambda r: (r.create(r.order(
        items=[r.item(r.product(deliverable=False), "1")])),
        {"123456789083": r.product(deliverable=False)["upc"]}),
    "Invalid Quantity, expected weight": expected_weight,
    "User birthday missing or invalid for alcohol order":
        lambda r: (r.create(alcohol_order(r)), alcohol_upc(r)),
    "Another order created recently": lambda r: only(too_soon(r)),
    "Inactive user": lambda r: only(r.create(r.order(), r.user(active=False))),
    "Order not found": lambda r: only(order_not_found(r)),
}
ROWS = rows()


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    sandbox = create_sandbox(client_id="sandbox-client", client_secret="sandbox-secret")
    with thread_server(sandbox) as server:
        yield server.url


@pytest.fixture
def retailer(sandbox_url: str) -> Iterator[Retailer]:
    with httpx.Client(timeout=10) as http:
        http.post(f"{sandbox_url}/_sandbox/reset")
        yield Retailer(http, sandbox_url)


def test_the_table_has_37_rows_each_rehearsed_and_documented_in_the_seed(
        retailer: Retailer) -> None:
    assert len(ROWS) == 37
    assert [row.cause for row in ROWS] == list(REHEARSALS)
    documented = [entry["cause"] for entry in retailer.seed["documented_errors"]]
    assert documented == [row.cause for row in ROWS]


@pytest.mark.parametrize("row", ROWS, ids=[row.cause for row in ROWS])
def test_every_row_is_answered_exactly(retailer: Retailer, row: Row) -> None:
    answer, examples = REHEARSALS[row.cause](retailer)
    assert answer.status_code == row.status, answer.text
    assert answer.json() == expected(row, examples)
