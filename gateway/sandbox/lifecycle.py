"""A delivery order and its life on the sandbox clock.

doc 004: status runs brand_new -> acknowledged -> picking -> staging -> delivering ->
delivered; the seed says after how many seconds each step starts. The status is
computed from the clock when asked, so nothing runs in the background.
Two views: doc 002/003's Connect answer and doc 004's schema shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gateway.sandbox.clock import iso
from gateway.sandbox.seed import Hold, Product, Seed, Store
from gateway.types import JSON

PICKED = frozenset({"staging", "delivering", "delivered"})  # items are in bags from staging on
SHOPPER_ASSIGNED = frozenset({"picking", *PICKED})
UNITS_PER_BAG = 6
# doc 002, cancellation_reason: "One of the following".
CANCELLATION_REASONS = frozenset({"customer_driven", "instacart_driven", "retailer_driven",
                                  "shopper_driven", "unbatchable", "other"})


@dataclass(slots=True)
class Line:
    """One `items[]` entry of the create request, resolved against the catalog."""

    line_num: str
    product: Product
    quantity: float
    replacement_policy: str
    replacements: list[Product]
    metadata: JSON | None = None

    def delivered(self, seed: Seed) -> Product | None:
        """What the shopper puts in the bag: the product, a replacement, or nothing."""
        if not self.product.out_of_stock:
            return self.product
        if self.replacement_policy == "no_replacements":
            return None
        for candidate in self.replacements:
            if not candidate.out_of_stock:
                return candidate
        # doc 002: shoppers_choice is the default without replacement_items
        if self.replacement_policy == "shoppers_choice" and self.product.substitute_upc:
            return seed.by_upc.get(self.product.substitute_upc)
        return None


@dataclass(slots=True)
class Order:
    id: str
    user_id: str
    created_at: datetime  # on the sandbox clock
    hold: Hold
    window_starts_at: datetime
    store: Store
    address: JSON
    lines: list[Line]
    seed: Seed
    locale: str = "en_US"
    instacartplus: bool = False
    special_instructions: str | None = None
    metadata: JSON = field(default_factory=dict)
    canceled_at: datetime | None = None
    cancellation_reason: str | None = None

    def cancel(self, now: datetime, reason: str) -> bool:
        """doc 004: canceled ends the lifecycle; a delivered order cannot be canceled."""
        if self.status(now) in ("delivered", "canceled"):
            return False
        self.canceled_at, self.cancellation_reason = now, reason
        return True

    def status(self, now: datetime) -> str:
        if self.canceled_at is not None and now >= self.canceled_at:
            return "canceled"
        elapsed = (now - self.created_at).total_seconds()
        current = self.seed.lifecycle[0][0]
        for status, after in self.seed.lifecycle:
            if elapsed >= after:
                current = status
        return current

    def at(self, status: str) -> datetime:
        """When the order reaches `status` on the sandbox clock."""
        after = dict(self.seed.lifecycle)[status]
        return self.created_at + timedelta(seconds=after)

    @property
    def window(self) -> tuple[datetime, datetime]:
        starts = self.window_starts_at
        return starts, starts + timedelta(seconds=self.hold.window_s)

    def bag_count(self) -> int:
        units = sum(line.quantity if not line.product.by_weight else 1 for line in self.lines)
        return max(1, math.ceil(units / UNITS_PER_BAG))

    def connect_view(self, now: datetime, order_url: str | None) -> JSON:
        """doc 002 / doc 003 "200 Success": the order as Connect answers it."""
        status = self.status(now)
        view: JSON = {
            "id": self.id,
            "status": status,
            "order_url": order_url,
            "created_at": iso(self.created_at),
            "locale": self.locale,
            "is_express": self.instacartplus,
            "is_instacartplus": self.instacartplus,
            "metadata": self.metadata,
            "fulfillment_details": self.fulfillment_details(status),
            "items": [self.connect_item(line, status) for line in self.lines],
        }
        if status == "canceled":
            # doc 002: cancellation_reason is "Only present in canceled orders"
            view["cancellation_reason"] = self.cancellation_reason
        return view

    def fulfillment_details(self, status: str) -> JSON:
        starts, ends = self.window
        details: JSON = {"store_location": self.store.location_code,
                         "window_starts_at": iso(starts), "window_ends_at": iso(ends)}
        if status in PICKED:
            details["bag_count"] = self.bag_count()  # doc 002: "as reported by the shopper"
        if status == "delivered":
            details["delivered_at"] = iso(self.at("delivered"))
        return details

    def connect_item(self, line: Line, status: str) -> JSON:
        requested = line.product
        item: JSON = {
            "line_num": line.line_num,
            "qty": line.quantity,
            "qty_unit": requested.unit,
            "qty_requested": line.quantity,
            "qty_requested_unit": requested.unit,
            "replaced": False,
            "replacement_policy": line.replacement_policy,
            "rx": False,
            "item": {"upc": requested.upc, "rrc": requested.rrc,
                     "requested_upc": requested.upc, "requested_rrc": requested.rrc},
        }
        if line.metadata is not None:
            item["metadata"] = line.metadata
        if status in PICKED:
            picked(item, line.delivered(self.seed), line.quantity)
        return item

    def schema_view(self, now: datetime) -> JSON:
        """doc 004's shape, for the schema tests and the admin API."""
        status = self.status(now)
        starts, ends = self.window
        view: JSON = {
            "id": self.id,
            "user_id": self.user_id,
            "status": status,
            "fulfillment_type": "delivery",
            "created_at": self.created_at.isoformat(),
            "estimated_delivery_at": self.at("delivered").isoformat(),
            "store": {"id": self.store.id, "name": self.store.name,
                      "address": self.store.address},
            "service_option": {"id": str(self.hold.id), "date": starts.date().isoformat(),
                               "window_starts_at": starts.isoformat(),
                               "window_ends_at": ends.isoformat(),
                               "fulfillment_type": "delivery"},
            "delivery_address": self.address,
            "items": [self.schema_item(line, status) for line in self.lines],
        }
        if self.special_instructions:
            view["delivery_instructions"] = self.special_instructions
        if status in SHOPPER_ASSIGNED:
            view["shopper"] = self.seed.shopper
        return view

    def schema_item(self, line: Line, status: str) -> JSON:
        product = line.product
        item: JSON = {"product_id": product.product_id, "upc": product.upc,
                      "name": product.name, "status": "pending", "refunded": False}
        if not product.by_weight and line.quantity >= 1:
            item["quantity"] = int(line.quantity)  # doc 004: an integer, minimum 1
        if status not in PICKED:
            return item
        delivered = line.delivered(self.seed)
        if delivered is None:
            item.update(status="not_found", refunded=True)
        elif delivered is not product:
            item.update(status="replaced", replacement_status="APPROVED",
                        replacement=replacement(delivered, item.get("quantity")))
        else:
            item["status"] = "found"
        return item


def picked(item: JSON, delivered: Product | None, quantity: float) -> None:
    """doc 002: for picked items qty/upc/rrc are the delivered ones, requested_* stay."""
    codes: dict[str, Any] = item["item"]
    if delivered is None:
        item.update(qty=0, qty_fulfilled=0, qty_fulfilled_unit=item["qty_unit"])
        codes.update(delivered_upc="", delivered_rrc="")
        return
    item.update(qty=quantity, qty_unit=delivered.unit, qty_fulfilled=quantity,
                qty_fulfilled_unit=delivered.unit, scan_code=delivered.upc.zfill(14),
                replaced=delivered.upc != codes["requested_upc"])
    codes.update(upc=delivered.upc, rrc=delivered.rrc,
                 delivered_upc=delivered.upc, delivered_rrc=delivered.rrc)


def replacement(product: Product, quantity: int | None) -> JSON:
    view: JSON = {"product_id": product.product_id, "name": product.name}
    if quantity is not None:
        view["quantity"] = quantity
    return view
