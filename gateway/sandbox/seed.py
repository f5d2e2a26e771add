"""The sandbox's world, from `seed.json`: users, stores, catalog, holds, lifecycle.

Loaded once at start-up into lookup tables; a malformed seed fails loudly there.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson

from gateway.types import JSON


@dataclass(frozen=True, slots=True)
class User:
    id: str
    phone_number: str | None
    active: bool


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

    @property
    def unit(self) -> str:
        return "lb" if self.by_weight else "each"  # doc 002: "each" or "lb"


@dataclass(frozen=True, slots=True)
class Hold:
    id: int
    starts_in_s: float  # the delivery window opens this long after the order
    window_s: float
    expired: bool = False


@dataclass(frozen=True, slots=True)
class Limits:
    max_tip_cents: int  # doc 002: "Tip value is above maximum: $300.00."
    max_items: int
    max_weight_lb: float
    alcohol_min_age: int
    otc_min_age: int  # doc 002: "You must be over 18 to purchase over the counter medicine"


class Seed:
    """Lookup tables built once from the seed JSON."""

    def __init__(self, raw: JSON) -> None:
        self.raw = raw
        self.users = {u["id"]: User(u["id"], u.get("phone_number"), u["active"])
                      for u in raw["users"]}
        self.stores = {s["location_code"]: Store(s["location_code"], s["id"], s["name"],
                                                 s["address"]) for s in raw["stores"]}
        self.default_store = self.stores[raw["stores"][0]["location_code"]]
        products = [product(p) for p in raw["catalog"]]
        self.by_upc = {p.upc: p for p in products}
        self.by_rrc = {p.rrc: p for p in products}
        self.holds = {h["id"]: Hold(h["id"], h["starts_in_s"], h["window_s"],
                                    h.get("expired", False)) for h in raw["holds"]}
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


def product(raw: dict[str, Any]) -> Product:
    return Product(raw["product_id"], raw["upc"], raw["rrc"], raw["name"],
                   raw["quantity_type"] == "weight", raw.get("out_of_stock", False),
                   raw.get("substitute_upc"), raw.get("alcohol", False),
                   raw.get("otc_medicine", False), raw.get("deliverable", True))


def load_seed() -> Seed:
    text = resources.files("gateway.sandbox").joinpath("seed.json").read_bytes()
    return Seed(orjson.loads(text))
