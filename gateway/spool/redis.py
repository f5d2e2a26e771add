"""The scale-out spool: many gateway instances sharing one Redis.

Dedupe is `SET <key> 1 NX PX <ttl>` per record: the first instance to set a
key owns the event. Puts made while the previous ones are in flight are
stored together (one pipeline of SETs, one MULTI of XADDs), as SQLite's group
commit does: a round trip, not Redis, is what a put costs. The queue is a Redis Stream read
by one consumer group; each process is one consumer. An entry stays in the
stream, pending for its consumer, until the upstream's 2xx (`XACK` + `XDEL`);
entries pending longer than the lease (their forwarder died) are taken over by
any instance with `XAUTOCLAIM` (https://redis.io/docs/latest/commands/xautoclaim/).
A retry moves the entry to a sorted set scored by its due time; due entries
are moved back to the stream by a Lua script, which Redis runs atomically
(https://redis.io/docs/latest/develop/interact/programmability/eval-intro/).
Dead letters are a second stream, so they keep their order and an id.

How an entry looks, and the scripts that move one, are in redis_entries.py.

`max_records` is checked before each put (XLEN + ZCARD), not atomically with
it: concurrent puts may pass it by their own size, which is what it is for
(back-pressure), not an exact quota.

Durability is Redis's own: run it with `appendonly yes` (`appendfsync everysec`
loses at most about a second of acknowledged events on a power loss).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Generic, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from gateway.spool import Claimed, DeadLetter, Record, SpoolFull, admit, per_call, remember_for
from gateway.spool.redis_entries import (
    BURY,
    PROMOTE,
    REPLAY,
    RETRY,
    TOKEN_LEN,
    claimed_entry,
    dead_letter,
    pack,
    stream_entries,
    text,
)

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")

GROUP: Final = "forwarders"
FORGET_IDLE_CONSUMERS_MS: Final = 3_600_000  # consumers of processes gone for an hour
EXPEDITE_CHUNK: Final = 1000
RELEASED_IDLE_MS: Final = 2**40  # "delivered long ago": claimable at once by anyone

def _refused(cause: BaseException) -> SpoolFull:
    """Redis failed: intake answers 503, never 500."""
    full = SpoolFull()
    full.__cause__ = cause
    return full


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class Batcher(Generic[In, Out]):
    """Calls made while a flush is in flight are handed to the next flush together.

    `flush` answers each item in order, with a value or the exception to raise.
    """

    def __init__(self, flush: Callable[[list[In]], Awaitable[list[Out | BaseException]]],
                 most: int) -> None:
        self._flush = flush
        self._most = most
        self._pending: list[tuple[In, asyncio.Future[Out]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: In) -> Out:
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._run())
        return await future

    async def drain(self) -> None:
        if self._flusher is not None:
            await self._flusher

    async def _run(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:self._most], self._pending[self._most:]
            try:
                outcomes = await self._flush([item for item, _ in batch])
            except Exception as exc:  # every caller must get an answer
                outcomes = [exc] * len(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # the caller was cancelled
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)


class RedisSpool:
    def __init__(
        self,
        url: str,
        max_records: int,
        dedupe_ttl: float,
        *,
        prefix: str = "ian:spool:",
        lease: float = 30.0,
        poll_interval: float = 0.1,
        max_connections: int = 1024,
    ) -> None:
        self._url = url
        self._max = max_records
        self._ttl = dedupe_ttl
        self._lease_ms = max(_ms(lease), 1)
        self._poll = poll_interval
        self._prefix = prefix
        self._stream = f"{prefix}queue"
        self._delayed = f"{prefix}delayed"
        self._dead = f"{prefix}dead"
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # How often to look for a dead forwarder's entries; a full scan, so not every claim.
        self._reclaim_every = min(1.0, lease / 4)
        self._reclaimed_at = 0.0
        self._reclaim_from = "0-0"
        self._closed = False
        # Puts share one connection (they are batched); acks, retries and claims take one
        # each, so the pool's size bounds the forwarder's concurrency, not intake's.
        # A plain pool, not BlockingConnectionPool: that one is slower per command.
        pool = aioredis.ConnectionPool.from_url(
            url, max_connections=max_connections, socket_connect_timeout=5
        )
        self._redis: aioredis.Redis = aioredis.Redis.from_pool(pool)
        self._puts = Batcher(self._store, most=256)
        self._acks = Batcher(self._delete, most=1000)
        self._promote = self._redis.register_script(PROMOTE)
        self._retry = self._redis.register_script(RETRY)
        self._bury = self._redis.register_script(BURY)
        self._replay = self._redis.register_script(REPLAY)

    def _key(self, record: Record) -> str:
        return f"{self._prefix}key:{record.key}"

    # -- life cycle --------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._redis.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        await self._forget_gone_consumers()

    async def _forget_gone_consumers(self) -> None:
        """Processes restart with new names; drop old consumers that hold nothing."""
        for consumer in await self._redis.xinfo_consumers(self._stream, GROUP):
            if consumer["pending"] == 0 and consumer["idle"] > FORGET_IDLE_CONSUMERS_MS:
                await self._redis.xgroup_delconsumer(self._stream, GROUP, consumer["name"])

    async def close(self) -> None:
        """Hand this consumer's unsettled entries back (claimable at once), then disconnect."""
        if self._closed:
            return
        self._closed = True
        await self._puts.drain()
        await self._acks.drain()
        try:
            await self._release_pending()
        except RedisError as exc:
            log.warning("could not release pending spool entries: %s", exc)
        finally:
            await self._redis.aclose()

    async def _release_pending(self) -> None:
        after = "-"
        while True:
            pending: Any = await self._redis.xpending_range(
                self._stream, GROUP, min=after, max="+", count=1000, consumername=self.consumer
            )
            ids: list[Any] = [entry["message_id"] for entry in pending]
            if not ids:
                return
            # XCLAIM ... IDLE: the entries look delivered long ago, so any XAUTOCLAIM takes them.
            await self._redis.xclaim(
                self._stream, GROUP, self.consumer, 0, ids, idle=RELEASED_IDLE_MS, justid=True
            )
            after = "(" + text(ids[-1])

    # -- the Spool protocol ------------------------------------------------

    async def put(self, records: Sequence[Record]) -> list[bool]:
        if not records:
            return []
        return await self._puts.submit(records)

    async def _store(self, calls: list[Sequence[Record]]) -> list[list[bool] | BaseException]:
        try:
            return await self._store_calls(calls)
        except RedisError as exc:
            return [_refused(exc) for _ in calls]

    async def _store_calls(self, calls: list[Sequence[Record]]) -> list[list[bool] | BaseException]:
        """Each call's answer, or SpoolFull for a call that does not fit (it sets no key)."""
        fits = admit(calls, self._max - await self.depth())
        taken = [r for records, fit in zip(calls, fits, strict=True) if fit for r in records]
        answers = await self._remember(taken)
        fresh = [record for record, new in zip(taken, answers, strict=True) if new]
        if fresh:
            await self._enqueue(fresh)
        return per_call(calls, fits, answers)

    async def _remember(self, records: Sequence[Record]) -> list[bool]:
        """SET NX PX per key, in order: True where this set it (a new event)."""
        if not records:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for record in records:
            ttl_ms = max(_ms(remember_for(record.kind, self._ttl)), 1)
            pipe.set(self._key(record), b"1", nx=True, px=ttl_ms)
        return [bool(answer) for answer in await pipe.execute()]

    async def _enqueue(self, records: Sequence[Record]) -> None:
        """XADD the new records; if that fails, forget their keys so a retry is not a duplicate."""
        now = _ms(time.time())
        pipe = self._redis.pipeline(transaction=True)
        for record in records:
            pipe.xadd(self._stream, {b"r": pack(record), b"n": b"0", b"e": now})
        try:
            await pipe.execute()
        except RedisError:
            # If this fails too, the keys expire with the TTL; nothing more can be done now.
            with contextlib.suppress(RedisError):
                await self._redis.delete(*[self._key(record) for record in records])
            raise

    async def claim(self, limit: int, wait: float) -> list[Claimed]:
        deadline = time.monotonic() + wait
        while True:
            await self._promote(keys=[self._delayed, self._stream],
                                args=[_ms(time.time()), max(limit, 100)])
            claimed = await self._reclaim(limit)
            remaining = deadline - time.monotonic()
            # BLOCK wakes on an XADD by any instance; the poll bounds how late a due retry is.
            block = min(remaining, self._poll) if remaining > 0 and not claimed else 0.0
            if len(claimed) < limit:
                claimed += await self._read_new(limit - len(claimed), block)
            if claimed or remaining <= 0:
                return claimed

    async def _reclaim(self, limit: int) -> list[Claimed]:
        """Entries pending longer than the lease: their forwarder died. Taken over here."""
        now = time.monotonic()
        if self._reclaim_from == "0-0" and now - self._reclaimed_at < self._reclaim_every:
            return []
        self._reclaimed_at = now
        answer: Any = await self._redis.xautoclaim(
            self._stream, GROUP, self.consumer, self._lease_ms,
            start_id=self._reclaim_from, count=limit,
        )
        self._reclaim_from = text(answer[0])
        return [claimed_entry(entry_id, fields) for entry_id, fields in stream_entries(answer[1])]

    async def _read_new(self, limit: int, block: float) -> list[Claimed]:
        # BLOCK 0 would mean forever: no BLOCK at all when not waiting.
        block_ms = max(_ms(block), 1) if block > 0 else None
        answer: Any = await self._redis.xreadgroup(
            GROUP, self.consumer, {self._stream: ">"}, count=limit, block=block_ms
        )
        if not answer:
            return []
        entries = stream_entries(answer[0][1])
        return [claimed_entry(entry_id, fields) for entry_id, fields in entries]

    async def ack(self, claimed: Claimed) -> None:
        await self._acks.submit(claimed.id)

    async def _delete(self, ids: list[str]) -> list[BaseException | None]:
        pipe = self._redis.pipeline(transaction=True)
        pipe.xack(self._stream, GROUP, *ids)
        pipe.xdel(self._stream, *ids)
        await pipe.execute()
        return [None] * len(ids)

    async def retry(self, claimed: Claimed, delay: float) -> None:
        due = _ms(time.time() + delay)
        await self._retry(
            keys=[self._stream, self._delayed],
            args=[GROUP, claimed.id, self.consumer, due, uuid.uuid4().hex],
        )

    async def dead(self, claimed: Claimed, status: int, answer: str) -> None:
        await self._bury(
            keys=[self._stream, self._dead],
            args=[GROUP, claimed.id, self.consumer, status, answer, _ms(time.time())],
        )

    async def expedite(self) -> int:
        moved = 0
        while True:  # in chunks, so no single script holds Redis for long
            count = int(await self._promote(keys=[self._delayed, self._stream],
                                            args=["+inf", EXPEDITE_CHUNK]))
            moved += count
            if count < EXPEDITE_CHUNK:
                return moved

    async def depth(self) -> int:
        # XLEN counts entries waiting and pending (deleted only at ack); ZCARD the delayed.
        pipe = self._redis.pipeline(transaction=False)
        pipe.xlen(self._stream)
        pipe.zcard(self._delayed)
        waiting, delayed = await pipe.execute()
        return int(waiting) + int(delayed)

    async def oldest_age(self) -> float:
        """Approximate: the older of the stream's head and the first-due delayed entry."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.xrange(self._stream, count=1)
        pipe.zrange(self._delayed, 0, 0)
        head, delayed = await pipe.execute()
        enqueued = [int(fields[b"e"]) for _, fields in stream_entries(head)]
        enqueued += [int(member[TOKEN_LEN:].split(b":", 2)[1]) for member in delayed]
        if not enqueued:
            return 0.0
        return max(time.time() - min(enqueued) / 1000, 0.0)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        entries = stream_entries(await self._redis.xrange(self._dead, count=limit))
        return [dead_letter(entry_id, fields) for entry_id, fields in entries]

    async def replay(self, ids: Sequence[str] | None = None) -> int:
        if ids is not None:
            return await self._replay_ids(ids)
        moved = 0
        while entries := stream_entries(await self._redis.xrange(self._dead, count=500)):
            moved += await self._replay_ids([text(entry_id) for entry_id, _ in entries])
        return moved

    async def _replay_ids(self, ids: Sequence[str]) -> int:
        keys = [self._dead, self._stream]
        now = _ms(time.time())
        moved = 0
        for dead_id in ids:
            try:
                moved += int(await self._replay(keys=keys, args=[dead_id, now]))
            except ResponseError:  # not a stream id: nothing to replay
                continue
        return moved

    async def purge(self, ids: Sequence[str] | None = None) -> int:
        if ids is None:
            pipe = self._redis.pipeline(transaction=True)
            pipe.xlen(self._dead)
            pipe.delete(self._dead)
            count, _ = await pipe.execute()
            return int(count)
        if not ids:
            return 0
        try:
            return int(await self._redis.xdel(self._dead, *ids))
        except ResponseError:  # an id that is not a stream id: delete the valid ones alone
            return sum([await self._purge_one(dead_id) for dead_id in ids])

    async def _purge_one(self, dead_id: str) -> int:
        try:
            return int(await self._redis.xdel(self._dead, dead_id))
        except ResponseError:
            return 0
