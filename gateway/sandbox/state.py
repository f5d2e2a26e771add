"""One sandbox's state: its seed, records, clock, tokens, faults and orders.

The app routes Connect calls to these parts; the admin API reads and changes them
only through the methods below, which are also how an in-process test does the same
(`sandbox.set_faults(outage=True)` is `PUT /_sandbox/faults`).
"""

from __future__ import annotations

from typing import Any

from gateway.sandbox.auth import TOKEN_TTL, Tokens
from gateway.sandbox.clock import Clock, iso
from gateway.sandbox.faults import FaultConfig, Faults
from gateway.sandbox.fulfillment import Fulfillment
from gateway.sandbox.seed import Seed, load_seed
from gateway.sandbox.store import MAX_RECORDS, Store
from gateway.types import JSON


class State:
    """What a sandbox knows; public, for in-process tests."""

    def __init__(self, client_id: str, client_secret: str, token_ttl: float = TOKEN_TTL,
                 faults: FaultConfig | None = None, seed: Seed | None = None,
                 max_records: int = MAX_RECORDS) -> None:
        self.seed = seed or load_seed()
        self.store = Store(max_records)
        self.clock = Clock()
        self.tokens = Tokens(client_id, client_secret, token_ttl)
        self.start_faults = faults or FaultConfig()
        self.faults = Faults(self.start_faults)
        self.orders = Fulfillment(self.seed, self.clock, self.store, self.faults)

    def seed_json(self) -> JSON:
        """The seed as loaded: users, stores, catalog, holds, limits (seed.json)."""
        return self.seed.raw

    def stats(self) -> JSON:
        """The store's counts per kind, and how many orders and live tokens there are."""
        stats = self.store.stats_json()
        stats["orders"] = len(self.orders.orders)
        stats["tokens"] = self.tokens.active
        return stats

    def fault_settings(self) -> JSON:
        return self.faults.config.as_json()

    def set_faults(self, **settings: Any) -> FaultConfig:
        """`PUT /_sandbox/faults`: `sandbox.set_faults(outage=True)`; missing keys reset."""
        config = FaultConfig.from_json(settings)
        self.faults.set(config)
        return config

    def clock_view(self) -> JSON:
        """The sandbox clock's time, and how far it is ahead of real time."""
        return {"now": iso(self.clock.now()), "offset_s": self.clock.offset.total_seconds()}

    def token_settings(self) -> JSON:
        return {"ttl": self.tokens.ttl, "active": self.tokens.active}

    def set_token_ttl(self, ttl: float) -> None:
        """The lifetime of tokens issued from now on; those issued keep theirs."""
        self.tokens.ttl = ttl

    def order_views(self) -> list[JSON]:
        now = self.clock.now()
        return [order.schema_view(now) for order in self.orders.orders.values()]

    def has_order(self, order_id: str) -> bool:
        return order_id in self.orders.orders

    def order_view(self, order_id: str) -> JSON | None:
        """An order in document 004's shape, or None when there is no such order."""
        order = self.orders.orders.get(order_id)
        return None if order is None else order.schema_view(self.clock.now())

    def cancel_order(self, order_id: str, reason: str) -> bool:
        """Cancel an order there is; False when it is already delivered or canceled."""
        return self.orders.orders[order_id].cancel(self.clock.now(), reason)

    def reset(self) -> None:
        """Forget records, orders and clock; faults back to start-up; tokens stay valid."""
        self.store.reset()
        self.orders.reset()
        self.clock.reset()
        self.faults.set(self.start_faults)
