"""The cart against the catalog: the last checks of creating a delivery order (doc 002).

In the order Instacart reports them: duplicate line numbers (2006), one product on two
lines (2007), items not found (2000, or 2008 below the order pass threshold), the
quantity each product is sold by (2012), the limits of one delivery (2024, 2027, 2023,
2026), items not deliverable (2005), alcohol (1001, 2001) and medicine (1001). Every
message, code and meta is the row of document 002's error table that names it.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from gateway.errors import error
from gateway.sandbox.clock import Clock
from gateway.sandbox.http import Response, errors_response
from gateway.sandbox.lifecycle import Line
from gateway.sandbox.seed import Product, Seed
from gateway.types import JSON

MISSING_OR_INVALID = "Required parameter missing or invalid"  # doc 002: phone, birthday
# doc 002: "Fails alcohol compliance check" -> 2001, no meta.
ALCOHOL_REFUSED = errors_response([error(
    "Alcoholic items can not be added to this order. Please remove and retry.", 2001)])
# doc 002: "Alcohol outside of allowed time window" -> 2001 with upcs and items.
ALCOHOL_WINDOW = ("State law restricts selling alcohol during the window you selected. Please "
                  "change your delivery window to add alcohol.")
# doc 002: "Insufficient items to meet order pass threshold" (2008).
INSUFFICIENT = "Insufficient items to meet order pass threshold."


def code_of(item: JSON) -> tuple[str, str]:
    """("upc" | "rrc", code) of a doc 002 Item object: "One of the following"."""
    upc = item.get("upc")
    if isinstance(upc, str) and upc:
        return "upc", upc
    return "rrc", str(item.get("rrc"))


def birthday(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def excess(amount: float) -> str:
    return f"{amount:g}"


class Cart:
    """The checks of an order's items against one sandbox's catalog and limits."""

    def __init__(self, seed: Seed, clock: Clock) -> None:
        self.seed = seed
        self.clock = clock  # an age is counted on the sandbox clock

    def lines(self, body: JSON) -> list[Line] | Response:
        """The order's lines resolved against the catalog, or the first rule they break."""
        items: list[JSON] = body["items"]
        for check in (duplicate_line_nums, self.duplicate_items, self.not_found):
            answer = check(items)
            if answer is not None:
                return answer
        lines = [self.line(entry) for entry in items]
        for rule in (wrong_quantity, self.too_much, undeliverable, self.alcohol, self.otc):
            answer = rule(lines, items, body)
            if answer is not None:
                return answer
        return lines

    def duplicate_items(self, items: list[JSON]) -> Response | None:
        """One product on two lines, whether named by the same code or by its UPC and RRC."""
        keys = [self.product_key(entry["item"]) for entry in items]
        counts = Counter(keys)
        duplicated = [
            {"item_upc": entry["item"].get("upc"), "item_rrc": entry["item"].get("rrc"),
             "line_num": str(entry["line_num"])}
            for entry, key in zip(items, keys, strict=True) if counts[key] > 1
        ]
        if not duplicated:
            return None
        # doc 002: "Duplicate items provided for this order." 2007 {"duplicate_items": [...]}
        return errors_response([{
            "error": {"message": "Duplicate items provided for this order.", "error_code": 2007},
            "meta": {"duplicate_items": duplicated}}])

    def product_key(self, item: JSON) -> tuple[str, str]:
        product = self.seed.find(item)
        return ("upc", product.upc) if product is not None else code_of(item)

    def not_found(self, items: list[JSON]) -> Response | None:
        """doc 002: "Invalid items" (2000), or, when the items found fall short of the
        order pass threshold, "Insufficient items to meet order pass threshold" (2008)."""
        missing = [code_of(e["item"]) for e in items if self.seed.find(e["item"]) is None]
        if not missing:
            return None
        noun = "item" if len(missing) == 1 else "items"
        message = f"{len(missing)} {noun} not found."
        meta: JSON = {"upcs": [code for kind, code in missing if kind == "upc"],
                      "items": [{f"item_{kind}": code} for kind, code in missing]}
        rrcs = [code for kind, code in missing if kind == "rrc"]
        if rrcs:
            meta["rrcs"] = rrcs
        threshold = self.pass_threshold(items, len(missing))
        if threshold is not None:
            return errors_response([{"error": {"message": f"{message} {INSUFFICIENT}",
                                               "error_code": 2008},
                                     "meta": {**meta, **threshold}}])
        # doc 002: "Invalid items" -> "2 items not found." 2000 with upcs and items
        return errors_response([{"error": {"message": message, "error_code": 2000},
                                 "meta": meta}])

    def pass_threshold(self, items: list[JSON], missing: int) -> JSON | None:
        """The 2008 meta when some items were found but too few, or too cheap, to shop
        the order; None when none were found (nothing to pass) or the threshold is met."""
        found = [(p, entry) for entry in items if (p := self.seed.find(entry["item"]))]
        if not found:
            return None
        limits = self.seed.limits
        ratio = round(len(found) / (len(found) + missing), 2)
        cost = round(sum(product.price_cents * ordered(product, entry) for product, entry in found))
        if ratio >= limits.min_item_found_ratio and cost >= limits.min_total_cost_cents:
            return None
        return {"error_name": "InsufficientItemsError", "item_found_ratio": ratio,
                "min_item_found_ratio": limits.min_item_found_ratio,
                "total_cost_cents": cost, "min_total_cost_cents": limits.min_total_cost_cents}

    def line(self, entry: JSON) -> Line:
        product = self.seed.find(entry["item"])
        assert product is not None  # not_found ran first
        # doc 002: users_choice is the default with replacement_items, shoppers_choice otherwise
        replacements = [p for r in entry.get("replacement_items") or []
                        if isinstance(r, dict) and (p := self.seed.find(r)) is not None]
        default = "users_choice" if entry.get("replacement_items") else "shoppers_choice"
        return Line(str(entry["line_num"]), product, ordered(product, entry),
                    entry.get("replacement_policy") or default, replacements,
                    entry.get("metadata"))

    def too_much(self, lines: list[Line], items: list[JSON], body: JSON) -> Response | None:
        limits = self.seed.limits
        count = sum(line.quantity for line in lines if not line.product.by_weight)
        if count > limits.max_items:
            return errors_response([error(  # doc 002: "Too many items" 2024
                "The number of items in your cart exceeds our maximum limit for a single "
                f"delivery. Please remove {excess(count - limits.max_items)} items from your "
                "cart to continue.", 2024)])
        weight = sum(line.quantity for line in lines if line.product.by_weight)
        if weight > limits.max_weight_lb:
            return errors_response([error(  # doc 002: "Too much weight" 2027
                "The total weight of items in your cart exceeds our maximum limit for a single "
                f"delivery. Please remove {excess(weight - limits.max_weight_lb)} lb from your "
                "cart to continue.", 2027)])
        return too_bulky(lines, limits.max_bulky_items) or too_much_beverage(
            lines, limits.max_beverage_lb)

    def alcohol(self, lines: list[Line], items: list[JSON], body: JSON) -> Response | None:
        upcs = [{"item_upc": line.product.upc} for line in lines if line.product.alcohol]
        if not upcs:
            return None
        born = birthday((body.get("user") or {}).get("birthday"))
        if born is None:
            # doc 002: "User birthday missing or invalid for alcohol order"
            return errors_response([{
                "error": {"message": MISSING_OR_INVALID, "error_code": 1001},
                "meta": {"key": "user_birthday", "items": upcs}}])
        if age_on(born, self.clock.now().date()) < self.seed.limits.alcohol_min_age:
            return ALCOHOL_REFUSED
        if body["address"]["postal_code"] in self.seed.no_alcohol_postal_codes:
            # doc 002: "Invalid zip code for alcohol"
            return errors_response([{
                "error": {"message": "Cannot deliver alcohol to this zip code.",
                          "error_code": 1001},
                "meta": {"items": upcs, "key": "zip_code"}}])
        if self.seed.holds[body["service_option_hold_id"]].alcohol_restricted:
            # doc 002: "Alcohol outside of allowed time window" 2001 {"upcs", "items"}
            return errors_response([{
                "error": {"message": ALCOHOL_WINDOW, "error_code": 2001},
                "meta": {"upcs": [item["item_upc"] for item in upcs], "items": upcs}}])
        return None

    def otc(self, lines: list[Line], items: list[JSON], body: JSON) -> Response | None:
        upcs = [{"item_upc": line.product.upc} for line in lines if line.product.otc_medicine]
        if not upcs:
            return None
        born = birthday((body.get("user") or {}).get("birthday"))
        minimum = self.seed.limits.otc_min_age
        if born is not None and age_on(born, self.clock.now().date()) >= minimum:
            return None
        # doc 002: "Age requirement otc medicine"
        return errors_response([{
            "error": {"message": f"You must be over {minimum} to purchase over the counter "
                                 "medicine in your cart.", "error_code": 1001},
            "meta": {"items": upcs}}])


def duplicate_line_nums(items: list[JSON]) -> Response | None:
    counts = Counter(str(entry["line_num"]) for entry in items)
    duplicated = [num for num, seen in counts.items() if seen > 1]
    if not duplicated:
        return None
    # doc 002: "Duplicate line_num values not allowed: 1" 2006 {"duplicate_line_nums":["1"]}
    return errors_response([{
        "error": {"message": f"Duplicate line_num values not allowed: {', '.join(duplicated)}",
                  "error_code": 2006},
        "meta": {"duplicate_line_nums": duplicated}}])


def wrong_quantity(lines: list[Line], items: list[JSON], body: JSON) -> Response | None:
    """doc 002: "Invalid Quantity, expected count" / "expected weight" (2012)."""
    for line, entry in zip(lines, items, strict=True):
        code = code_of(entry["item"])[1]
        message = f"One of these items had an invalid quantity amount, {code} expected "
        if not line.product.by_weight and entry.get("count") is None:
            return errors_response([{
                "error": {"message": message + "count", "error_code": 2012},
                "meta": {"item_code": code, "expected_param": "count",
                         "error_name": "WrongQuantityParameterError"}}])
        if line.product.by_weight and entry.get("weight") is None:
            return errors_response([{
                "error": {"message": message + "weight", "error_code": 2012},
                "meta": {"upc": code, "item_code": code, "expected_param": "weight"}}])
    return None


def ordered(product: Product, entry: JSON) -> float:
    """The count, or for a product sold by weight the weight, an items[] entry asks for."""
    quantity = entry.get("weight") if product.by_weight else entry.get("count")
    return quantity or 0  # as sent: a count stays an integer in the answer


def too_bulky(lines: list[Line], maximum: int) -> Response | None:
    count = sum(line.quantity for line in lines if line.product.bulky)
    if count <= maximum:
        return None
    return errors_response([error(  # doc 002: "Too many big and bulky items" 2023
        "The number of big and bulky items in your cart exceeds our maximum limit for a "
        f"single delivery. Please remove {excess(count - maximum)} such items from your cart "
        "to continue.", 2023)])


def too_much_beverage(lines: list[Line], maximum: float) -> Response | None:
    weight = sum(line.quantity * (1 if line.product.by_weight else line.product.unit_weight_lb)
                 for line in lines if line.product.beverage)
    if weight <= maximum:
        return None
    return errors_response([error(  # doc 002: "Too much beverage" 2026, "20lb" unspaced
        "The weight of beverages in your cart exceeds our maximum limit for a single "
        f"delivery. Please remove {excess(weight - maximum)}lb of beverages from your cart to "
        "continue.", 2026)])


def undeliverable(lines: list[Line], items: list[JSON], body: JSON) -> Response | None:
    upcs = [{"item_upc": line.product.upc} for line in lines if not line.product.deliverable]
    if not upcs:
        return None
    # doc 002: "Some items are not deliverable" 2005 {"items":[{"item_upc": ...}]}
    return errors_response([{"error": {"message": "Some items are not deliverable",
                                       "error_code": 2005}, "meta": {"items": upcs}}])
