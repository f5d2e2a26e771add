"""The spool: where an accepted event waits, safe, until the upstream has it.

Intake puts records and answers 202 once `put` returns; the forwarder claims
due records, and acks, retries or dead-letters each. Backends share this
interface: `memory:` (tests), `sqlite:///path` (embedded default) and
`redis://…` (many instances). `open_spool` picks one from `IAN_SPOOL`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol, TypeVar

A = TypeVar("A")  # a backend's answer for one record

# What a record is forwarded to: `track` -> /v2/ian/track, `order_log` -> /v2/ian/order/log.
KINDS = ("track", "order_log")
# order-log doc: orders are sent within three days of creation. An order's key is kept that
# long, so a re-send is a duplicate for as long as it could still be forwarded (after that
# it is too old and goes to the dead letters: forward.too_old), not after IAN_DEDUPE_TTL.
ORDER_MEMORY = 3 * 24 * 3600.0


def remember_for(kind: str, dedupe_ttl: float) -> float:
    """Seconds a record's dedupe key is kept: `IAN_DEDUPE_TTL`, or three days for an order."""
    return max(dedupe_ttl, ORDER_MEMORY) if kind == "order_log" else dedupe_ttl


class SpoolFull(Exception):
    """The spool cannot take more now; intake answers 503 with Retry-After."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__("spool full")
        self.retry_after = retry_after


# Records and claims are named tuples: built for every event, they cost a third of a frozen
# dataclass, whose __init__ sets each field through object.__setattr__ (docs/performance.md,
# "Settings chosen by measurement").
class Record(NamedTuple):
    """One accepted event or order, exactly as it will be sent upstream."""

    kind: str
    key: str  # the dedupe key: `event_id` for track, order_id@updated for order_log
    body: bytes  # the enriched JSON body
    user_agent: str  # the shopper's user agent, sent as `User-Agent` upstream


class Claimed(NamedTuple):
    """A record leased to one forwarder until it acks, retries or dead-letters it."""

    id: str
    record: Record
    attempts: int  # upstream attempts made before this claim


class DeadLetter(NamedTuple):
    id: str
    record: Record
    status: int  # the upstream's HTTP status (0: not sent, e.g. too old)
    answer: str  # the upstream's answer body, or why it was not sent
    attempts: int
    failed_at: float  # unix time


def admit(calls: Sequence[Sequence[Record]], room: int) -> list[bool]:
    """Which of the put calls a backend stores together fit in `room` more records, in order.

    A call that does not fit takes none of the room: it stores nothing and raises SpoolFull.
    """
    fits = []
    for records in calls:
        fits.append(len(records) <= room)
        room -= len(records) if fits[-1] else 0
    return fits


def per_call(calls: Sequence[Sequence[Record]], fits: Sequence[bool],
             answers: Iterable[A]) -> list[list[A] | BaseException]:
    """Each call's answer: its share of `answers` (one per admitted record), or SpoolFull
    to raise."""
    each = iter(answers)
    return [[next(each) for _ in records] if fit else SpoolFull()
            for records, fit in zip(calls, fits, strict=True)]


class Spool(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None:
        """Flush what is pending and release resources; records not acked stay for next start."""

    async def put(self, records: Sequence[Record]) -> list[bool]:
        """Store records durably; answer, per record, True if new, False if its key was seen.

        Raises SpoolFull when over capacity; then nothing of the call was stored.
        """

    async def claim(self, limit: int, wait: float) -> list[Claimed]:
        """Up to `limit` due records, leased to this forwarder; waits up to `wait` s for one."""

    async def ack(self, claimed: Claimed) -> None:
        """The upstream took it: delete it."""

    async def retry(self, claimed: Claimed, delay: float) -> None:
        """Not now: release it, due again after `delay` seconds, attempts + 1."""

    async def dead(self, claimed: Claimed, status: int, answer: str) -> None:
        """Never: move it to the dead letters with the upstream's answer."""

    async def expedite(self) -> int:
        """Make every waiting retry due now (the upstream is back); answer how many."""

    async def depth(self) -> int:
        """Records waiting or in flight (not dead)."""

    async def oldest_age(self) -> float:
        """Seconds the oldest waiting record has waited; 0 when empty."""

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...

    async def replay(self, ids: Sequence[str] | None = None) -> int:
        """Move dead letters (all, or these ids) back to the queue; answer how many."""

    async def purge(self, ids: Sequence[str] | None = None) -> int:
        """Delete dead letters (all, or these ids); answer how many."""


def open_spool(url: str, max_records: int, dedupe_ttl: float, lease: float = 30.0) -> Spool:
    """The backend `IAN_SPOOL` names; `lease`: seconds a claimed record stays hidden."""
    if url.startswith("memory:"):
        from gateway.spool.memory import MemorySpool

        return MemorySpool(max_records=max_records, dedupe_ttl=dedupe_ttl)
    if url.startswith("sqlite://"):
        from gateway.spool.sqlite import SqliteSpool

        sqlite_spool: Spool = SqliteSpool(
            url.removeprefix("sqlite://"), max_records, dedupe_ttl, lease=lease
        )
        return sqlite_spool
    if url.startswith(("redis://", "rediss://")):
        from gateway.spool.redis import RedisSpool

        redis_spool: Spool = RedisSpool(url, max_records, dedupe_ttl, lease=lease)
        return redis_spool
    raise ValueError(f"IAN_SPOOL: unknown spool {url!r}")
