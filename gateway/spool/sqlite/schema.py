"""The SQLite spool's file: its tables, the migrations of earlier versions' files, its connections.

Every connection is in WAL mode with `synchronous=FULL` by default, so a commit returns only
once the WAL is fsynced and an event answered 202 survives a power loss, not only a process
crash (sqlite.org: "PRAGMA synchronous", "Write-Ahead Logging"; docs/durability.md).
The writer's connection creates the tables and migrates, in one transaction, so
worker processes starting together on one file agree on its shape.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from typing import Final

from gateway.settings import ConfigError

# A row is one put's records (a beacon's events), so a beacon costs the file one insert and
# one delete, not one per event. `records`: [[kind, key, user_agent, body length], ...] and
# `bodies` the bodies one after another; `settled`, one byte per record, 1 once it is acked,
# moved to a row of its own for a retry, or dead. The row goes when all are. `settled` comes
# before the long columns: marking a record rewrites the row's first page, not its bodies.
# `due_at`: when a waiting row is due, or when a leased row's lease ends.
SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS puts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        settled BLOB NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        enqueued_at REAL NOT NULL,
        due_at REAL NOT NULL,
        lease_owner TEXT,
        records TEXT NOT NULL,
        bodies BLOB NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS puts_due ON puts (due_at)",
    # A retried record moves to a put of its own, later in `id` order: the oldest waiting
    # record is found by its time (tables.OLDEST), one index entry per put.
    "CREATE INDEX IF NOT EXISTS puts_enqueued ON puts (enqueued_at)",
    # Dedupe keys, appended as they are first seen (keylog.py). AUTOINCREMENT: an id is never
    # used twice, even once every row is purged, so "rows after the last one learned" misses none.
    # Earlier versions logged a key a row (`key_log`), and before that kept a unique index.
    """CREATE TABLE IF NOT EXISTS key_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        expires_at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS key_log_expiry ON key_log (expires_at)",
    """CREATE TABLE IF NOT EXISTS keys (
        key TEXT PRIMARY KEY,
        expires_at REAL NOT NULL
    ) WITHOUT ROWID""",
    "INSERT INTO key_log (key, expires_at) SELECT key, expires_at FROM keys ORDER BY expires_at",
    "DROP TABLE keys",
    # Since: a row per transaction and expiry, its keys a JSON array (keylog.py), not a row
    # per key. The log of the version before moves over, a key a row.
    """CREATE TABLE IF NOT EXISTS key_batches (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        keys TEXT NOT NULL,
        expires_at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS key_batches_expiry ON key_batches (expires_at)",
    """INSERT INTO key_batches (keys, expires_at)
    SELECT json_array(key), expires_at FROM key_log ORDER BY id""",
    "DROP TABLE key_log",
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
    # count(*) walks a whole index and the capacity check runs on every put, so the writer
    # keeps the count: one update per statement that adds or deletes records (tables.count).
    "CREATE TABLE IF NOT EXISTS counts (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID",
    # For a new file; a file of an earlier version has it, kept through the move to `puts`.
    "INSERT OR IGNORE INTO counts VALUES ('records', 0)",
    # Earlier versions kept it with a trigger per row (a third of an ack's cost): gone.
    "DROP TRIGGER IF EXISTS records_counted_in",
    "DROP TRIGGER IF EXISTS records_counted_out",
)

# A put of one record, none settled, from a table of a record a row (kind, key, user_agent,
# body): its `settled`, `records` and `bodies` columns. The `records` layout is tables._row's.
ONE_RECORD_PUT: Final = (
    "x'00', json_array(json_array(kind, key, user_agent, length(body))), body")

# Earlier versions kept a row per record in `records`: each becomes a put of one.
IS_OLD_TABLE: Final = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records'"
MOVE_OLD_RECORDS: Final = (
    f"""INSERT INTO puts (attempts, enqueued_at, due_at, lease_owner, settled, records, bodies)
    SELECT attempts, enqueued_at, due_at, lease_owner, {ONE_RECORD_PUT}
    FROM records ORDER BY id""",
    "INSERT OR REPLACE INTO counts VALUES ('records', (SELECT count(*) FROM records))",
    "DROP TABLE records",
)

WAL_SIZE_LIMIT: Final = 64 * 1024 * 1024  # the WAL is truncated back to this after a checkpoint
WAL_RETRY: Final = 0.01  # seconds between asks for WAL while another process holds the file


def connect(path: str, synchronous: str, busy_timeout: float) -> sqlite3.Connection:
    """A connection whose transactions are ours (BEGIN IMMEDIATE / COMMIT), not the module's.

    `busy_timeout`: seconds a transaction waits for another process's write lock.
    """
    conn = sqlite3.connect(
        path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    return conn


def open_writer(path: str, synchronous: str, busy_timeout: float) -> sqlite3.Connection:
    """The writer's connection, on a file in WAL mode with every table of this version."""
    conn = connect(path, synchronous, busy_timeout)
    mode = to_wal(conn, busy_timeout)
    if mode != "wal":
        conn.close()
        raise ConfigError(f"IAN_SPOOL: {path!r} cannot use WAL (journal_mode={mode})")
    conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in SCHEMA:
            conn.execute(statement)
        if conn.execute(IS_OLD_TABLE).fetchone():
            for statement in MOVE_OLD_RECORDS:
                conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        conn.close()
        raise
    return conn


def to_wal(conn: sqlite3.Connection, busy_timeout: float) -> str:
    """The file's journal mode after asking for WAL, asked again while busy for `busy_timeout`.

    Workers starting together on a new file each ask at once, and each switch needs the
    lock the others' reads hold. SQLite then answers one of them SQLITE_BUSY at once rather
    than wait in the busy handler ("If SQLite determines that invoking the busy handler
    could result in a deadlock, it will go ahead and return SQLITE_BUSY": sqlite.org,
    sqlite3_busy_handler), and a worker that stopped there would stop the server.
    """
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
        time.sleep(WAL_RETRY)


def roll_back(conn: sqlite3.Connection) -> None:
    """After a failure; sqlite may have rolled back already (disk full, I/O error)."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
