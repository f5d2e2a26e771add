"""The embedded spool: one SQLite file shared by every worker process of one machine.

`SqliteSpool` is the Spool protocol over that file: each process writes through its own writer
thread (writer.py: group commit, one fsync shared by the calls queued meanwhile), reads on a
connection of its own (a WAL reader does not wait for the writer), decides dedupe against the
key log (keylog.py) and sees other processes' puts and expired leases by polling, cheaply.
While this process's forwarder is claiming, a put stores its records already leased to it
and hands them over in memory: they are not read back out of the file, and the file sees
one write less per put (docs/performance.md, "The spool"). A put's records are one row of the
file (tables.py), so a beacon of twenty events costs the file one insert and one delete.
A put is refused (SpoolFull) before it writes anything when the disk is nearly full, the
spool is at `max_records`, or the file stays locked past `busy_timeout`: intake answers 503.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import shutil
import socket
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from gateway.settings import ConfigError
from gateway.spool import Claimed, DeadLetter, Record, SpoolFull
from gateway.spool.sqlite import tables
from gateway.spool.sqlite.keylog import KeyLog
from gateway.spool.sqlite.schema import connect, open_writer
from gateway.spool.sqlite.writer import Writer

T = TypeVar("T")

MIN_FREE_BYTES: Final = 100 * 1024 * 1024
DISK_CHECK_INTERVAL: Final = 1.0  # statvfs at most once a second
BUSY_TIMEOUT: Final = 10.0  # seconds a transaction waits for another process's write lock
HAND_OVER_MAX: Final = 4096  # records leased on put and not yet claimed, at most
HUNGRY_FOR: Final = 1.0  # seconds since this process's last claim: puts are handed over
FILE_EVERY: Final = 4  # one claim in this many takes a part from the file, records in hand or not


def _local_path(path: str) -> str:
    """`open_spool` passes what follows `sqlite://`: `/./x.db` (the default
    `sqlite:///./ian-spool.db`) means `./x.db` in the working directory, not `/x.db`."""
    return path[1:] if path.startswith(("/./", "/../")) else path


class SqliteSpool:
    def __init__(
        self,
        path: str,
        max_records: int,
        dedupe_ttl: float,
        *,
        synchronous: str = "FULL",
        lease: float = 30.0,
        linger: float = 0.0,
        max_batch: int = 1000,
        poll_interval: float = 0.05,
        min_free_bytes: int = MIN_FREE_BYTES,
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be NORMAL or FULL")
        self.path = _local_path(path)
        self._max = max_records
        self._ttl = dedupe_ttl
        self._synchronous = synchronous
        self._lease = lease
        self._linger = linger
        self._max_batch = max_batch
        self._poll = poll_interval
        self._min_free = min_free_bytes
        self._busy_timeout = busy_timeout
        self._dir = os.path.dirname(os.path.abspath(path))
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._writer: Writer | None = None
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self._wakeup = asyncio.Event()
        self._closed = False
        self._disk_checked = 0.0
        self._disk_full = False
        self._unread_acks = False  # acks noted since this process's last read
        self._acks_written: asyncio.Future[None] | None = None  # when those before it are
        # Records put leased to this process, for its next claim: (lease end, the record).
        self._handed: deque[tuple[float, Claimed]] = deque()
        self._claimed_at = -math.inf  # when this process's forwarder last claimed
        self._claims = 0
        self._next_look = 0.0  # while records are handed over: when to look in the file too

    @property
    def commits(self) -> int:
        """Transactions the writer committed; tests and benchmarks read it."""
        return 0 if self._writer is None else self._writer.commits

    # -- life cycle --------------------------------------------------------

    async def start(self) -> None:
        if self._writer is not None:
            return
        try:
            conn = await asyncio.to_thread(
                open_writer, self.path, self._synchronous, self._busy_timeout
            )
            self._reader = await asyncio.to_thread(
                connect, self.path, self._synchronous, self._busy_timeout
            )
        except sqlite3.Error as exc:
            raise ConfigError(f"IAN_SPOOL: cannot open {self.path!r}: {exc}") from exc
        keys = KeyLog()
        self._writer = Writer(
            conn,
            lambda conn, calls, leases: tables.store(conn, calls, leases, keys, self._owner,
                                                     self._max, self._ttl),
            keys,
            linger=self._linger,
            max_batch=self._max_batch,
            purge_interval=max(min(60.0, self._ttl), 0.05),
        )
        self._writer.start()

    async def close(self) -> None:
        """Commit what is queued, hand this process's leases back, stop the writer.

        Close after the forwarder has stopped: a record still in flight here would be
        claimable by another worker at once.
        """
        if self._writer is None or self._closed:
            return
        writer = self._writer
        release = writer.call(lambda conn: tables.release_leases(conn, self._owner))
        self._closed = True
        self._handed.clear()  # their leases are released with the others'
        writer.stop()
        self._wakeup.set()
        try:
            await release
        finally:
            await asyncio.to_thread(writer.join)
            if self._reader is not None:
                self._reader.close()

    def _usable(self) -> Writer:
        if self._writer is None:
            raise RuntimeError("SqliteSpool.start() was not awaited")
        if self._closed:
            raise RuntimeError("the spool is closed")
        return self._writer

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        return self._usable().call(work)

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """On the reading connection, after the acks this process made before it."""
        if self._reader is None:
            raise RuntimeError("SqliteSpool.start() was not awaited")
        reader = self._reader
        await self._acks_committed()

        def run() -> T:
            with self._read_lock:
                return work(reader)

        return await asyncio.to_thread(run)

    async def _acks_committed(self) -> None:
        """Before a read: wait until the acks this process queued so far are committed."""
        if self._unread_acks:
            self._unread_acks = False
            self._acks_written = self._write(lambda _: None)
        if self._acks_written is not None:
            await asyncio.shield(self._acks_written)  # shared by concurrent reads

    # -- the Spool protocol ------------------------------------------------

    async def put(self, records: Sequence[Record]) -> list[bool]:
        if not records:
            return []
        if self._disk_nearly_full():
            raise SpoolFull(retry_after=5)
        lease_until = self._hand_over_until()
        try:
            ids = await self._usable().put(records, lease_until)
        except sqlite3.Error as exc:
            # Locked past busy_timeout, disk I/O: intake answers 503, never 500.
            raise SpoolFull() from exc
        if lease_until:
            self._handed.extend((lease_until, Claimed(record_id, record, 0))
                                for record_id, record in zip(ids, records, strict=True)
                                if record_id)
        if any(ids):
            self._wakeup.set()
        return [record_id != "" for record_id in ids]

    def _hand_over_until(self) -> float:
        """When a put's records' lease ends if they are to be handed over, else 0: while this
        process's forwarder claims (within HUNGRY_FOR) and has room in hand."""
        if (time.monotonic() - self._claimed_at < HUNGRY_FOR
                and len(self._handed) < HAND_OVER_MAX):
            return time.time() + self._lease
        return 0.0

    def _disk_nearly_full(self) -> bool:
        now = time.monotonic()
        if now - self._disk_checked >= DISK_CHECK_INTERVAL:
            self._disk_checked = now
            self._disk_full = shutil.disk_usage(self._dir).free < self._min_free
        return self._disk_full

    async def claim(self, limit: int, wait: float) -> list[Claimed]:
        self._claimed_at = time.monotonic()
        self._claims += 1
        # Handed-over records first; the file is looked at when they fall short of the limit
        # (not more often than polled), and for a part of every FILE_EVERY-th claim, so an
        # older backlog keeps moving while fresh records flow.
        reserve = max(1, limit // FILE_EVERY) if self._claims % FILE_EVERY == 0 else 0
        deadline = time.monotonic() + wait
        look = True  # first pass, or woken by a put here: go straight to the write lock
        while not self._closed:
            self._wakeup.clear()
            handed = self._take_handed(limit - reserve)
            if len(handed) == limit or (
                    handed and not reserve and time.monotonic() < self._next_look):
                return handed
            self._next_look = time.monotonic() + self._poll
            if (look or await self._read(tables.any_due)) and not self._closed:
                claimed = await self._from_file(limit - len(handed))
                if claimed or handed:
                    return handed + claimed
            elif handed:
                return handed
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            # Other processes' puts and expired leases are seen by polling, cheaply (a read).
            look = await self._sleep(min(remaining, self._poll))
        return []

    async def _from_file(self, limit: int) -> list[Claimed]:
        """Up to `limit` due records leased from the file. A row is leased whole: its records
        past the limit are kept in hand for the next claims, leased as handed-over ones are."""
        lease_until = time.time() + self._lease
        claimed = await self._write(functools.partial(
            tables.lease, owner=self._owner, seconds=self._lease, limit=limit))
        self._handed.extendleft((lease_until, extra) for extra in reversed(claimed[limit:]))
        return claimed[:limit]

    def _take_handed(self, limit: int) -> list[Claimed]:
        """Up to `limit` records handed over by puts. One whose lease is half gone is left
        to the file: it is claimed from there, by anyone, once its lease ends."""
        handed = self._handed
        taken: list[Claimed] = []
        fresh_after = time.time() + self._lease / 2
        while handed and len(taken) < limit:
            lease_until, claimed = handed.popleft()
            if lease_until > fresh_after:
                taken.append(claimed)
        return taken

    async def _sleep(self, seconds: float) -> bool:
        """Wait for a put in this process, or `seconds`; True when woken."""
        try:
            await asyncio.wait_for(self._wakeup.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def ack(self, claimed: Claimed) -> None:
        # Nobody waits for an ack: until its commit the lease hides the record, and a crash
        # before it sends the record again when the lease ends, as a crash before any ack would.
        self._usable().ack(claimed.id)
        self._unread_acks = True

    async def retry(self, claimed: Claimed, delay: float) -> None:
        await self._write(lambda conn: tables.postpone(conn, self._owner, claimed, delay))
        if delay <= 0:
            self._wakeup.set()

    async def dead(self, claimed: Claimed, status: int, answer: str) -> None:
        await self._write(lambda conn: tables.bury(conn, self._owner, claimed, status, answer))

    async def expedite(self) -> int:
        return await self._write(tables.expedite)

    async def depth(self) -> int:
        return await self._read(tables.depth)

    async def oldest_age(self) -> float:
        return await self._read(tables.oldest_age)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return await self._read(lambda conn: tables.dead_letters(conn, limit))

    async def replay(self, ids: Sequence[str] | None = None) -> int:
        moved = await self._write(lambda conn: tables.replay(conn, ids))
        if moved:
            self._wakeup.set()
        return moved

    async def purge(self, ids: Sequence[str] | None = None) -> int:
        return await self._write(lambda conn: tables.purge(conn, ids))
