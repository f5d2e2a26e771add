"""Create and get delivery orders: documents 002 and 003.

Checks run in the order Instacart reports them: "try again later" (2003, a fault
setting), the user in the path (1001, 403, 1002), the shape of the request (9999),
field rows (1001, all at once), the order id (1003), the user's last order (2003),
the hold's slot (1001), then the cart against the catalog (cart.py). Every message,
code and meta is the row of document 002's error table that names it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from gateway.errors import BLANK, NOT_IN_LIST, error, invalid
from gateway.sandbox.cart import MISSING_OR_INVALID, Cart
from gateway.sandbox.clock import Clock
from gateway.sandbox.faults import Faults
from gateway.sandbox.http import (
    NOT_FOUND,
    Request,
    Response,
    error_response,
    errors_response,
    is_int,
    is_number,
    json_body,
    json_response,
    malformed,
)
from gateway.sandbox.lifecycle import Line, Order
from gateway.sandbox.seed import Hold, Seed, User
from gateway.sandbox.store import Store
from gateway.types import JSON, Error

# doc 002, OrderItem.replacement_policy: one of these three.
REPLACEMENT_POLICIES = frozenset({"no_replacements", "users_choice", "shoppers_choice"})
NEGATIVE = "must be greater than or equal to 0"  # doc 002: negative count / weight
_PHONE = re.compile(r"\+?[0-9][0-9 ().-]{8,18}[0-9]")

# doc 002/003: "Inactive user" -> 403 "User Not Active", error_code null.
USER_NOT_ACTIVE = error_response(403, {"error": {"message": "User Not Active", "error_code": None}})
# doc 002: "Order id already exists" -> "Order already in use." 1003, no meta.
ORDER_IN_USE = errors_response([error("Order already in use.", 1003)])
# doc 002: "Deactivated user account" -> 1002 {"key":"access_token"}.
DEACTIVATED = errors_response([error("The user account was deactivated.", 1002, "access_token")])
# doc 002: "Service option is no longer available" -> 1001 {"key":"service_option_id"}.
SLOT_GONE = errors_response([invalid(
    "The delivery time you selected is no longer available - please select another time",
    "service_option_id")])
# doc 002: "Another order created recently" -> 2003 {"wait":10,"retry":true}.
RECENT_ORDER = ("Another order has been recently created for this user, please try again in "
                "a little while.")


def is_code(item: Any) -> bool:
    """doc 002 Item: "One of the following": a upc or an rrc string."""
    return isinstance(item, dict) and any(
        isinstance(item.get(key), str) and item[key] for key in ("upc", "rrc"))


# doc 002 OrderItem: the JSON type of each optional field, when present.
ITEM_TYPES: dict[str, Callable[[Any], bool]] = {
    "count": is_int,  # "Must be a non-negative integer."
    "weight": is_number,
    "replacement_policy": lambda value: isinstance(value, str),
    "replacement_items": lambda value: isinstance(value, list),
    "metadata": lambda value: isinstance(value, dict),
}


def item_ok(entry: Any) -> bool:
    """doc 002 OrderItem: line_num and item required, optional fields of their types."""
    if not isinstance(entry, dict):
        return False
    line_num = entry.get("line_num")
    if not (isinstance(line_num, str) and line_num) and not is_int(line_num):
        return False
    if not is_code(entry.get("item")):
        return False
    return all(ITEM_TYPES[name](entry[name]) for name in ITEM_TYPES
               if entry.get(name) is not None)


def shape_ok(body: JSON) -> bool:
    """doc 002 "Invalid order params*": the required fields, with their JSON types."""
    order_id, items = body.get("order_id"), body.get("items")
    if not isinstance(order_id, str) or not order_id:
        return False
    if not is_int(body.get("service_option_hold_id")) or not is_int(body.get("initial_tip_cents")):
        return False
    if not isinstance(body.get("address"), dict):
        return False
    for name in ("user", "metadata"):
        if body.get(name) is not None and not isinstance(body[name], dict):
            return False
    return isinstance(items, list) and bool(items) and all(item_ok(entry) for entry in items)


def item_field_errors(items: list[JSON]) -> list[Error]:
    errors = []
    for index, entry in enumerate(items):
        prefix = f"items[{index}]."
        for name in ("count", "weight"):
            # doc 002: "Invalid quantity (negative count)" / "(negative weight)"
            if is_number(entry.get(name)) and entry[name] < 0:
                errors.append(invalid(NEGATIVE, prefix + name))
        policy = entry.get("replacement_policy")
        if policy is not None and policy not in REPLACEMENT_POLICIES:
            # doc 002: "Invalid replacement_policy"
            errors.append(invalid(NOT_IN_LIST, prefix + "replacement_policy"))
    return errors


class Fulfillment:
    """The orders of one sandbox and the two fulfillment endpoints."""

    def __init__(self, seed: Seed, clock: Clock, store: Store, faults: Faults) -> None:
        self.seed = seed
        self.clock = clock
        self.store = store
        self.faults = faults
        self.cart = Cart(seed, clock)
        self.orders: dict[str, Order] = {}
        self.last_order_at: dict[str, datetime] = {}  # by user, for `order_interval_s`
        self.booked: Counter[int] = Counter()  # orders per hold, for its `capacity`

    def reset(self) -> None:
        self.orders = {}
        self.last_order_at = {}
        self.booked = Counter()

    def user(self, user_id: str) -> User | Response:
        user = self.seed.users.get(user_id)
        if user is None:
            # doc 002/003: "Invalid user id" -> "User Not Found" 1001 {"key":"user_id"}
            return errors_response([invalid("User Not Found", "user_id")])
        return user if user.active else USER_NOT_ACTIVE

    async def get(self, request: Request) -> Response:
        """doc 003: `GET /v2/fulfillment/users/{user_id}/orders/{order_id}`."""
        user = self.user(request.params["user_id"])
        if isinstance(user, Response):
            return user
        order = self.orders.get(request.params["order_id"])
        if order is None or order.user_id != user.id:
            return NOT_FOUND
        view = order.connect_view(self.clock.now(), order_url(request, order.id))
        view["pos_payment_method"] = "UNSPECIFIED"  # doc 003's examples
        return json_response(200, view)

    async def create(self, request: Request) -> Response:
        """doc 002: `POST /v2/fulfillment/users/{user_id}/orders/delivery`."""
        answer = self.check_create(request)
        if isinstance(answer, Response):
            self.store.reject("delivery")
            return answer
        body, order = answer
        self.orders[order.id] = order
        self.last_order_at[order.user_id] = order.created_at
        self.booked[order.hold.id] += 1
        self.store.accept("delivery", body, request.raw_headers)
        return json_response(200, order.connect_view(self.clock.now(),
                                                     order_url(request, order.id)))

    def check_create(self, request: Request) -> tuple[JSON, Order] | Response:
        if self.faults.try_later is not None:
            return self.faults.try_later
        user = self.user(request.params["user_id"])
        if isinstance(user, Response):
            return user
        if user.deactivated:
            return DEACTIVATED
        body = json_body(request)
        if isinstance(body, Response):
            return body
        if not shape_ok(body):
            return malformed()
        errors = self.field_errors(user, body)
        if errors:
            return errors_response(errors)
        if body["order_id"] in self.orders:
            return ORDER_IN_USE
        refused = self.too_soon(user) or self.slot_gone(self.seed.holds[
            body["service_option_hold_id"]])
        if refused is not None:
            return refused
        lines = self.cart.lines(body)
        if isinstance(lines, Response):
            return lines
        return body, self.build(user, body, lines)

    def field_errors(self, user: User, body: JSON) -> list[Error]:
        errors = item_field_errors(body["items"])
        errors += self.tip_errors(body["initial_tip_cents"])
        errors += self.store_errors(body.get("location_code"))
        errors += self.hold_errors(body["service_option_hold_id"])
        errors += self.phone_errors(user, body.get("user") or {})
        errors += self.address_errors(body["address"])
        return errors

    def tip_errors(self, tip: int) -> list[Error]:
        if tip < 0:
            return [invalid(NEGATIVE, "initial_tip_cents")]
        if tip > self.seed.limits.max_tip_cents:
            # doc 002: "Tip over maximum"
            dollars = f"${self.seed.limits.max_tip_cents / 100:,.2f}"
            return [invalid(f"Tip value is above maximum: {dollars}.", "initial_tip_cents")]
        return []

    def store_errors(self, location_code: Any) -> list[Error]:
        if location_code is None or location_code in self.seed.stores:
            return []
        # doc 002: "Invalid location code"
        return [invalid("Could not find specified store.", "location_code")]

    def hold_errors(self, hold_id: int) -> list[Error]:
        hold = self.seed.holds.get(hold_id)
        if hold is None:
            return [invalid("Hold not found", "service_option_hold_id")]  # doc 002
        if hold.is_expired(self.clock.started, self.clock.now()):
            # doc 002: "Expired ETA option hold"
            return [invalid("ETA option hold has expired.", "service_option_hold_id")]
        return []

    def phone_errors(self, user: User, order_user: JSON) -> list[Error]:
        phone = order_user.get("phone_number")
        if phone not in (None, ""):
            if isinstance(phone, str) and _PHONE.fullmatch(phone):
                return []
            # doc 002: "User with invalid phone number" -> {"key":"user_phone"}
            return [invalid(MISSING_OR_INVALID, "user_phone")]
        if user.phone_number:
            return []
        # doc 002: "User and order without phone number" -> {"key":"user.phone_number"}
        return [invalid(BLANK, "user.phone_number")]

    def too_soon(self, user: User) -> Response | None:
        """doc 002, "Another order created recently": a user's orders `order_interval_s` apart."""
        last = self.last_order_at.get(user.id)
        if not user.order_interval_s or last is None:
            return None
        left = user.order_interval_s - (self.clock.now() - last).total_seconds()
        if left <= 0:
            return None
        return errors_response([{"error": {"message": RECENT_ORDER, "error_code": 2003},
                                 "meta": {"wait": math.ceil(left), "retry": True}}])

    def slot_gone(self, hold: Hold) -> Response | None:
        """doc 002, "Service option is no longer available": the slot is full, or its
        window (fixed on the sandbox clock) has begun."""
        if hold.capacity is not None and self.booked[hold.id] >= hold.capacity:
            return SLOT_GONE
        now = self.clock.now()
        if hold.fixed_window and hold.window_start(self.clock.started, now) <= now:
            return SLOT_GONE
        return None

    def address_errors(self, address: JSON) -> list[Error]:
        line_1, postal_code = address.get("address_line_1"), address.get("postal_code")
        if not isinstance(line_1, str) or not line_1.strip() or not isinstance(postal_code, str):
            return [invalid("invalid_address", "address")]  # doc 002: "Invalid address"
        if postal_code in self.seed.unsupported_postal_codes:
            return [invalid("not supported", "postal_code")]  # doc 002: unsupported
        if postal_code not in self.seed.supported_postal_codes:
            return [invalid("not found", "postal_code")]  # doc 002: invalid postal code
        return []

    def build(self, user: User, body: JSON, lines: list[Line]) -> Order:
        location_code = body.get("location_code")
        store = self.seed.stores.get(location_code) if location_code else self.seed.default_store
        assert store is not None  # store_errors ran first
        plus = bool(body.get("applied_instacartplus") or body.get("applied_express"))
        locale = body.get("locale") if isinstance(body.get("locale"), str) else "en-US"
        now, hold = self.clock.now(), self.seed.holds[body["service_option_hold_id"]]
        return Order(
            id=body["order_id"], user_id=user.id, created_at=now, hold=hold,
            window_starts_at=hold.window_start(self.clock.started, now), store=store,
            address=body["address"], lines=lines, seed=self.seed,
            # doc 003: locale "in POSIX format. Example: en_US"; doc 002 takes IETF en-US
            locale=str(locale).replace("-", "_"), instacartplus=plus,
            special_instructions=body.get("special_instructions"),
            metadata=body.get("metadata") or {},
        )


def order_url(request: Request, order_id: str) -> str | None:
    """doc 002: "The URL of the Instacart-hosted order status page": here, the admin view."""
    host = request.header(b"host")
    return f"http://{host}/_sandbox/orders/{quote(order_id, safe='')}" if host else None


