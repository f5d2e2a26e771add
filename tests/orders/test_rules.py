"""gateway/orders/rules.py: the order-log document's rules, with its own messages and codes."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.orders.rules import order_key, validate_order

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def make_order(**properties: Any) -> dict[str, Any]:
    """A valid order.created request, shaped like the document's request example."""
    order: dict[str, Any] = {
        "event": "order.created",
        "properties": {
            "order_id": "o-1001",
            "created_at_utc": iso(NOW - timedelta(hours=1)),
            "updated_at_utc": iso(NOW - timedelta(minutes=30)),
            "location_code": "store-42",
            "delivery_status": "created",
            "order_items": [
                {
                    "ordered_rrc": "rrc-1",
                    "ordered_upc": "012345678905",
                    "ordered_price_per_unit": "2990000000",
                    "ordered_total_discount": "0",
                    "ordered_quantity": "2",
                }
            ],
        },
        "user_id": "u-42",
        "sent_at_utc": iso(NOW),
    }
    order["properties"].update(properties)
    return order


DROP = object()  # with_item(field=DROP) removes the field


def with_item(**fields: Any) -> dict[str, Any]:
    order = make_order()
    item = order["properties"]["order_items"][0]
    for name, value in fields.items():
        if value is DROP:
            item.pop(name)
        else:
            item[name] = value
    return order


def error(message: str, key: str, code: int = 1001) -> dict[str, Any]:
    return {"error": {"message": message, "error_code": code}, "meta": {"key": key}}


def test_a_valid_order_has_no_errors() -> None:
    assert validate_order(make_order(), NOW) == []


# The order-log document's 400 table, verbatim.
def test_doc_missing_event_properties() -> None:
    order = make_order()
    del order["properties"]
    assert validate_order(order, NOW) == [error("can't be blank", "properties")]


def test_doc_invalid_event_name() -> None:
    order = make_order()
    order["event"] = "order.placed"
    assert validate_order(order, NOW) == [error("is not included in the list", "event")]


def test_doc_order_created_with_empty_order_items() -> None:
    order = make_order(order_items=[])
    assert validate_order(order, NOW) == [error("can't be blank", "properties.order_items")]


@pytest.mark.parametrize("blank", [None, "", {}])
def test_blank_properties(blank: Any) -> None:
    order = make_order()
    order["properties"] = blank
    assert validate_order(order, NOW) == [error("can't be blank", "properties")]


def test_missing_event_name() -> None:
    order = make_order()
    del order["event"]
    assert validate_order(order, NOW) == [error("is not included in the list", "event")]


@pytest.mark.parametrize(
    ("path", "key"),
    [
        (("user_id",), "user_id"),
        (("sent_at_utc",), "sent_at_utc"),
        (("properties", "order_id"), "properties.order_id"),
        (("properties", "created_at_utc"), "properties.created_at_utc"),
        (("properties", "location_code"), "properties.location_code"),
        (("properties", "order_items"), "properties.order_items"),
        (("properties", "order_items", 0, "ordered_price_per_unit"),
         "properties.order_items[0].ordered_price_per_unit"),
        (("properties", "order_items", 0, "ordered_quantity"),
         "properties.order_items[0].ordered_quantity"),
    ],
)
@pytest.mark.parametrize("how", ["missing", "empty", "null"])
def test_required_fields(path: tuple[Any, ...], key: str, how: str) -> None:
    order = make_order()
    parent: Any = order
    for step in path[:-1]:
        parent = parent[step]
    if how == "missing":
        del parent[path[-1]]
    else:
        parent[path[-1]] = "" if how == "empty" else None
    assert validate_order(order, NOW) == [error("can't be blank", key)]


@pytest.mark.parametrize("optional", ["updated_at_utc", "delivery_status"])
def test_optional_properties(optional: str) -> None:
    order = make_order()
    del order["properties"][optional]
    assert validate_order(order, NOW) == []


def test_optional_discount() -> None:
    assert validate_order(with_item(ordered_total_discount=DROP), NOW) == []


@pytest.mark.parametrize("keep", ["ordered_upc", "ordered_rrc"])
def test_one_of_upc_or_rrc_is_enough(keep: str) -> None:
    other = "ordered_rrc" if keep == "ordered_upc" else "ordered_upc"
    assert validate_order(with_item(**{other: DROP}), NOW) == []


def test_neither_upc_nor_rrc() -> None:
    order = with_item(ordered_upc=DROP, ordered_rrc="")
    assert validate_order(order, NOW) == [
        error("must have an ordered_upc or an ordered_rrc", "properties.order_items[0]")
    ]


def test_items_are_indexed() -> None:
    order = make_order()
    good = order["properties"]["order_items"][0]
    bad = {**good, "ordered_quantity": "two"}
    order["properties"]["order_items"] = [good, good, bad]
    assert validate_order(order, NOW) == [
        error("is not a number", "properties.order_items[2].ordered_quantity")
    ]


NANOS = "must be an integer string of nanos (1.00 = 1000000000)"


@pytest.mark.parametrize("field", ["ordered_price_per_unit", "ordered_total_discount"])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2.99", NANOS),  # dollars, not nanos
        (2990000000, NANOS),  # the document's type is string
        ("1e9", NANOS),
        ("abc", NANOS),
        ("-1", "must be greater than or equal to 0"),
    ],
)
def test_prices_are_nanos(field: str, value: Any, message: str) -> None:
    order = with_item(**{field: value})
    assert validate_order(order, NOW) == [error(message, f"properties.order_items[0].{field}")]


@pytest.mark.parametrize("value", ["0", "2990000000", "123456789012345678901234"])
def test_nanos_accepted(value: str) -> None:
    assert validate_order(with_item(ordered_price_per_unit=value), NOW) == []


@pytest.mark.parametrize("value", ["2", "0.5", 3, 1.25])
def test_quantity_numeric(value: Any) -> None:
    assert validate_order(with_item(ordered_quantity=value), NOW) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [("two", "is not a number"), (True, "is not a number"), ("0", "must be greater than 0"),
     ("-1", "must be greater than 0")],
)
def test_quantity_rejected(value: Any, message: str) -> None:
    order = with_item(ordered_quantity=value)
    assert validate_order(order, NOW) == [
        error(message, "properties.order_items[0].ordered_quantity")
    ]


TIME = "must be an ISO 8601 time with a time zone designator"


@pytest.mark.parametrize(
    "value", ["2026-11-22T10:15:30", "2026-11-22", "yesterday", "string", 1700000000]
)
@pytest.mark.parametrize(
    ("path", "key"),
    [
        (("sent_at_utc",), "sent_at_utc"),
        (("properties", "created_at_utc"), "properties.created_at_utc"),
        (("properties", "updated_at_utc"), "properties.updated_at_utc"),
    ],
)
def test_times_need_an_offset(path: tuple[str, ...], key: str, value: Any) -> None:
    order = make_order()
    parent: Any = order
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    assert validate_order(order, NOW) == [error(TIME, key)]


@pytest.mark.parametrize(
    "value", ["2026-11-22T10:15:30+08:00", "2026-11-22T10:15:30Z", "2026-11-22T10:15:30.123-05:00"]
)
def test_time_forms_accepted(value: str) -> None:
    order = make_order()
    order["sent_at_utc"] = value
    assert validate_order(order, NOW) == []


OLD = "is more than 3 days ago: Instacart counts orders sent within three days of creation"


@pytest.mark.parametrize(
    ("age", "errors"),
    [
        (timedelta(days=2, hours=23), []),
        (timedelta(days=3), []),
        (timedelta(days=3, minutes=1), [error(OLD, "properties.created_at_utc")]),
        (timedelta(days=30), [error(OLD, "properties.created_at_utc")]),
        (-timedelta(minutes=10), []),  # a little clock skew
        (-timedelta(hours=1), [error("is in the future", "properties.created_at_utc")]),
    ],
)
def test_created_within_the_last_three_days(age: timedelta, errors: list[Any]) -> None:
    order = make_order(created_at_utc=iso(NOW - age), updated_at_utc=iso(NOW))
    assert validate_order(order, NOW) == errors


def test_three_days_across_offsets() -> None:
    # 2 days 23 h ago, written in UTC+08:00: the offset is honoured
    created = (NOW - timedelta(days=2, hours=23)).astimezone(
        datetime.fromisoformat("2000-01-01T00:00:00+08:00").tzinfo
    )
    assert validate_order(make_order(created_at_utc=created.isoformat()), NOW) == []


def test_naive_now_is_utc() -> None:
    assert validate_order(make_order(), NOW.replace(tzinfo=None)) == []


@pytest.mark.parametrize(
    ("path", "key"),
    [
        (("user_id",), "user_id"),
        (("properties", "order_id"), "properties.order_id"),
        (("properties", "location_code"), "properties.location_code"),
        (("properties", "delivery_status"), "properties.delivery_status"),
        (("properties", "order_items", 0, "ordered_upc"), "properties.order_items[0].ordered_upc"),
        (("properties", "order_items", 0, "ordered_rrc"), "properties.order_items[0].ordered_rrc"),
    ],
)
def test_strings(path: tuple[Any, ...], key: str) -> None:
    order = make_order()
    parent: Any = order
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = 42
    assert validate_order(order, NOW) == [error("must be a string", key)]


@pytest.mark.parametrize(
    ("order", "errors"),
    [
        ([], [{"error": {"message": "There were issues with your request", "error_code": 9999}}]),
        ("order", [{"error": {"message": "There were issues with your request",
                              "error_code": 9999}}]),
    ],
)
def test_not_an_object(order: Any, errors: list[Any]) -> None:
    assert validate_order(order, NOW) == errors


def test_wrong_shapes() -> None:
    order = make_order(order_items={"ordered_upc": "1"})
    assert validate_order(order, NOW) == [error("must be an array", "properties.order_items")]
    order = make_order(order_items=["x"])
    assert validate_order(order, NOW) == [error("must be an object", "properties.order_items[0]")]
    order = make_order()
    order["properties"] = ["x"]
    assert validate_order(order, NOW) == [error("must be an object", "properties")]


def test_all_errors_at_once() -> None:
    order = {"event": "order.placed", "properties": {"order_items": [{}]}}
    keys = [e["meta"]["key"] for e in validate_order(order, NOW)]
    assert keys == [
        "event",
        "user_id",
        "sent_at_utc",
        "properties.order_id",
        "properties.created_at_utc",
        "properties.location_code",
        "properties.order_items[0].ordered_price_per_unit",
        "properties.order_items[0].ordered_quantity",
        "properties.order_items[0]",
    ]


def test_unknown_fields_pass_through() -> None:
    order = make_order(loyalty_tier="gold")
    order["extra"] = {"anything": [1, 2]}
    assert validate_order(order, NOW) == []


def test_doc_request_example_placeholders_are_rejected() -> None:
    # The document's curl example, verbatim: its "string" placeholders are not times or nanos.
    order = {
        "event": "order.created",
        "properties": {
            "order_id": "string",
            "created_at_utc": "string",
            "updated_at_utc": "string",
            "location_code": "string",
            "delivery_status": "created",
            "order_items": [
                {
                    "ordered_rrc": "string",
                    "ordered_upc": "string",
                    "ordered_price_per_unit": "string",
                    "ordered_total_discount": "string",
                    "ordered_quantity": "string",
                }
            ],
        },
        "user_id": "string",
        "sent_at_utc": "string",
    }
    keys = [e["meta"]["key"] for e in validate_order(order, NOW)]
    assert keys == [
        "sent_at_utc",
        "properties.created_at_utc",
        "properties.updated_at_utc",
        "properties.order_items[0].ordered_price_per_unit",
        "properties.order_items[0].ordered_total_discount",
        "properties.order_items[0].ordered_quantity",
    ]


# order_key


def test_key_is_prefixed_and_uses_updated_at() -> None:
    order = make_order(order_id="o-7", updated_at_utc="2026-11-22T11:30:00+00:00")
    assert order_key(order) == "order:o-7@2026-11-22T11:30:00+00:00"


def test_key_falls_back_to_created_at() -> None:
    order = make_order(order_id="o-7", created_at_utc="2026-11-22T11:00:00Z")
    del order["properties"]["updated_at_utc"]
    assert order_key(order) == "order:o-7@2026-11-22T11:00:00+00:00"


def test_same_update_twice_is_one_key() -> None:
    assert order_key(make_order()) == order_key(copy.deepcopy(make_order()))


def test_same_instant_in_two_offsets_is_one_key() -> None:
    utc = make_order(updated_at_utc="2026-11-22T11:30:00+00:00")
    east = make_order(updated_at_utc="2026-11-22T19:30:00+08:00")
    assert order_key(utc) == order_key(east)


def test_newer_update_is_a_new_key() -> None:
    first = make_order(updated_at_utc=iso(NOW - timedelta(minutes=30)))
    later = make_order(updated_at_utc=iso(NOW - timedelta(minutes=5)))
    assert order_key(first) != order_key(later)


def test_other_order_is_a_new_key() -> None:
    assert order_key(make_order(order_id="a")) != order_key(make_order(order_id="b"))


@pytest.mark.parametrize("order", [
    None, [], {}, {"properties": "x"}, {"properties": {}},
    {"properties": {"order_id": "o", "updated_at_utc": "0001-01-01T00:00:00+14:00"}},
    {"properties": {"order_id": "o", "updated_at_utc": "9999-12-31T23:59:59-14:00"}},
])
def test_key_never_raises(order: Any) -> None:
    assert order_key(order).startswith("order:")
