"""Validation and dedupe key of one order, the way `POST /v2/ian/order/log` takes it.

The order-log document lists the fields; its 400 table gives three messages
verbatim (`properties`, `event`, `properties.order_items`). The other rules
(required fields, one of UPC or RRC per item, prices in nanos, ISO 8601 with
offset, created within the last three days) are the document's field table,
answered in the same Rails-style form with code 1001 and a dotted meta key.
Unknown fields are not looked at, so they pass through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from gateway.catalog import Check, as_number, check_string, is_blank
from gateway.errors import BLANK, NOT_IN_LIST, invalid, issues
from gateway.types import Error
from gateway.validate import NOT_A_TIME, has_offset, parse_time

# order-log doc: event "Always set to “order.created”."
ORDER_CREATED = "order.created"
# order-log doc: "orders must be sent within three days of the order creation date".
MAX_AGE = timedelta(days=3)
# Not in the document: a created_at_utc ahead of our clock by more than this is a wrong
# clock or a wrong offset, not an order; a little skew between servers is normal.
MAX_AHEAD = timedelta(minutes=15)

# Messages for the rules the document states but gives no message for.
NOT_AN_OBJECT = "must be an object"
NOT_A_LIST = "must be an array"
NOT_NANOS = "must be an integer string of nanos (1.00 = 1000000000)"
NEGATIVE = "must be greater than or equal to 0"
NOT_A_NUMBER = "is not a number"
NOT_POSITIVE = "must be greater than 0"
NO_PRODUCT = "must have an ordered_upc or an ordered_rrc"
TOO_OLD = (
    "is more than 3 days ago: Instacart counts orders sent within three days of creation"
)
TOO_NEW = "is in the future"

_NANOS = re.compile(r"-?[0-9]+")


def check_time(value: Any) -> str | None:
    return None if has_offset(value) else NOT_A_TIME


def check_nanos(value: Any) -> str | None:
    # order-log doc: ordered_price_per_unit / ordered_total_discount are strings "in nanos".
    if not isinstance(value, str) or _NANOS.fullmatch(value) is None:
        return NOT_NANOS
    return None if not value.startswith("-") else NEGATIVE


def check_quantity(value: Any) -> str | None:
    # order-log doc: "The quantity of the item ordered in terms of the specified size":
    # a count or a weight, so fractions are fine; nothing ordered is not an order item.
    number = as_number(value)
    if number is None:
        return NOT_A_NUMBER
    return None if number > 0 else NOT_POSITIVE


# A field table: name -> (required, check). The document's "Required" column, except
# ordered_upc / ordered_rrc: "At least one of UPC or RRC should be provided".
Fields = Mapping[str, tuple[bool, Check]]

ORDER_FIELDS: Fields = {
    "user_id": (True, check_string),
    "sent_at_utc": (True, check_time),
}
PROPERTIES_FIELDS: Fields = {
    "order_id": (True, check_string),
    "created_at_utc": (True, check_time),
    "updated_at_utc": (False, check_time),
    "location_code": (True, check_string),
    "delivery_status": (False, check_string),
}
ITEM_FIELDS: Fields = {
    "ordered_rrc": (False, check_string),
    "ordered_upc": (False, check_string),
    "ordered_price_per_unit": (True, check_nanos),
    "ordered_total_discount": (False, check_nanos),
    "ordered_quantity": (True, check_quantity),
}


def validate_order(order: Any, now: datetime) -> list[Error]:
    """Every error the order-log endpoint would answer for `order`; empty when it is valid.

    `now` is the time the order arrived, for the three-day rule; naive means UTC.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    if not isinstance(order, dict):
        return [issues()]  # as the track validator answers a body that is not an object
    errors = check_event(order.get("event"))
    errors += check_fields(order, ORDER_FIELDS, "")
    errors += check_properties(order.get("properties"), now)
    return errors


def check_event(name: Any) -> list[Error]:
    if name == ORDER_CREATED:
        return []
    # order-log doc 400 table: "Invalid event name" -> "is not included in the list", key "event"
    return [invalid(NOT_IN_LIST, "event")]


def check_fields(fields: Mapping[str, Any], table: Fields, prefix: str) -> list[Error]:
    """The fields of `table`, in the document's order. Not validate.py's walker, which goes
    over an event's own fields after the required ones: the errors would come in another order."""
    errors = []
    for name, (required, check) in table.items():
        value = fields.get(name)
        if is_blank(value):
            if required:
                errors.append(invalid(BLANK, prefix + name))
            continue
        message = check(value)
        if message is not None:
            errors.append(invalid(message, prefix + name))
    return errors


def check_properties(properties: Any, now: datetime) -> list[Error]:
    if is_blank(properties) or properties == {}:
        # order-log doc 400 table: "Missing event properties" -> "can't be blank", key "properties"
        return [invalid(BLANK, "properties")]
    if not isinstance(properties, dict):
        return [invalid(NOT_AN_OBJECT, "properties")]
    errors = check_fields(properties, PROPERTIES_FIELDS, "properties.")
    errors += check_age(properties.get("created_at_utc"), now)
    errors += check_items(properties.get("order_items"))
    return errors


def check_age(created_at: Any, now: datetime) -> list[Error]:
    created = parse_time(created_at)
    if created is None:
        return []  # blank or malformed: check_fields has answered already
    key = "properties.created_at_utc"
    if created < now - MAX_AGE:
        return [invalid(TOO_OLD, key)]
    if created > now + MAX_AHEAD:
        return [invalid(TOO_NEW, key)]
    return []


def too_old(order: bytes, now: datetime) -> str | None:
    """Why Instacart would not count this spooled order any more, or None.

    order-log doc: orders must be sent within three days of creation. An order that
    waited out an outage past that goes to the dead letters instead of upstream.
    """
    try:
        created = parse_time(orjson.loads(order)["properties"]["created_at_utc"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if created is None or now - created <= MAX_AGE:
        return None
    return f"not sent: created_at_utc {created.isoformat()} is more than 3 days ago"


def check_items(items: Any) -> list[Error]:
    key = "properties.order_items"
    if is_blank(items) or items == []:
        # order-log doc 400 table: "order.created with empty order items" -> "can't be blank"
        return [invalid(BLANK, key)]
    if not isinstance(items, list):
        return [invalid(NOT_A_LIST, key)]
    errors = []
    for index, item in enumerate(items):
        errors += check_item(item, f"{key}[{index}]")
    return errors


def check_item(item: Any, key: str) -> list[Error]:
    if not isinstance(item, dict):
        return [invalid(NOT_AN_OBJECT, key)]
    errors = check_fields(item, ITEM_FIELDS, key + ".")
    if is_blank(item.get("ordered_upc")) and is_blank(item.get("ordered_rrc")):
        # order-log doc: "At least one of UPC or RRC should be provided."
        errors.append(invalid(NO_PRODUCT, key))
    return errors


def order_key(order: Any) -> str:
    """The dedupe key: `order:<order_id>@<updated_at_utc, else created_at_utc>`.

    order-log doc: updated_at_utc is "the time an existing order was updated", so an
    order with a newer updated_at_utc is news and goes through, and the same update
    sent twice is a duplicate. The time is normalized to UTC so that one instant
    written with two offsets is one update. The `order:` prefix keeps order keys
    apart from event_ids, which share the dedupe cache and the spool.
    """
    properties = order.get("properties") if isinstance(order, dict) else None
    if not isinstance(properties, dict):
        properties = {}
    stamp = properties.get("updated_at_utc")
    if is_blank(stamp):
        stamp = properties.get("created_at_utc")
    return f"order:{properties.get('order_id')}@{normalize_time(stamp)}"


def normalize_time(value: Any) -> str:
    parsed = parse_time(value)
    if parsed is None:
        return str(value)
    try:
        return parsed.astimezone(UTC).isoformat()
    except OverflowError:  # year 1 at +14:00 or year 9999 at -14:00: no UTC twin
        return str(value)
