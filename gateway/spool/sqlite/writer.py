"""The SQLite spool's writer: one thread per process runs every write, in group commits.

Calls queued while a commit is in flight are run together in one `BEGIN IMMEDIATE`
transaction, so they share its fsync (`synchronous=FULL`); waiting (`linger`) for more bought
latency when idle and nothing under load (docs/performance.md). `BEGIN IMMEDIATE`
takes the write lock up front, so another process's write is waited for by `busy_timeout`, not
failed on a read-to-write upgrade (sqlite.org: "Transaction"). A caller's future is resolved
only after COMMIT, so intake answers 202 only for committed events; a failure rolls the batch
back and every call in it raises. Acks are the one call nobody waits for: those noted in one
turn of the event loop are queued as one `Acks` before any later call, and the queue is first
in, first out, so whatever is called after an ack sees it. The event loop never blocks on
sqlite or fsync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from gateway.spool import Record
from gateway.spool.sqlite import tables
from gateway.spool.sqlite.keylog import KeyLog
from gateway.spool.sqlite.schema import roll_back

log = logging.getLogger(__name__)

T = TypeVar("T")

Outcome = Any | BaseException  # a call's answer, or what it raises
# The puts of a batch and each one's lease end (0: not leased) -> each one's record ids.
Store = Callable[[sqlite3.Connection, list[Sequence[Record]], list[float]],
                 list[list[str] | BaseException]]


@dataclass(slots=True)
class Put:
    """One `put` call: the batch's puts are stored together. Answered with each record's id,
    "" for a duplicate; stored leased to this process until `lease_until` if not 0."""

    records: Sequence[Record]
    lease_until: float
    future: asyncio.Future[list[str]]
    loop: asyncio.AbstractEventLoop


@dataclass(slots=True)
class Acks:
    """The acks noted in one turn of the event loop: settled together, answered to nobody."""

    ids: list[str]


@dataclass(slots=True)
class Call(Generic[T]):
    """Any other call: its work, run in turn inside the batch's transaction."""

    work: Callable[[sqlite3.Connection], T]
    future: asyncio.Future[T]
    loop: asyncio.AbstractEventLoop


Op = Put | Acks | Call[Any]

_STOP: Final = object()


def _size(op: Op) -> int:
    return max(len(op.records), 1) if isinstance(op, Put) else 1


def _resolve(answers: list[tuple[asyncio.Future[Any], Outcome]]) -> None:
    for future, outcome in answers:
        if future.done():  # the caller was cancelled; its work is committed all the same
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _deliver(batch: Sequence[Op], outcomes: Sequence[Outcome]) -> None:
    """Wake each caller's loop once per batch, not once per call."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Outcome]]] = {}
    for op, outcome in zip(batch, outcomes, strict=True):
        if not isinstance(op, Acks):
            by_loop.setdefault(op.loop, []).append((op.future, outcome))
    for loop, answers in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody to tell
            loop.call_soon_threadsafe(_resolve, answers)


class Writer:
    def __init__(self, conn: sqlite3.Connection, store: Store, keys: KeyLog, *,
                 linger: float, max_batch: int, purge_interval: float) -> None:
        self._conn = conn
        self._store = store
        self._keys = keys
        self._linger = linger
        self._max_batch = max_batch
        self._purge_interval = purge_interval  # how often expired dedupe keys are forgotten
        self._keys_purged = time.monotonic()
        self._queue: queue.SimpleQueue[Op | object] = queue.SimpleQueue()
        self._acks: list[str] = []  # noted in this turn of the event loop, not yet queued
        self._thread = threading.Thread(target=self._loop, name="spool-writer", daemon=True)
        self.commits = 0  # transactions committed; tests and benchmarks read it

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Commit what is queued, then end the thread (`join` waits for it)."""
        self._queue.put(_STOP)

    def join(self) -> None:
        self._thread.join()

    # -- queueing, on the event loop ---------------------------------------

    def call(self, work: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        op = Call(work, loop.create_future(), loop)
        self._enqueue(op)
        return op.future

    def put(self, records: Sequence[Record], lease_until: float) -> asyncio.Future[list[str]]:
        loop = asyncio.get_running_loop()
        op = Put(records, lease_until, loop.create_future(), loop)
        self._enqueue(op)
        return op.future

    def ack(self, record_id: str) -> None:
        """Note the ack; the turn's acks go to the writer together, before any later call."""
        if not self._acks:
            asyncio.get_running_loop().call_soon(self._queue_acks)
        self._acks.append(record_id)

    def _enqueue(self, op: Op) -> None:
        self._queue_acks()  # first: a call made after an ack sees it
        self._queue.put(op)

    def _queue_acks(self) -> None:
        if self._acks:
            self._queue.put(Acks(self._acks))
            self._acks = []

    # -- the thread --------------------------------------------------------

    def _loop(self) -> None:
        try:
            while True:
                batch, stop = self._gather()
                if batch:
                    self._commit(batch)
                if stop:
                    return
                self._housekeeping()
        finally:
            self._conn.close()

    def _gather(self) -> tuple[list[Op], bool]:
        """What is queued now (after the first, waiting at most `linger`), up to `max_batch`."""
        try:
            first = self._queue.get(timeout=self._until_housekeeping())
        except queue.Empty:
            return [], False
        if first is _STOP:
            return [], True
        assert isinstance(first, Put | Acks | Call)
        batch: list[Op] = [first]
        size = _size(first)
        deadline = time.monotonic() + self._linger
        while size < self._max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(remaining > 0, max(remaining, 0.0))
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            assert isinstance(item, Put | Acks | Call)
            batch.append(item)
            size += _size(item)
        return batch, False

    def _commit(self, batch: list[Op]) -> None:
        """One transaction for the batch; answers are delivered only once it is committed."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            outcomes = self._apply(batch)
            conn.execute("COMMIT")
        except Exception as exc:  # the writer thread must outlive any failure
            log.error("spool transaction failed: %s", exc)
            roll_back(conn)
            self._keys.settle(committed=False)
            _deliver(batch, [exc] * len(batch))
            return
        self._keys.settle(committed=True)
        self.commits += 1
        _deliver(batch, outcomes)

    def _apply(self, batch: list[Op]) -> list[Outcome]:
        """The batch's acks together, its puts together (room made by the acks counts),
        then every other call in turn."""
        tables.settle(self._conn, [i for op in batch if isinstance(op, Acks) for i in op.ids])
        puts = [op for op in batch if isinstance(op, Put)]
        stored = iter(self._store(self._conn, [op.records for op in puts],
                                  [op.lease_until for op in puts]))
        outcomes: list[Outcome] = []
        for op in batch:
            if isinstance(op, Put):
                outcomes.append(next(stored))
            elif isinstance(op, Call):
                outcomes.append(op.work(self._conn))
            else:
                outcomes.append(None)
        return outcomes

    def _until_housekeeping(self) -> float:
        return max(self._keys_purged + self._purge_interval - time.monotonic(), 0.0)

    def _housekeeping(self) -> None:
        """Forget expired dedupe keys now and then, a chunk per pass while the queue is idle."""
        if time.monotonic() - self._keys_purged < self._purge_interval:
            return
        if self._keys.forget_expired(self._conn, time.time()):
            self._keys_purged = time.monotonic()
