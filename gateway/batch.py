"""What the two intakes share: a batch request's envelope, its items' way into the spool
and its answer.

`POST /v1/events` (`intake.py`) and `POST /v1/orders` (`orders/intake.py`) each take one
item or `{"<batch>": [...]}`. Each checks its items by its own rules; a valid item is
then encoded, deduplicated by its key and, if new, put in the spool with the others in
one call. The answer counts what was accepted, what was a duplicate and what was
rejected and why (docs/contract.md, "Endpoints").
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from gateway.dedupe import Dedupe
from gateway.errors import ISSUES_CODE, error
from gateway.metrics import Metrics
from gateway.spool import Record, Spool, SpoolFull
from gateway.types import Error

# orjson reads JSON nested up to 1,024 levels but writes only 254: an item nested deeper
# was parsed, yet cannot be stored or forwarded as it is, so it is rejected, not a 500.
TOO_DEEP = error("is nested too deeply: at most 254 levels", ISSUES_CODE)
_INDEX = re.compile(r"\[[0-9]+\]")


class Malformed(Exception):
    """The envelope itself is wrong: 400 with a single 9999 error."""


def items_of(body: bytes, batch: str, limit: int) -> list[Any]:
    """The items of a body: one object, or a batch `{"<batch>": [1 to limit items]}`."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Malformed("body is not UTF-8 JSON") from None
    if not isinstance(parsed, dict):
        raise Malformed(f'body must be an object or {{"{batch}": [...]}}')
    if batch not in parsed:
        return [parsed]
    items = parsed[batch]
    if not isinstance(items, list) or not 1 <= len(items) <= limit:
        raise Malformed(f"{batch} must be a list of 1 to {limit} items")
    return items


def encoded(item: Any) -> bytes | None:
    """The item as the JSON bytes spooled and forwarded; None when it nests too deeply."""
    try:
        return orjson.dumps(item)
    except orjson.JSONEncodeError:
        return None


class Batch:
    """The items of one request on their way into the spool, and the answer they make."""

    __slots__ = ("_dedupe", "_fresh", "_user_agent", "accepted", "duplicates", "kind", "rejected")

    def __init__(self, kind: str, dedupe: Dedupe, user_agent: str = "") -> None:
        self.kind = kind  # the spool kind: what the forwarder sends the records to
        self.accepted = 0
        self.duplicates = 0
        self.rejected: list[dict[str, Any]] = []
        self._dedupe = dedupe
        self._user_agent = user_agent
        self._fresh: list[Record] = []  # new items, for the spool

    def reject(self, index: int, errors: list[Error]) -> None:
        self.rejected.append({"index": index, "errors": errors})

    def add(self, index: int, item: Any, key: str) -> None:
        """A valid item: a duplicate when its key was seen, else a record for the spool."""
        body = encoded(item)
        if body is None:
            self.reject(index, [TOO_DEEP])
            return
        if self._dedupe.is_duplicate(key):
            self.duplicates += 1
            return
        self._fresh.append(Record(self.kind, key, body, self._user_agent))

    async def store(self, spool: Spool) -> None:
        """Put the new records in one call; those the spool already knew are duplicates.

        On SpoolFull their keys are forgotten again, so the client's retry counts as new.
        """
        fresh = self._fresh
        if not fresh:
            return
        try:
            stored = await spool.put(fresh)
        except SpoolFull:
            self._dedupe.forget(record.key for record in fresh)
            raise
        new = sum(stored)
        self.accepted += new
        self.duplicates += len(stored) - new

    @property
    def status(self) -> int:
        return 202 if self.accepted + self.duplicates >= 1 else 400

    def answer(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}

    def count(self, metrics: Metrics) -> None:
        """Outcomes and reject keys into the metrics (item indexes folded: `items[]`)."""
        kind = self.kind
        if self.accepted:
            metrics.child(metrics.events, kind, "accepted").inc(self.accepted)
        if self.duplicates:
            metrics.child(metrics.events, kind, "duplicate").inc(self.duplicates)
        if not self.rejected:
            return
        metrics.child(metrics.events, kind, "rejected").inc(len(self.rejected))
        for rejected in self.rejected:
            for err in rejected["errors"]:
                key = _INDEX.sub("[]", err.get("meta", {}).get("key", ""))
                metrics.child(metrics.rejects, key, str(err["error"]["error_code"])).inc()
