"""The sandbox's world, from `seed.json`: users, stores, catalog, holds, lifecycle.

Loaded once at start-up into lookup tables; a malformed seed fails loudly there.
The seed's `documented_errors` tells a retailer how to meet each row of document
002's error table with these users, products and holds; `GET /_sandbox/seed` serves
the whole file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import orjson

from gateway.types import JSON


@dataclass(frozen=True, slots=True)
class User:
    id: str
    phone_number: str | None
    active: bool
    deactivated: bool = False  # doc 002: "The user account was deactivated." (1002)
    # doc 002, "Another order created recently" (2003): seconds between two orders; 0: no rule
    order_interval_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Store:
    location_code: str
    id: str
    name: str
    address: JSON


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    upc: str
    rrc: str
    name: str
    by_weight: bool  # doc 002: "Each items[] ... requires either a count or a weight"
    out_of_stock: bool = False
    substitute_upc: str | None = None  # what the shopper picks under shoppers_choice
    alcohol: bool = False
    otc_medicine: bool = False  # doc 002: "over the counter medicine", age-restricted
    deliverable: bool = True
    price_cents: int = 0  # per unit, or per lb when sold by weight: the pass threshold's cost
    beverage: bool = False  # doc 002: "Maximum total weight of beverage items"
    unit_weight_lb: float = 0.0  # what one counted unit weighs, for the beverage limit
    bulky: bool = False  # doc 002: "Maximum quantity of large or bulky items"

    @property
    def unit(self) -> str:
        return "lb" if self.by_weight else "each"  # doc 002: "each" or "lb"


@dataclass(frozen=True, slots=True)
class Hold:
    """A service option hold. Its window opens `starts_in_s` after the order, or, with
    `fixed_window`, after the sandbox's start on its clock, and is gone once that passes."""

    id: int
    starts_in_s: float
    window_s: float
    expired: bool = False  # doc 002: "ETA option hold has expired."
    expires_in_s: float | None = None  # the reservation expires this long after the start
    fixed_window: bool = False
    capacity: int | None = None  # orders the slot takes; None: no limit
    alcohol_restricted: bool = False  # doc 002: state law restricts alcohol in this window

    def window_start(self, started: datetime, ordered: datetime) -> datetime:
        anchor = started if self.fixed_window else ordered
        return anchor + timedelta(seconds=self.starts_in_s)

    def is_expired(self, started: datetime, now: datetime) -> bool:
        if self.expired:
            return True
        return self.expires_in_s is not None and now >= started + timedelta(
            seconds=self.expires_in_s)


@dataclass(frozen=True, slots=True)
class Limits:
    max_tip_cents: int  # doc 002: "Tip value is above maximum: $300.00."
    max_items: int
    max_weight_lb: float
    alcohol_min_age: int
    otc_min_age: int  # doc 002: "You must be over 18 to purchase over the counter medicine"
    max_bulky_items: int  # doc 002: "Please remove 2 such items"
    max_beverage_lb: float  # doc 002: "Please remove 20lb of beverages"
    # doc 002, 2008 meta: "min_item_found_ratio":0.8, "min_total_cost_cents":2000
    min_item_found_ratio: float
    min_total_cost_cents: int


class Seed:
    """Lookup tables built once from the seed JSON."""

    def __init__(self, raw: JSON) -> None:
        self.raw = raw
        self.users = {u["id"]: user(u) for u in raw["users"]}
        self.stores = {s["location_code"]: Store(s["location_code"], s["id"], s["name"],
                                                 s["address"]) for s in raw["stores"]}
        self.default_store = self.stores[raw["stores"][0]["location_code"]]
        products = [product(p) for p in raw["catalog"]]
        self.by_upc = {p.upc: p for p in products}
        self.by_rrc = {p.rrc: p for p in products}
        self.holds = {h["id"]: Hold(**h) for h in raw["holds"]}
        self.supported_postal_codes = frozenset(raw["postal_codes"]["supported"])
        self.unsupported_postal_codes = frozenset(raw["postal_codes"]["unsupported"])
        self.no_alcohol_postal_codes = frozenset(raw["postal_codes"].get("no_alcohol", ()))
        self.lifecycle: tuple[tuple[str, float], ...] = tuple(
            (step["status"], float(step["after_s"])) for step in raw["lifecycle"])
        self.shopper: JSON = raw["shopper"]
        self.limits = Limits(**raw["limits"])

    def find(self, code: JSON) -> Product | None:
        """The catalog product an `item` object (doc 002: one of upc or rrc) names."""
        upc, rrc = code.get("upc"), code.get("rrc")
        if isinstance(upc, str) and upc:
            return self.by_upc.get(upc)
        if isinstance(rrc, str) and rrc:
            return self.by_rrc.get(rrc)
        return None


def user(raw: dict[str, Any]) -> User:
    return User(raw["id"], raw.get("phone_number"), raw["active"],
                raw.get("deactivated", False), raw.get("order_interval_s", 0.0))


def product(raw: dict[str, Any]) -> Product:
    flags = {name: raw[name] for name in PRODUCT_FLAGS if name in raw}
    return Product(raw["product_id"], raw["upc"], raw["rrc"], raw["name"],
                   raw["quantity_type"] == "weight", **flags)


# The optional fields of a catalog entry, named as in seed.json.
PRODUCT_FLAGS = ("out_of_stock", "substitute_upc", "alcohol", "otc_medicine", "deliverable",
                 "price_cents", "beverage", "unit_weight_lb", "bulky")


def load_seed() -> Seed:
    text = resources.files("gateway.sandbox").joinpath("seed.json").read_bytes()
    return Seed(orjson.loads(text))
