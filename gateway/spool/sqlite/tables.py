"""What each spool call does to the SQLite spool's puts and dead letters, as statements.

A row of `puts` holds the records of one put (schema.py), and a record's id is
`<row id>.<index in the row>`, or the row id alone for a record alone in its row (a one-event
beacon, a retry): its ack deletes the row without reading it first. The writes run on the
writer thread inside its batch's transaction (writer.py); the reads on the spool's reading
connection. A claimed row is leased to one process (lease owner + lease end, kept in
`due_at`): a row is due when `due_at <= now`, so a live lease hides it and an expired one (a
dead worker) makes it claimable again. An ack marks its record settled whoever holds the
lease (the upstream has it); a retry or dead letter settles a record only while its row's
lease is the caller's own: if it ran out and another worker holds it, theirs to settle. A
row is deleted once every record in it is settled.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any, Final

import orjson

from gateway.spool import Claimed, DeadLetter, Record, admit, per_call, remember_for
from gateway.spool.sqlite.keylog import KeyLog
from gateway.spool.sqlite.schema import ONE_RECORD_PUT

COUNT_RECORDS: Final = "SELECT n FROM counts WHERE name = 'records'"
ADD_TO_COUNT: Final = "UPDATE counts SET n = n + ? WHERE name = 'records'"
INSERT_PUTS: Final = """
    INSERT INTO puts (settled, attempts, enqueued_at, due_at, lease_owner, records, bodies)
    VALUES {values}"""
DUE_PUTS: Final = """
    SELECT id, length(settled) FROM puts WHERE due_at <= ? ORDER BY due_at, id LIMIT ?"""
CLAIM: Final = """
    UPDATE puts SET lease_owner = ?, due_at = ? WHERE id IN (SELECT value FROM json_each(?))
    RETURNING id, settled, attempts, records, bodies"""
ANY_DUE: Final = "SELECT 1 FROM puts WHERE due_at <= ? LIMIT 1"
SETTLED: Final = "SELECT id, settled FROM puts WHERE id IN (SELECT value FROM json_each(?))"
MARK: Final = "UPDATE puts SET settled = ? WHERE id = ?"
DELETE_PUTS: Final = "DELETE FROM puts WHERE id IN (SELECT value FROM json_each(?))"
LEASED: Final = "SELECT settled, enqueued_at FROM puts WHERE id = ? AND lease_owner = ?"
BURY: Final = """
    INSERT INTO dead_letters (kind, key, body, user_agent, status, answer, attempts, failed_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)"""
# Waiting retries (not leased ones) due now: the upstream is back.
EXPEDITE: Final = "UPDATE puts SET due_at = ? WHERE lease_owner IS NULL AND due_at > ?"
# A live lease ends in the future: puts_due finds it among the rows due later (leases and
# retries in backoff), so handing leases back on close reads no more than those.
RELEASE_LEASES: Final = """
    UPDATE puts SET due_at = ?, lease_owner = NULL WHERE due_at > ? AND lease_owner = ?"""
OLDEST: Final = "SELECT min(enqueued_at) FROM puts"
DEAD_LETTERS: Final = """
    SELECT id, kind, key, body, user_agent, status, answer, attempts, failed_at
    FROM dead_letters ORDER BY failed_at, id LIMIT ?"""
REPLAY: Final = f"""
    INSERT INTO puts (attempts, enqueued_at, due_at, settled, records, bodies)
    SELECT 0, ?, ?, {ONE_RECORD_PUT} FROM dead_letters"""
REPLAY_ALL: Final = REPLAY + " ORDER BY id"
REPLAY_ONE: Final = REPLAY + " WHERE id = ?"
PURGE_ALL: Final = "DELETE FROM dead_letters"
PURGE_ONE: Final = "DELETE FROM dead_letters WHERE id = ?"

IDS_PER_STATEMENT: Final = 1000  # row ids in one JSON array parameter
PUTS_PER_STATEMENT: Final = 100  # 7 variables each, far below SQLITE_MAX_VARIABLE_NUMBER


@functools.lru_cache(maxsize=32)
def _insert_puts(count: int) -> str:
    return INSERT_PUTS.format(values=", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * count))


def _row(records: Sequence[Record], attempts: int, enqueued_at: float, due_at: float,
         owner: str | None) -> tuple[Any, ...]:
    """INSERT_PUTS's parameters for a row of `records`, none settled."""
    meta = orjson.dumps([(r.kind, r.key, r.user_agent, len(r.body)) for r in records])
    return (bytes(len(records)), attempts, enqueued_at, due_at, owner, meta.decode(),
            b"".join(r.body for r in records))


def _unpack(row: Sequence[Any]) -> list[Claimed]:
    """A claimed row's records not yet settled."""
    put_id, settled, attempts, meta, bodies = row
    claimed, start = [], 0
    for index, (kind, key, user_agent, size) in enumerate(orjson.loads(meta)):
        if not settled[index]:
            record = Record(kind, key, bytes(bodies[start:start + size]), user_agent)
            claimed.append(Claimed(_name(put_id, index, len(settled)), record, int(attempts)))
        start += size
    return claimed


def _name(put_id: int, index: int, records: int) -> str:
    """The id of the record at `index` of a row of `records`."""
    return f"{put_id}.{index}" if records > 1 else str(put_id)


def _address(record_id: str) -> tuple[int, int]:
    """A record id's row id and index in the row."""
    put_id, _, index = record_id.partition(".")
    return int(put_id), int(index or 0)


def _int_ids(ids: Sequence[str]) -> list[int]:
    return [int(i) for i in ids if i.isdecimal()]


def _count(conn: sqlite3.Connection, added: int) -> None:
    """Records added (or, negative, settled) by a statement of this transaction."""
    if added:
        conn.execute(ADD_TO_COUNT, (added,))


def _chunks(ids: list[int]) -> Iterable[bytes]:
    for start in range(0, len(ids), IDS_PER_STATEMENT):
        yield orjson.dumps(ids[start:start + IDS_PER_STATEMENT])


# -- writes, inside the writer's transaction -----------------------------------


def store(conn: sqlite3.Connection, calls: list[Sequence[Record]], leases: list[float],
          keys: KeyLog, owner: str, max_records: int, dedupe_ttl: float
          ) -> list[list[str] | BaseException]:
    """The puts of a batch together: one insert of their new keys, and a row per put of its
    new records (per-statement overhead, not fsync, is what a put costs once commits are
    shared). A put with a lease end (not 0) stores its records leased to `owner` until then.
    Each call's answer, per record its id or "" for a duplicate, or SpoolFull for a call that
    does not fit (it writes nothing)."""
    fits = admit(calls, max_records - depth(conn))
    now = time.time()
    taken = [(records, lease) for records, lease, fit in zip(calls, leases, fits, strict=True)
             if fit]
    new = keys.new(conn, [(r.key, now + remember_for(r.kind, dedupe_ttl))
                          for records, _ in taken for r in records], now)
    puts: list[tuple[list[int], tuple[Any, ...] | None]] = []  # per put: places, its row
    for records, lease in taken:
        fresh: list[Record] = []
        places: list[int] = []  # each record's index in the row, -1 for a duplicate
        for record in records:
            if record.key in new:
                new.discard(record.key)  # a repeat later in the batch is a duplicate
                places.append(len(fresh))
                fresh.append(record)
            else:
                places.append(-1)
        puts.append((places, _row(fresh, 0, now, lease or now, owner if lease else None)
                             if fresh else None))
    row_ids = iter(_insert(conn, [row for _, row in puts if row]))
    ids: list[str] = []
    stored = 0
    for places, row in puts:
        put_id = next(row_ids) if row else 0
        in_row = len(places) - places.count(-1)
        ids.extend(_name(put_id, place, in_row) if place >= 0 else "" for place in places)
        stored += in_row
    _count(conn, stored)
    return per_call(calls, fits, ids)


def _insert(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> list[int]:
    """The rows' ids, in order: a multi-row insert per PUTS_PER_STATEMENT (per-statement
    overhead is what a one-event put costs once commits are shared). AUTOINCREMENT gives each
    row in turn one more than the largest id yet (sqlite.org, "autoinc"), and the write lock
    is held: a statement's rows have consecutive ids, its last one `lastrowid`."""
    ids: list[int] = []
    for start in range(0, len(rows), PUTS_PER_STATEMENT):
        chunk = rows[start:start + PUTS_PER_STATEMENT]
        last = conn.execute(_insert_puts(len(chunk)),
                            [value for row in chunk for value in row]).lastrowid
        assert last is not None, "an INSERT sets it"
        ids.extend(range(last - len(chunk) + 1, last + 1))
    return ids


def settle(conn: sqlite3.Connection, record_ids: list[str]) -> None:
    """These records are done (acked): marked settled, and their rows deleted once every
    record in them is."""
    alone: list[int] = []  # rows of one record: deleted without reading them
    by_row: dict[int, list[int]] = {}
    for record_id in record_ids:
        if "." in record_id:
            put_id, index = _address(record_id)
            by_row.setdefault(put_id, []).append(index)
        else:
            alone.append(int(record_id))
    settled_now = _delete(conn, alone)
    gone: list[int] = []  # rows whose records are all settled now
    marked: list[tuple[bytes, int]] = []
    for chunk in _chunks(list(by_row)):
        for put_id, settled in conn.execute(SETTLED, (chunk,)).fetchall():
            flags = bytearray(settled)
            for index in by_row[put_id]:
                if index < len(flags) and not flags[index]:
                    flags[index] = 1
                    settled_now += 1
            if all(flags):
                gone.append(put_id)
            else:
                marked.append((bytes(flags), put_id))
    if marked:
        conn.executemany(MARK, marked)
    _delete(conn, gone)
    _count(conn, -settled_now)


def _delete(conn: sqlite3.Connection, put_ids: list[int]) -> int:
    """Delete these rows; answer how many were there."""
    return sum(conn.execute(DELETE_PUTS, (chunk,)).rowcount for chunk in _chunks(put_ids))


def lease(conn: sqlite3.Connection, owner: str, seconds: float, limit: int) -> list[Claimed]:
    """The due rows, oldest first, whose records make up to `limit` (at least one row)."""
    now = time.time()
    picked: list[int] = []
    size = 0
    for put_id, records in conn.execute(DUE_PUTS, (now, limit)).fetchall():
        if picked and size + records > limit:
            break
        picked.append(put_id)
        size += records
    if not picked:
        return []
    rows = conn.execute(CLAIM, (owner, now + seconds, orjson.dumps(picked))).fetchall()
    rows.sort(key=lambda row: int(row[0]))
    return [claimed for row in rows for claimed in _unpack(row)]


def _leased(conn: sqlite3.Connection, owner: str, claimed: Claimed) -> float | None:
    """When the claimed record was put, if its row is still leased to `owner` and the record
    not settled; else None (not ours to settle)."""
    put_id, index = _address(claimed.id)
    row = conn.execute(LEASED, (put_id, owner)).fetchone()
    if row is None or index >= len(row[0]) or row[0][index]:
        return None
    return float(row[1])


def postpone(conn: sqlite3.Connection, owner: str, claimed: Claimed, delay: float) -> None:
    """The record moves to a row of its own, due after `delay`, attempts + 1."""
    enqueued_at = _leased(conn, owner, claimed)
    if enqueued_at is None:
        return
    _insert(conn, [_row([claimed.record], claimed.attempts + 1, enqueued_at,
                        time.time() + delay, None)])
    _count(conn, 1)
    settle(conn, [claimed.id])


def bury(conn: sqlite3.Connection, owner: str, claimed: Claimed, status: int,
         answer: str) -> None:
    if _leased(conn, owner, claimed) is None:
        return
    r = claimed.record
    conn.execute(BURY, (r.kind, r.key, r.body, r.user_agent, status, answer,
                        claimed.attempts + 1, time.time()))
    settle(conn, [claimed.id])


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
    row = conn.execute(OLDEST).fetchone()
    return 0.0 if row is None or row[0] is None else max(time.time() - float(row[0]), 0.0)


def dead_letters(conn: sqlite3.Connection, limit: int) -> list[DeadLetter]:
    return [
        DeadLetter(str(row[0]), Record(kind=row[1], key=row[2], body=bytes(row[3]),
                                       user_agent=row[4]),
                   int(row[5]), row[6], int(row[7]), row[8])
        for row in conn.execute(DEAD_LETTERS, (limit,)).fetchall()
    ]
