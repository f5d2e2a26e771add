"""What each spool call does to the SQLite spool's records and dead letters, as statements.

The writes run on the writer thread inside its batch's transaction (writer.py); the reads on
the spool's reading connection. A claimed row is leased to one process (lease owner + lease
end, kept in `due_at`): a row is due when `due_at <= now`, so a live lease hides it and an
expired one (a dead worker) makes it claimable again. A retry or dead-letter settles a row only
while its lease is the caller's own: if it ran out and another worker holds it, theirs to settle.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Sequence
from typing import Any, Final

import orjson

from gateway.spool import Claimed, DeadLetter, Record, admit, per_call, remember_for
from gateway.spool.sqlite.keylog import KeyLog

COUNT_RECORDS: Final = "SELECT n FROM counts WHERE name = 'records'"
ADD_TO_COUNT: Final = "UPDATE counts SET n = n + ? WHERE name = 'records'"
INSERT_RECORDS: Final = """
    INSERT INTO records (kind, key, body, user_agent, attempts, enqueued_at, due_at, lease_owner)
    VALUES {values} RETURNING id, key"""
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
# A live lease ends in the future: records_due finds it among the records due later (leases
# and retries in backoff), so handing leases back on close reads no more than those.
RELEASE_LEASES: Final = """
    UPDATE records SET due_at = ?, lease_owner = NULL WHERE due_at > ? AND lease_owner = ?"""
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

RECORDS_PER_STATEMENT: Final = 100  # 7 variables each, far below SQLITE_MAX_VARIABLE_NUMBER
ACKS_PER_STATEMENT: Final = 1000  # ids in one JSON array parameter


@functools.lru_cache(maxsize=32)
def _insert_records(count: int) -> str:
    return INSERT_RECORDS.format(values=", ".join(["(?, ?, ?, ?, 0, ?, ?, ?)"] * count))


def _record(row: Sequence[Any]) -> Record:
    return Record(kind=row[0], key=row[1], body=bytes(row[2]), user_agent=row[3])


def _int_ids(ids: Sequence[str]) -> list[int]:
    return [int(i) for i in ids if i.isdecimal()]


def _count(conn: sqlite3.Connection, added: int) -> None:
    """Records added (or, negative, deleted) by a statement of this transaction."""
    if added:
        conn.execute(ADD_TO_COUNT, (added,))


# -- writes, inside the writer's transaction -----------------------------------


def store(conn: sqlite3.Connection, calls: list[Sequence[Record]], leases: list[float],
          keys: KeyLog, owner: str, max_records: int, dedupe_ttl: float
          ) -> list[list[int] | BaseException]:
    """The puts of a batch together: one multi-row insert of their new keys, one of their
    records (per-statement overhead, not fsync, is what a put costs once commits are shared).
    A put with a lease end (not 0) stores its records leased to `owner` until then.
    Each call's answer, per record its new row id or 0 for a duplicate, or SpoolFull for a
    call that does not fit (it writes nothing)."""
    fits = admit(calls, max_records - depth(conn))
    now = time.time()
    taken = [(record, lease) for records, lease, fit in zip(calls, leases, fits, strict=True)
             if fit for record in records]
    new = keys.new(conn, [(r.key, now + remember_for(r.kind, dedupe_ttl)) for r, _ in taken], now)
    rows: list[tuple[Any, ...]] = []
    for record, lease in taken:
        if record.key in new:
            new.discard(record.key)  # a repeat later in the batch is a duplicate
            rows.append((record.kind, record.key, record.body, record.user_agent, now,
                         lease or now, owner if lease else None))
    ids = _insert(conn, rows)
    # a key's id goes to its first record; a repeat finds it gone: 0, a duplicate
    return per_call(calls, fits, (ids.pop(record.key, 0) for record, _ in taken))


def _insert(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> dict[str, int]:
    """The rows' new ids by key (RETURNING's order is not the rows' order: sqlite.org)."""
    ids: dict[str, int] = {}
    for start in range(0, len(rows), RECORDS_PER_STATEMENT):
        chunk = rows[start:start + RECORDS_PER_STATEMENT]
        ids.update((key, row_id) for row_id, key in conn.execute(
            _insert_records(len(chunk)), [value for row in chunk for value in row]))
    _count(conn, len(rows))
    return ids


def delete(conn: sqlite3.Connection, ids: list[int]) -> None:
    deleted = 0
    for start in range(0, len(ids), ACKS_PER_STATEMENT):
        chunk = orjson.dumps(ids[start:start + ACKS_PER_STATEMENT])
        deleted += conn.execute(ACK_MANY, (chunk,)).rowcount
    _count(conn, -deleted)


def lease(conn: sqlite3.Connection, owner: str, seconds: float, limit: int) -> list[Claimed]:
    now = time.time()
    rows = conn.execute(CLAIM, (owner, now + seconds, now, limit)).fetchall()
    rows.sort(key=lambda row: int(row[0]))
    return [Claimed(str(row[0]), _record(row[1:5]), int(row[5])) for row in rows]


def postpone(conn: sqlite3.Connection, owner: str, record_id: int, delay: float) -> None:
    conn.execute(RETRY, (time.time() + delay, record_id, owner))


def bury(conn: sqlite3.Connection, owner: str, record_id: int, status: int, answer: str) -> None:
    if conn.execute(BURY, (status, answer, time.time(), record_id, owner)).rowcount:
        delete(conn, [record_id])


def release_leases(conn: sqlite3.Connection, owner: str) -> None:
    now = time.time()
    conn.execute(RELEASE_LEASES, (now, now, owner))


def expedite(conn: sqlite3.Connection) -> int:
    now = time.time()
    return int(conn.execute(EXPEDITE, (now, now)).rowcount)


def replay(conn: sqlite3.Connection, ids: Sequence[str] | None) -> int:
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


def purge(conn: sqlite3.Connection, ids: Sequence[str] | None) -> int:
    if ids is None:
        return int(conn.execute(PURGE_ALL).rowcount)
    return sum(conn.execute(PURGE_ONE, (dead_id,)).rowcount for dead_id in _int_ids(ids))


# -- reads -----------------------------------------------------------------------


def depth(conn: sqlite3.Connection) -> int:
    return int(conn.execute(COUNT_RECORDS).fetchone()[0])


def any_due(conn: sqlite3.Connection) -> bool:
    return conn.execute(ANY_DUE, (time.time(),)).fetchone() is not None


def oldest_age(conn: sqlite3.Connection) -> float:
    # Ids grow with time, so the lowest id is the oldest record (retries keep their id).
    row = conn.execute(OLDEST).fetchone()
    return 0.0 if row is None else max(time.time() - float(row[0]), 0.0)


def dead_letters(conn: sqlite3.Connection, limit: int) -> list[DeadLetter]:
    return [
        DeadLetter(str(row[0]), _record(row[1:5]), int(row[5]), row[6], int(row[7]), row[8])
        for row in conn.execute(DEAD_LETTERS, (limit,)).fetchall()
    ]
