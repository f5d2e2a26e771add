"""The SQLite spool's dedupe keys: decided in memory, kept in an append-only log in the file.

The writer decides which records are new against the keys this process knows (`KnownKeys`,
each until its own expiry) and appends the new ones to `key_batches`: a row per transaction
and expiry, its keys a JSON array, so a beacon's twenty keys cost the file one row, not
twenty. Before deciding, under the write lock, it learns the rows logged since it last
looked: other processes' keys, or on the first put every key the file remembers, so a key is
refused by every process of the machine and after a restart. A unique index on the keys would
cost a random page per key per commit, which is why they are a log (docs/performance.md has
the measurements).
The writer thread alone uses a `KeyLog`.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
from typing import Final

import orjson

from gateway.dedupe import Key, compact
from gateway.spool.keys import KnownKeys
from gateway.spool.sqlite.schema import roll_back

log = logging.getLogger(__name__)

LOG_KEYS: Final = "INSERT INTO key_batches (keys, expires_at) VALUES (?, ?)"
KEYS_SINCE: Final = "SELECT id, keys, expires_at FROM key_batches WHERE id > ? ORDER BY id"
FORGET_EXPIRED_KEYS: Final = """
    DELETE FROM key_batches
    WHERE id IN (SELECT id FROM key_batches WHERE expires_at <= ? LIMIT ?)"""

# Rows of expired keys deleted per transaction, so no lock is held long: a row holds the keys
# of one transaction, up to a group commit's (IAN_SPOOL_MAX_BATCH records).
KEY_PURGE_CHUNK: Final = 100


class KeyLog:
    def __init__(self) -> None:
        self._known = KnownKeys()
        self._known_upto = 0  # the last key_log id learned
        # The keys logged by the transaction under way, up to id `_logged_upto`.
        self._logged: list[tuple[Key, float]] = []
        self._logged_upto = 0

    def new(self, conn: sqlite3.Connection, keys: list[tuple[str, float]],
            now: float) -> set[str]:
        """The keys (with their expiry) not known, or expired: their events are new.

        They are logged now and known once the transaction commits (`settle`).
        """
        self._catch_up(conn)
        new: dict[str, tuple[Key, float]] = {}  # key -> compacted, expiry
        for key, expires_at in keys:
            compacted = compact(key)
            if key not in new and not self._known.known(compacted, now):
                new[key] = (compacted, expires_at)
        for expires_at, group in itertools.groupby(new.items(), key=lambda item: item[1][1]):
            batch = orjson.dumps([key for key, _ in group]).decode()
            cursor = conn.execute(LOG_KEYS, (batch, expires_at))
            assert cursor.lastrowid is not None, "an INSERT sets it"
            self._logged_upto = cursor.lastrowid
        self._logged.extend(new.values())
        return set(new)

    def _catch_up(self, conn: sqlite3.Connection) -> None:
        """Learn the keys logged since this process last looked: other processes' (under the
        write lock, so none can slip in before this transaction's own), or, on the first
        put, every key the file remembers."""
        rows = conn.execute(KEYS_SINCE, (self._known_upto,)).fetchall()
        if rows:
            self._known.learn((compact(key), expires_at) for _, keys, expires_at in rows
                              for key in orjson.loads(keys))
            self._known_upto = rows[-1][0]

    def settle(self, committed: bool) -> None:
        """After the transaction: its keys are known if it committed, forgotten if not."""
        if committed and self._logged:
            self._known.learn(self._logged)
            self._known_upto = self._logged_upto
        self._logged.clear()

    def forget_expired(self, conn: sqlite3.Connection, now: float) -> bool:
        """Forget the keys expired at `now`: in memory, and one chunk of the log in a
        transaction of its own, so puts queued meanwhile are committed between chunks.

        True when done for now; False when a whole chunk went (the next is due at once).
        """
        self._known.forget_expired(now)
        try:
            conn.execute("BEGIN IMMEDIATE")
            deleted = conn.execute(FORGET_EXPIRED_KEYS, (now, KEY_PURGE_CHUNK)).rowcount
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.warning("could not forget expired dedupe keys: %s", exc)
            roll_back(conn)
            return True
        return bool(deleted < KEY_PURGE_CHUNK)
