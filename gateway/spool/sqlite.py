"""The embedded spool: one SQLite file shared by every worker process of one machine.

Durability. The file is in WAL mode with `synchronous=FULL`: a commit returns
only after the WAL is fsynced, so an event answered 202 survives a process
crash AND a power loss or kernel panic. With `synchronous=NORMAL` a process
crash still loses nothing (the WAL is in the OS page cache), but a power loss
or kernel panic may roll back what was committed since the WAL was last
synced, at a checkpoint: events already answered 202
(https://www.sqlite.org/pragma.html#pragma_synchronous,
https://www.sqlite.org/wal.html). FULL costs one fsync per commit; group
commit shares it among every `put` waiting at that moment. Measured with
loadtests/spool_bench.py (2 cores shared with other work, so ranges): under
200 concurrent putters FULL and NORMAL both reach 5-10k puts/s with about 180
records per commit, bound by CPU, not the disk; without group commit FULL
manages 150-650 puts/s. What FULL costs is latency when idle: a lone put
waits one fsync (0.5-9 ms on this disk, 0.25 ms under NORMAL), which a
fire-and-forget beacon never sees. An accepted event is money: FULL.

Group commit. All writes (put, claim, ack, retry, dead, replay, purge) are
queued to one writer thread per process, which runs what is queued (up to
`max_batch` records, waiting at most `linger` s for more; by default 0: a
batch forms while the previous commit is in flight, and waiting longer bought
nothing measurable under load but latency when idle) in one
`BEGIN IMMEDIATE` transaction. The puts of a batch are stored together (one
multi-row insert of their new keys, one of their records), since per-statement
overhead, not fsync, is what a put costs once commits are shared. A put that
would pass `max_records` is refused (SpoolFull) before it writes anything, so
it undoes nothing of the others; any other failure rolls the batch back and
every call in it raises. A caller's future is resolved only after COMMIT, so
intake answers 202 only for committed events. The event loop never blocks on
sqlite or fsync.

Acks are the one call nobody waits for: `ack` notes the id and returns, so a
forwarder's worker takes its next record at once. The acks noted in one turn
of the event loop go to the writer as one call, one `DELETE` (measured with
the bench's forwarder alone, 64 in flight: ~2,560 -> ~2,740 events/s, 25%
fewer commits).
Until its commit the lease hides the record; a crash before it sends the
record again when the lease ends, as a crash between the upstream's answer and
any ack would. Noted acks go to the writer before any later call, and its
queue is first in, first out, so calls made after an ack (put, claim, close)
see it, and this process's reads (`_read`: depth, oldest age, dead letters)
wait for the acks it made before them.

Several processes. `BEGIN IMMEDIATE` takes the write lock up front, so a busy
database is waited for by `busy_timeout` instead of failing on a read-to-write
upgrade (https://www.sqlite.org/lang_transaction.html). `claim` leases rows to
this process (lease owner + lease end, kept in `due_at`): a row is due when
`due_at <= now`, so a live lease hides it and an expired one (a dead worker)
makes it claimable again.

Dedupe keys. The writer decides which records are new against the keys it
knows in memory (`KnownKeys`, each until its expiry: `dedupe_ttl`, an order's
three days: `remember_for`), and appends the new ones to `key_log`. Before
deciding, under the write lock, it learns the rows logged since it last looked,
so a key is refused by every process of the machine, and after a restart (the
first put reads the whole log: about 3 s per million keys here). The keys of
a transaction are known only once it commits. A unique index on the keys
would cost a random page per key per commit: put CPU 47 -> 27 us per event
with a million keys remembered, 32 -> 26 with none (20-event puts, 10 in
flight, the two designs measured alike; `loadtests/spool_bench.py --remembered
N` measures this one). Memory is ~100 bytes per key per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import queue
import shutil
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import orjson

from gateway.settings import ConfigError
from gateway.spool import Claimed, DeadLetter, Record, SpoolFull, admit, per_call, remember_for
from gateway.spool.keys import KnownKeys

log = logging.getLogger(__name__)

T = TypeVar("T")

# `due_at`: when a waiting row is due, or when a leased row's lease ends.
SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS records (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        body BLOB NOT NULL,
        user_agent TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        enqueued_at REAL NOT NULL,
        due_at REAL NOT NULL,
        lease_owner TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS records_due ON records (due_at)",
    """CREATE INDEX IF NOT EXISTS records_lease ON records (lease_owner)
       WHERE lease_owner IS NOT NULL""",
    # Dedupe keys, appended as they are first seen: the spool decides against its memory of
    # them (`KnownKeys`), caught up from here. AUTOINCREMENT: an id is never used twice, even
    # once every row is purged, so "rows after the last one learned" misses none.
    """CREATE TABLE IF NOT EXISTS key_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        expires_at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS key_log_expiry ON key_log (expires_at)",
    # Earlier versions kept the keys in a unique index (`keys`): moved to the log.
    """CREATE TABLE IF NOT EXISTS keys (
        key TEXT PRIMARY KEY,
        expires_at REAL NOT NULL
    ) WITHOUT ROWID""",
    "INSERT INTO key_log (key, expires_at) SELECT key, expires_at FROM keys ORDER BY expires_at",
    "DROP TABLE keys",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        body BLOB NOT NULL,
        user_agent TEXT NOT NULL,
        status INTEGER NOT NULL,
        answer TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        failed_at REAL NOT NULL
    )""",
    # count(*) walks a whole index; the capacity check runs on every put. The writer keeps
    # the count, one update per statement that adds or deletes records (`_count`).
    "CREATE TABLE IF NOT EXISTS counts (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID",
    "INSERT OR IGNORE INTO counts VALUES ('records', (SELECT count(*) FROM records))",
    # Earlier versions kept it with a trigger per row (a third of an ack's cost): gone.
    "DROP TRIGGER IF EXISTS records_counted_in",
    "DROP TRIGGER IF EXISTS records_counted_out",
)

COUNT_RECORDS: Final = "SELECT n FROM counts WHERE name = 'records'"
ADD_TO_COUNT: Final = "UPDATE counts SET n = n + ? WHERE name = 'records'"
# `{values}`: `(?, ?)` per key.
LOG_KEYS: Final = "INSERT INTO key_log (key, expires_at) VALUES {values}"
KEYS_SINCE: Final = "SELECT id, key, expires_at FROM key_log WHERE id > ? ORDER BY id"
INSERT_RECORDS: Final = """
    INSERT INTO records (kind, key, body, user_agent, attempts, enqueued_at, due_at)
    VALUES {values}"""
CLAIM: Final = """
    UPDATE records SET lease_owner = ?, due_at = ?
    WHERE id IN (SELECT id FROM records WHERE due_at <= ? ORDER BY due_at, id LIMIT ?)
    RETURNING id, kind, key, body, user_agent, attempts"""
ANY_DUE: Final = "SELECT 1 FROM records WHERE due_at <= ? LIMIT 1"
ACK_MANY: Final = "DELETE FROM records WHERE id IN (SELECT value FROM json_each(?))"
RETRY: Final = """
    UPDATE records SET due_at = ?, attempts = attempts + 1, lease_owner = NULL
    WHERE id = ? AND lease_owner = ?"""
BURY: Final = """
    INSERT INTO dead_letters (id, kind, key, body, user_agent, status, answer, attempts, failed_at)
    SELECT id, kind, key, body, user_agent, ?, ?, attempts + 1, ?
    FROM records WHERE id = ? AND lease_owner = ?"""
# Waiting retries (not leased ones) due now: the upstream is back.
EXPEDITE: Final = "UPDATE records SET due_at = ? WHERE lease_owner IS NULL AND due_at > ?"
RELEASE_LEASES: Final = "UPDATE records SET due_at = ?, lease_owner = NULL WHERE lease_owner = ?"
OLDEST: Final = "SELECT enqueued_at FROM records ORDER BY id LIMIT 1"
DEAD_LETTERS: Final = """
    SELECT id, kind, key, body, user_agent, status, answer, attempts, failed_at
    FROM dead_letters ORDER BY failed_at, id LIMIT ?"""
REPLAY_ALL: Final = """
    INSERT INTO records (kind, key, body, user_agent, attempts, enqueued_at, due_at)
    SELECT kind, key, body, user_agent, 0, ?, ? FROM dead_letters ORDER BY id"""
REPLAY_ONE: Final = """
    INSERT INTO records (kind, key, body, user_agent, attempts, enqueued_at, due_at)
    SELECT kind, key, body, user_agent, 0, ?, ? FROM dead_letters WHERE id = ?"""
PURGE_ALL: Final = "DELETE FROM dead_letters"
PURGE_ONE: Final = "DELETE FROM dead_letters WHERE id = ?"
FORGET_EXPIRED_KEYS: Final = """
    DELETE FROM key_log WHERE id IN (SELECT id FROM key_log WHERE expires_at <= ? LIMIT ?)"""

MIN_FREE_BYTES: Final = 100 * 1024 * 1024
DISK_CHECK_INTERVAL: Final = 1.0  # statvfs at most once a second
BUSY_TIMEOUT: Final = 10.0  # seconds a transaction waits for another process's write lock
KEY_PURGE_CHUNK: Final = 10_000  # expired keys deleted per transaction, so no lock is held long
KEYS_PER_STATEMENT: Final = 400  # 2 variables each, far below SQLITE_MAX_VARIABLE_NUMBER
RECORDS_PER_STATEMENT: Final = 100  # 6 variables each
ACKS_PER_STATEMENT: Final = 1000  # ids in one JSON array parameter


@functools.lru_cache(maxsize=32)
def _log_keys(count: int) -> str:
    return LOG_KEYS.format(values=", ".join(["(?, ?)"] * count))


@functools.lru_cache(maxsize=32)
def _insert_records(count: int) -> str:
    return INSERT_RECORDS.format(values=", ".join(["(?, ?, ?, ?, 0, ?, ?)"] * count))


@dataclass(slots=True)
class _Op(Generic[T]):
    """One spool call waiting for the writer: its work and where to deliver the answer."""

    work: Callable[[sqlite3.Connection], T] | None  # None: a put of `records`, or acks
    records: Sequence[Record]
    future: asyncio.Future[T] | None  # None: acks, which nobody waits for
    loop: asyncio.AbstractEventLoop | None
    acks: list[int] | None = None  # the record ids the acks delete

    @property
    def size(self) -> int:
        return max(len(self.records), 1)


Outcome = tuple[Any, BaseException | None]  # a call's answer, or what it raises

_STOP: Final = object()


def _resolve(answers: list[tuple[asyncio.Future[Any], Outcome]]) -> None:
    for future, (value, error) in answers:
        if future.done():  # the caller was cancelled; its work is committed all the same
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


def _deliver(batch: Sequence[_Op[Any]], outcomes: Sequence[Outcome]) -> None:
    """Wake each caller's loop once per batch, not once per call."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Outcome]]] = {}
    for op, outcome in zip(batch, outcomes, strict=True):
        if op.future is not None and op.loop is not None:
            by_loop.setdefault(op.loop, []).append((op.future, outcome))
    for loop, answers in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody to tell
            loop.call_soon_threadsafe(_resolve, answers)


def _roll_back(conn: sqlite3.Connection) -> None:
    """After a failure; sqlite may have rolled back already (disk full, I/O error)."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _record(row: Sequence[Any]) -> Record:
    return Record(kind=row[0], key=row[1], body=bytes(row[2]), user_agent=row[3])


def _local_path(path: str) -> str:
    """`open_spool` passes what follows `sqlite://`: `/./x.db` (the default
    `sqlite:///./ian-spool.db`) means `./x.db` in the working directory, not `/x.db`."""
    return path[1:] if path.startswith(("/./", "/../")) else path


def _count(conn: sqlite3.Connection, added: int) -> None:
    """Records added (or, negative, deleted) by a statement of this transaction."""
    if added:
        conn.execute(ADD_TO_COUNT, (added,))


def _int_ids(ids: Sequence[str]) -> list[int]:
    return [int(i) for i in ids if i.isdecimal()]


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
        self._queue: queue.SimpleQueue[_Op[Any] | object] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self._wakeup = asyncio.Event()
        self._closed = False
        self._disk_checked = 0.0
        self._disk_full = False
        self._keys_purged = time.monotonic()
        self._acks: list[int] = []  # noted in this turn of the event loop, not yet queued
        self._unread_acks = False  # acks queued since this process's last read
        self._acks_written: asyncio.Future[None] | None = None  # when those before it are
        # The writer thread's alone: keys known, the last key_log id learned, and the keys
        # logged by the transaction under way (up to id `_logged_upto`).
        self._known = KnownKeys()
        self._known_upto = 0
        self._logged: list[tuple[str, float]] = []
        self._logged_upto = 0
        self.commits = 0  # transactions the writer committed; tests and benchmarks read it

    # -- life cycle --------------------------------------------------------

    async def start(self) -> None:
        if self._writer is not None:
            return
        try:
            writer = await asyncio.to_thread(self._open)
            self._reader = await asyncio.to_thread(self._connect)
        except sqlite3.Error as exc:
            raise ConfigError(f"IAN_SPOOL: cannot open {self.path!r}: {exc}") from exc
        self._writer = threading.Thread(
            target=self._write_loop, args=(writer,), name="spool-writer", daemon=True
        )
        self._writer.start()

    async def close(self) -> None:
        """Commit what is queued, hand this process's leases back, stop the writer.

        Close after the forwarder has stopped: a record still in flight here would be
        claimable by another worker at once.
        """
        if self._writer is None or self._closed:
            return
        release = self._submit(self._release_leases)  # after the acks noted so far
        self._closed = True
        self._queue.put(_STOP)
        self._wakeup.set()
        try:
            await release
        finally:
            await asyncio.to_thread(self._writer.join)
            if self._reader is not None:
                self._reader.close()

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are ours (BEGIN IMMEDIATE / COMMIT), not the module's.
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        return conn

    def _open(self) -> sqlite3.Connection:
        conn = self._connect()
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            conn.close()
            raise ConfigError(f"IAN_SPOOL: {self.path!r} cannot use WAL (journal_mode={mode})")
        # The WAL file is truncated back to this size after a checkpoint.
        conn.execute("PRAGMA journal_size_limit = 67108864")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in SCHEMA:
                conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            conn.close()
            raise
        return conn

    # -- the writer thread -------------------------------------------------

    def _submit(self, work: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        return self._enqueue(_Op(work, (), *self._answer_slot()))

    def _submit_put(self, records: Sequence[Record]) -> asyncio.Future[list[bool]]:
        return self._enqueue(_Op(None, records, *self._answer_slot()))

    def _answer_slot(self) -> tuple[asyncio.Future[Any], asyncio.AbstractEventLoop]:
        self._usable()
        loop = asyncio.get_running_loop()
        return loop.create_future(), loop

    def _usable(self) -> None:
        if self._writer is None:
            raise RuntimeError("SqliteSpool.start() was not awaited")
        if self._closed:
            raise RuntimeError("the spool is closed")

    def _enqueue(self, op: _Op[T]) -> asyncio.Future[T]:
        self._queue_acks()  # first: a call made after an ack sees it
        self._queue.put(op)
        assert op.future is not None
        return op.future

    def _queue_acks(self) -> None:
        if self._acks:
            self._queue.put(_Op(None, (), None, None, acks=self._acks))
            self._acks = []

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        try:
            while True:
                batch, stop = self._gather()
                if batch:
                    self._commit(conn, batch)
                if stop:
                    return
                self._housekeeping(conn)
        finally:
            conn.close()

    def _gather(self) -> tuple[list[_Op[Any]], bool]:
        """What is queued now (after the first, waiting at most `linger`), up to `max_batch`."""
        try:
            first = self._queue.get(timeout=self._until_housekeeping())
        except queue.Empty:
            return [], False
        if first is _STOP:
            return [], True
        assert isinstance(first, _Op)
        batch: list[_Op[Any]] = [first]
        size = first.size
        deadline = time.monotonic() + self._linger
        while size < self._max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(remaining > 0, max(remaining, 0.0))
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            assert isinstance(item, _Op)
            batch.append(item)
            size += item.size
        return batch, False

    def _commit(self, conn: sqlite3.Connection, batch: list[_Op[Any]]) -> None:
        """One transaction for the batch; answers are delivered only once it is committed."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            outcomes = self._apply(conn, batch)
            conn.execute("COMMIT")
        except Exception as exc:  # the writer thread must outlive any failure
            log.error("spool transaction failed: %s", exc)
            _roll_back(conn)
            self._learn_logged(committed=False)
            _deliver(batch, [(None, exc)] * len(batch))
            return
        self._learn_logged(committed=True)
        self.commits += 1
        _deliver(batch, outcomes)

    def _apply(self, conn: sqlite3.Connection, batch: list[_Op[Any]]) -> list[Outcome]:
        """The batch's acks together, its puts together (room made by the acks counts),
        then every other call in turn."""
        self._delete(conn, [i for op in batch if op.acks for i in op.acks])
        stored = iter(self._store(conn, [op.records for op in batch if op.work is None
                                          and op.acks is None]))
        return [(None, None) if op.acks is not None else
                next(stored) if op.work is None else (op.work(conn), None) for op in batch]

    def _until_housekeeping(self) -> float:
        return max(self._keys_purged + self._purge_interval() - time.monotonic(), 0.0)

    def _purge_interval(self) -> float:
        return max(min(60.0, self._ttl), 0.05)

    def _housekeeping(self, conn: sqlite3.Connection) -> None:
        """Forget expired dedupe keys now and then, one chunk per pass so puts queued
        meanwhile are committed between chunks, not after the whole purge."""
        if time.monotonic() - self._keys_purged < self._purge_interval():
            return
        now = time.time()
        self._known.forget_expired(now)
        try:
            conn.execute("BEGIN IMMEDIATE")
            deleted = conn.execute(FORGET_EXPIRED_KEYS, (now, KEY_PURGE_CHUNK)).rowcount
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.warning("could not forget expired dedupe keys: %s", exc)
            _roll_back(conn)
            deleted = 0
        if deleted < KEY_PURGE_CHUNK:  # all gone: next purge after the interval
            self._keys_purged = time.monotonic()

    # -- work run by the writer, inside the batch's transaction -------------

    def _store(self, conn: sqlite3.Connection, calls: list[Sequence[Record]]) -> list[Outcome]:
        """Each put call's answer, or SpoolFull for a call that does not fit (it writes nothing)."""
        (count,) = conn.execute(COUNT_RECORDS).fetchone()
        fits = admit(calls, self._max - count)
        now = time.time()
        taken = [r for records, fit in zip(calls, fits, strict=True) if fit for r in records]
        keys = [(r.key, now + remember_for(r.kind, self._ttl)) for r in taken]
        new = self._remember(conn, keys, now)
        answers = []
        rows: list[tuple[Any, ...]] = []
        for record in taken:
            answers.append(record.key in new)
            if answers[-1]:
                new.discard(record.key)  # a repeat later in the batch is a duplicate
                rows.append((record.kind, record.key, record.body, record.user_agent, now, now))
        self._insert(conn, rows)
        return [(None, answer) if isinstance(answer, BaseException) else (answer, None)
                for answer in per_call(calls, fits, answers)]

    def _remember(self, conn: sqlite3.Connection, keys: list[tuple[str, float]],
                  now: float) -> set[str]:
        """The keys (with their expiry) not known, or expired: their events are new.

        They are logged now and known once the transaction commits (`_learn_logged`).
        """
        self._catch_up(conn)
        new: dict[str, float] = {}
        for key, expires_at in keys:
            if key not in new and not self._known.known(key, now):
                new[key] = expires_at
        pairs = list(new.items())
        for start in range(0, len(pairs), KEYS_PER_STATEMENT):
            chunk = pairs[start:start + KEYS_PER_STATEMENT]
            cursor = conn.execute(_log_keys(len(chunk)), [v for pair in chunk for v in pair])
            assert cursor.lastrowid is not None, "an INSERT sets it"
            self._logged_upto = cursor.lastrowid
        self._logged.extend(pairs)
        return set(new)

    def _catch_up(self, conn: sqlite3.Connection) -> None:
        """Learn the keys logged since this process last looked: other processes' (under the
        write lock, so none can slip in before this transaction's own), or, on the first
        put, every key the file remembers."""
        rows = conn.execute(KEYS_SINCE, (self._known_upto,)).fetchall()
        if rows:
            self._known.learn((key, expires_at) for _, key, expires_at in rows)
            self._known_upto = rows[-1][0]

    def _learn_logged(self, committed: bool) -> None:
        """After the transaction: its keys are known if it committed, forgotten if not."""
        if committed and self._logged:
            self._known.learn(self._logged)
            self._known_upto = self._logged_upto
        self._logged.clear()

    @staticmethod
    def _insert(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        for start in range(0, len(rows), RECORDS_PER_STATEMENT):
            chunk = rows[start:start + RECORDS_PER_STATEMENT]
            conn.execute(_insert_records(len(chunk)), [value for row in chunk for value in row])
        _count(conn, len(rows))

    def _lease_rows(self, conn: sqlite3.Connection, limit: int) -> list[Claimed]:
        now = time.time()
        rows = conn.execute(CLAIM, (self._owner, now + self._lease, now, limit)).fetchall()
        rows.sort(key=lambda row: int(row[0]))
        return [Claimed(str(row[0]), _record(row[1:5]), int(row[5])) for row in rows]

    @staticmethod
    def _delete(conn: sqlite3.Connection, ids: list[int]) -> None:
        deleted = 0
        for start in range(0, len(ids), ACKS_PER_STATEMENT):
            chunk = orjson.dumps(ids[start:start + ACKS_PER_STATEMENT])
            deleted += conn.execute(ACK_MANY, (chunk,)).rowcount
        _count(conn, -deleted)

    def _postpone(self, conn: sqlite3.Connection, record_id: int, delay: float) -> None:
        # Only while the lease is ours: if it ran out and another worker holds it, theirs to settle.
        conn.execute(RETRY, (time.time() + delay, record_id, self._owner))

    def _bury(self, conn: sqlite3.Connection, record_id: int, status: int, answer: str) -> None:
        buried = conn.execute(BURY, (status, answer, time.time(), record_id, self._owner)).rowcount
        if buried:
            self._delete(conn, [record_id])

    def _release_leases(self, conn: sqlite3.Connection) -> None:
        conn.execute(RELEASE_LEASES, (time.time(), self._owner))

    @staticmethod
    def _replay_rows(conn: sqlite3.Connection, ids: Sequence[str] | None) -> int:
        now = time.time()
        if ids is None:
            moved = int(conn.execute(REPLAY_ALL, (now, now)).rowcount)
            conn.execute(PURGE_ALL)
        else:
            moved = 0
            for dead_id in _int_ids(ids):
                if conn.execute(REPLAY_ONE, (now, now, dead_id)).rowcount:
                    conn.execute(PURGE_ONE, (dead_id,))
                    moved += 1
        _count(conn, moved)
        return moved

    @staticmethod
    def _purge_rows(conn: sqlite3.Connection, ids: Sequence[str] | None) -> int:
        if ids is None:
            return int(conn.execute(PURGE_ALL).rowcount)
        return sum(conn.execute(PURGE_ONE, (dead_id,)).rowcount for dead_id in _int_ids(ids))

    # -- reads, on their own connection (WAL readers do not wait for the writer) --

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._reader is None:
            raise RuntimeError("SqliteSpool.start() was not awaited")
        reader = self._reader
        await self._acks_committed()

        def run() -> T:
            with self._read_lock:
                return work(reader)

        return await asyncio.to_thread(run)

    # -- the Spool protocol ------------------------------------------------

    async def put(self, records: Sequence[Record]) -> list[bool]:
        if not records:
            return []
        if self._disk_nearly_full():
            raise SpoolFull(retry_after=5)
        try:
            stored = await self._submit_put(records)
        except sqlite3.Error as exc:
            # Locked past busy_timeout, disk I/O: intake answers 503, never 500.
            raise SpoolFull() from exc
        if any(stored):
            self._wakeup.set()
        return stored

    def _disk_nearly_full(self) -> bool:
        now = time.monotonic()
        if now - self._disk_checked >= DISK_CHECK_INTERVAL:
            self._disk_checked = now
            self._disk_full = shutil.disk_usage(self._dir).free < self._min_free
        return self._disk_full

    async def claim(self, limit: int, wait: float) -> list[Claimed]:
        deadline = time.monotonic() + wait
        look = True  # first pass, or woken by a put here: go straight to the write lock
        while not self._closed:
            self._wakeup.clear()
            if (look or await self._read(self._any_due)) and not self._closed:
                claimed = await self._submit(lambda conn: self._lease_rows(conn, limit))
                if claimed:
                    return claimed
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            # Other processes' puts and expired leases are seen by polling, cheaply (a read).
            look = await self._sleep(min(remaining, self._poll))
        return []

    def _any_due(self, conn: sqlite3.Connection) -> bool:
        return conn.execute(ANY_DUE, (time.time(),)).fetchone() is not None

    async def _sleep(self, seconds: float) -> bool:
        """Wait for a put in this process, or `seconds`; True when woken."""
        try:
            await asyncio.wait_for(self._wakeup.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def ack(self, claimed: Claimed) -> None:
        self._usable()
        if not self._acks:
            asyncio.get_running_loop().call_soon(self._queue_acks)
        self._acks.append(int(claimed.id))
        self._unread_acks = True

    async def _acks_committed(self) -> None:
        """Before a read: wait until the acks this process queued so far are committed."""
        if self._unread_acks:
            self._unread_acks = False
            self._acks_written = self._submit(lambda _: None)
        if self._acks_written is not None:
            await asyncio.shield(self._acks_written)  # shared by concurrent reads

    async def retry(self, claimed: Claimed, delay: float) -> None:
        record_id = int(claimed.id)
        await self._submit(lambda conn: self._postpone(conn, record_id, delay))
        if delay <= 0:
            self._wakeup.set()

    async def dead(self, claimed: Claimed, status: int, answer: str) -> None:
        record_id = int(claimed.id)
        await self._submit(lambda conn: self._bury(conn, record_id, status, answer))

    async def expedite(self) -> int:
        def work(conn: sqlite3.Connection) -> int:
            now = time.time()
            return conn.execute(EXPEDITE, (now, now)).rowcount

        return await self._submit(work)

    async def depth(self) -> int:
        return await self._read(lambda conn: int(conn.execute(COUNT_RECORDS).fetchone()[0]))

    async def oldest_age(self) -> float:
        # Ids grow with time, so the lowest id is the oldest record (retries keep their id).
        row = await self._read(lambda conn: conn.execute(OLDEST).fetchone())
        return 0.0 if row is None else max(time.time() - float(row[0]), 0.0)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = await self._read(lambda conn: conn.execute(DEAD_LETTERS, (limit,)).fetchall())
        return [
            DeadLetter(str(row[0]), _record(row[1:5]), int(row[5]), row[6], int(row[7]), row[8])
            for row in rows
        ]

    async def replay(self, ids: Sequence[str] | None = None) -> int:
        moved = await self._submit(lambda conn: self._replay_rows(conn, ids))
        if moved:
            self._wakeup.set()
        return moved

    async def purge(self, ids: Sequence[str] | None = None) -> int:
        return await self._submit(lambda conn: self._purge_rows(conn, ids))
