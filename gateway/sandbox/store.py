"""What the sandbox accepted, in order, and the counts a test asserts on.

Recording is an append and a set lookup: it must cost far less than forwarding.
Records keep the parsed body and the raw headers; they are turned into JSON only
when someone inspects them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.catalog import ad_data
from gateway.orders.rules import order_key
from gateway.types import JSON

KINDS = ("track", "order_log", "delivery")
MAX_RECORDS = 1_000_000  # about 2 GB of parsed events; past it, records are counted only
DUPLICATE_SAMPLE = 20

# Headers a record never keeps: the token is a secret, the rest is transport noise.
UNRECORDED = frozenset({b"authorization", b"cookie", b"content-length", b"host", b"connection"})


def track_id(body: JSON) -> str | None:
    found = ad_data(body)
    event_id = found.data.get("event_id") if found else None
    return event_id if isinstance(event_id, str) else None


def order_log_id(body: JSON) -> str | None:
    # The gateway's own order key: order_id plus updated_at_utc, so an update of an
    # order is news and the same update sent twice is a duplicate.
    return order_key(body)


def delivery_id(body: JSON) -> str | None:
    order_id = body.get("order_id")
    return order_id if isinstance(order_id, str) else None


# The id each kind is deduplicated by: event_id for track, order id for orders.
ID_OF: dict[str, Callable[[JSON], str | None]] = {
    "track": track_id,
    "order_log": order_log_id,
    "delivery": delivery_id,
}


@dataclass(slots=True)
class Record:
    seq: int
    kind: str
    body: JSON
    raw_headers: list[tuple[bytes, bytes]]
    received_at: float

    def as_json(self) -> JSON:
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in self.raw_headers
            if name not in UNRECORDED
        }
        return {"seq": self.seq, "kind": self.kind, "received_at": self.received_at,
                "body": self.body, "headers": headers}


@dataclass(slots=True)
class KindStats:
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    ids: set[str] = field(default_factory=set)
    duplicate_ids: list[str] = field(default_factory=list)  # the first few, for debugging

    def as_json(self) -> JSON:
        return {"accepted": self.accepted, "rejected": self.rejected,
                "distinct_ids": len(self.ids), "duplicates": self.duplicates}

    def seen(self, record_id: str) -> None:
        if record_id not in self.ids:
            self.ids.add(record_id)
            return
        self.duplicates += 1
        if len(self.duplicate_ids) < DUPLICATE_SAMPLE:
            self.duplicate_ids.append(record_id)


class Store:
    """Accepted records in arrival order, and their counts.

    Accepting only appends; the counts by id are folded in when someone asks for them,
    so the hot path never pays for them.
    """

    def __init__(self, max_records: int = MAX_RECORDS) -> None:
        self.max_records = max_records
        self.records: list[Record] = []
        self.by_kind: dict[str, list[Record]] = {}  # the same records, per kind, for paging
        self.unrecorded = 0  # accepted past `max_records`: counted, not kept
        self._stats: dict[str, KindStats] = {}
        self._counted = 0
        self.reset()

    def accept(self, kind: str, body: JSON, raw_headers: list[tuple[bytes, bytes]]) -> None:
        record = Record(len(self.records) + self.unrecorded, kind, body, raw_headers, time.time())
        if len(self.records) < self.max_records:
            self.records.append(record)
            self.by_kind[kind].append(record)
            return
        self.unrecorded += 1
        self.count(record)

    def reject(self, kind: str) -> None:
        self._stats[kind].rejected += 1

    @property
    def stats(self) -> dict[str, KindStats]:
        """The counts per kind, up to the last record accepted."""
        for record in self.records[self._counted:]:
            self.count(record)
        self._counted = len(self.records)
        return self._stats

    def count(self, record: Record) -> None:
        stats = self._stats[record.kind]
        stats.accepted += 1
        record_id = ID_OF[record.kind](record.body)
        if record_id is not None:
            stats.seen(record_id)

    def received(self, kind: str | None, offset: int = 0, limit: int | None = None) -> list[JSON]:
        records = self.records if kind is None else self.by_kind[kind]
        end = None if limit is None else offset + limit
        return [record.as_json() for record in records[offset:end]]

    def stats_json(self) -> dict[str, Any]:
        """Counts per kind, and a sample of the ids seen twice or more."""
        stats = self.stats
        answer: dict[str, Any] = {kind: kind_stats.as_json() for kind, kind_stats in stats.items()}
        answer["duplicate_ids"] = {kind: s.duplicate_ids for kind, s in stats.items()
                                   if s.duplicate_ids}
        answer["unrecorded"] = self.unrecorded
        return answer

    def reset(self) -> None:
        self.records = []
        self.by_kind = {kind: [] for kind in KINDS}
        self.unrecorded = 0
        self._stats = {kind: KindStats() for kind in KINDS}
        self._counted = 0
