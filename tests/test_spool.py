"""The spool contract, held to the same behaviour by every backend, then each backend's own.

Memory, SQLite and Redis (a real `redis-server` on loopback) answer the same
contract tests; the SQLite tests use real processes sharing one file, the
Redis ones several instances and consumers on one server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from gateway.dedupe import compact
from gateway.spool import Claimed, Record, Spool, SpoolFull, open_spool
from gateway.spool.keys import KnownKeys
from gateway.spool.memory import MemorySpool
from gateway.spool.redis import GROUP, RedisSpool
from gateway.spool.sqlite import SqliteSpool
from gateway.spool.sqlite.spool import FILE_EVERY, HUNGRY_FOR
from tests.support import run_child

OpenSpool = Callable[..., Awaitable[Any]]


def records(count: int, prefix: str = "k") -> list[Record]:
    return [
        Record("track", f"{prefix}{i}", b'{"event": "ian.display_banner.impression"}\n', f"UA/{i}")
        for i in range(count)
    ]


def keys(claimed: list[Claimed]) -> set[str]:
    return {item.record.key for item in claimed}


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def prefix() -> str:
    """Where one test's Redis keys live, apart from every other test's."""
    return f"test:{uuid.uuid4().hex}:"


@pytest.fixture
async def spools(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    prefix: str,
) -> AsyncIterator[OpenSpool]:
    """Open (and start) a spool of `backend`; every opening in one test shares its storage."""
    where = (
        request.getfixturevalue("redis_url") if backend == "redis" else str(tmp_path / "spool.db")
    )
    opened: list[Spool] = []

    async def open_(max_records: int = 100, dedupe_ttl: float = 60.0, **options: Any) -> Spool:
        spool: Spool
        if backend == "memory":
            spool = MemorySpool(max_records, dedupe_ttl)
        elif backend == "sqlite":
            spool = SqliteSpool(where, max_records, dedupe_ttl, **options)
        else:
            spool = RedisSpool(where, max_records, dedupe_ttl, prefix=prefix, **options)
        await spool.start()
        opened.append(spool)
        return spool

    yield open_
    for spool in opened:
        await spool.close()


# -- the contract: every backend ---------------------------------------------


async def test_put_answers_new_or_seen_per_record(spools: OpenSpool) -> None:
    spool = await spools()
    batch = records(3)
    assert await spool.put([*batch, batch[0]]) == [True, True, True, False]
    assert await spool.put([batch[1], *records(1, "other")]) == [False, True]
    assert await spool.put([]) == []
    assert await spool.depth() == 4


async def test_concurrent_puts_store_a_shared_key_once(spools: OpenSpool) -> None:
    spool = await spools()
    shared = records(1, "shared")[0]
    answers = await asyncio.gather(
        *(spool.put([records(1, f"own{i}-")[0], shared]) for i in range(50))
    )
    assert all(own for own, _ in answers)
    assert sum(seen for _, seen in answers) == 1
    assert await spool.depth() == 51


async def test_two_instances_on_one_storage_store_each_key_once(
    spools: OpenSpool, backend: str
) -> None:
    """Processes of one machine (sqlite) or instances sharing a Redis dedupe each other."""
    if backend == "memory":
        pytest.skip("memory: one process's alone, by design")
    first, second = await spools(1000), await spools(1000)
    batch = records(200)
    answers = await asyncio.gather(
        *(spool.put([record]) for record in batch for spool in (first, second))
    )
    assert sum(answer == [True] for answer in answers) == 200
    assert await first.put(records(1, "then")) == [True]
    assert await second.put(records(1, "then")) == [False]
    assert await second.depth() == 201
    claimed = (await first.claim(500, wait=0)) + (await second.claim(500, wait=0))
    assert sorted(keys(claimed)) == sorted(r.key for r in [*batch, *records(1, "then")])


async def test_claim_gives_the_records_as_put_and_leases_them(spools: OpenSpool) -> None:
    spool = await spools()
    batch = records(3)
    await spool.put(batch)
    claimed = await spool.claim(10, wait=0)
    assert sorted((c.record for c in claimed), key=lambda r: r.key) == batch
    assert {c.attempts for c in claimed} == {0}
    assert await spool.claim(10, wait=0) == []  # leased: not handed out twice
    assert await spool.depth() == 3  # in flight still counts


async def test_claim_respects_the_limit(spools: OpenSpool) -> None:
    spool = await spools()
    await spool.put(records(5))
    first = await spool.claim(2, wait=0)
    rest = await spool.claim(10, wait=0)
    assert len(first) == 2
    assert keys(first) | keys(rest) == {f"k{i}" for i in range(5)}
    assert not keys(first) & keys(rest)


async def test_claim_waits_for_a_put(spools: OpenSpool) -> None:
    spool = await spools()
    assert await spool.claim(10, wait=0) == []
    started = time.monotonic()
    waiting = asyncio.create_task(spool.claim(10, wait=5))
    await asyncio.sleep(0.05)
    await spool.put(records(1))
    assert keys(await waiting) == {"k0"}
    assert time.monotonic() - started < 2


async def test_ack_deletes(spools: OpenSpool) -> None:
    spool = await spools()
    await spool.put(records(2))
    claimed = await spool.claim(10, wait=0)
    for item in claimed:
        await spool.ack(item)
    assert await spool.depth() == 0
    assert await spool.oldest_age() == 0
    assert await spool.claim(10, wait=0.2) == []


async def test_retry_is_due_after_the_delay_with_one_more_attempt(spools: OpenSpool) -> None:
    spool = await spools()
    await spool.put(records(1))
    (claimed,) = await spool.claim(10, wait=0)
    await spool.retry(claimed, delay=0.4)
    retried_at = time.monotonic()
    assert await spool.claim(10, wait=0) == []
    assert await spool.depth() == 1
    (again,) = await spool.claim(10, wait=3)
    assert time.monotonic() - retried_at >= 0.35
    assert again.record == claimed.record
    assert again.attempts == 1


async def test_expedite_makes_waiting_retries_due_but_not_leased_records(spools: OpenSpool) -> None:
    spool = await spools()
    await spool.put(records(3))
    first, second, third = sorted(await spool.claim(10, wait=0), key=lambda c: c.record.key)
    await spool.retry(first, delay=3600)
    await spool.retry(second, delay=3600)
    assert await spool.claim(10, wait=0) == []
    assert await spool.expedite() == 2
    again = await spool.claim(10, wait=1)
    assert sorted(c.record.key for c in again) == [first.record.key, second.record.key]
    assert all(c.attempts == 1 for c in again)
    assert await spool.expedite() == 0  # the third is still leased: not touched
    await spool.ack(third)


async def test_dead_moves_to_dead_letters_with_the_answer(spools: OpenSpool) -> None:
    spool = await spools()
    await spool.put(records(2))
    first, second = sorted(await spool.claim(10, wait=0), key=lambda c: c.record.key)
    await spool.retry(first, delay=0)
    (first,) = await spool.claim(10, wait=2)
    await spool.dead(first, 400, '{"error": "bad"}')
    await spool.ack(second)
    assert await spool.depth() == 0
    (letter,) = await spool.dead_letters()
    assert letter.record == first.record
    assert (letter.status, letter.answer, letter.attempts) == (400, '{"error": "bad"}', 2)
    assert abs(letter.failed_at - time.time()) < 5
    assert await spool.claim(10, wait=0) == []


async def bury(spool: Spool, count: int) -> list[str]:
    """Put `count` records and dead-letter them all; the dead letters' ids."""
    await spool.put(records(count))
    for item in await spool.claim(count, wait=0):
        await spool.dead(item, 422, "no")
    return [letter.id for letter in await spool.dead_letters()]


async def test_dead_letters_respects_the_limit(spools: OpenSpool) -> None:
    spool = await spools()
    await bury(spool, 5)
    assert len(await spool.dead_letters(limit=2)) == 2
    assert len(await spool.dead_letters()) == 5


async def test_replay_some_then_all(spools: OpenSpool) -> None:
    spool = await spools()
    ids = await bury(spool, 3)
    assert await spool.replay([ids[0], "no-such-id"]) == 1
    assert len(await spool.dead_letters()) == 2
    (replayed,) = await spool.claim(10, wait=0)
    assert replayed.attempts == 0
    assert await spool.replay() == 2
    assert await spool.dead_letters() == []
    assert len(await spool.claim(10, wait=0)) == 2
    assert await spool.replay() == 0


async def test_purge_some_then_all(spools: OpenSpool) -> None:
    spool = await spools()
    ids = await bury(spool, 3)
    assert await spool.purge([ids[0], "no-such-id"]) == 1
    assert {letter.id for letter in await spool.dead_letters()} == set(ids[1:])
    assert await spool.purge() == 2
    assert await spool.dead_letters() == []
    assert await spool.depth() == 0


async def test_spool_full_stores_nothing_of_the_call(spools: OpenSpool) -> None:
    spool = await spools(max_records=3)
    assert await spool.put(records(2)) == [True, True]
    with pytest.raises(SpoolFull):
        await spool.put(records(2, "late"))
    assert await spool.depth() == 2
    for item in await spool.claim(10, wait=0):
        await spool.ack(item)
    # The refused keys were not remembered: the client's retry is new.
    assert await spool.put(records(2, "late")) == [True, True]


async def test_oldest_age_counts_from_the_put(spools: OpenSpool) -> None:
    spool = await spools()
    assert await spool.oldest_age() == 0
    await spool.put(records(1))
    await asyncio.sleep(0.3)
    assert 0.25 <= await spool.oldest_age() < 5


async def test_keys_are_forgotten_after_the_ttl(spools: OpenSpool) -> None:
    spool = await spools(dedupe_ttl=0.2)
    assert await spool.put(records(1)) == [True]
    assert await spool.put(records(1)) == [False]
    await asyncio.sleep(0.35)
    assert await spool.put(records(1)) == [True]


async def test_an_order_key_outlives_the_dedupe_ttl(spools: OpenSpool) -> None:
    """An order re-sent after IAN_DEDUPE_TTL is still a duplicate: kept for three days."""
    spool = await spools(dedupe_ttl=0.2)
    order = Record("order_log", "order-1@2026-11-22T10:00:00Z", b"{}", "")
    event = records(1)[0]
    assert await spool.put([order, event]) == [True, True]
    await asyncio.sleep(0.35)
    assert await spool.put([order, event]) == [False, True]


async def test_close_and_reopen_resumes(spools: OpenSpool, backend: str) -> None:
    if backend == "memory":
        pytest.skip("memory: keeps nothing across a restart, by design")
    spool = await spools()
    await spool.put(records(4))
    leased = await spool.claim(2, wait=0)  # in flight when the process stops
    await spool.dead(leased[0], 400, "bad")
    await spool.close()

    reopened = await spools()
    assert await reopened.depth() == 3
    assert await reopened.put(records(4)) == [False] * 4  # the dedupe keys were kept
    assert len(await reopened.dead_letters()) == 1
    resumed = await reopened.claim(10, wait=1)
    assert keys(resumed) == {"k0", "k1", "k2", "k3"} - {leased[0].record.key}


async def test_acks_made_just_before_close_are_kept(spools: OpenSpool, backend: str) -> None:
    if backend == "memory":
        pytest.skip("memory: keeps nothing across a restart, by design")
    spool = await spools()
    await spool.put(records(3))
    claimed = await spool.claim(10, wait=0)
    for item in claimed[:2]:
        await spool.ack(item)  # sqlite: queued, committed with the writer's next batch
    await spool.close()

    reopened = await spools()
    assert await reopened.depth() == 1
    assert keys(await reopened.claim(10, wait=1)) == keys(claimed[2:])


# -- SQLite: processes sharing one file ---------------------------------------

CLAIMER = """
import asyncio, json, os, sys
from gateway.spool.keys import KnownKeys
from gateway.spool.sqlite import SqliteSpool

async def until(path):
    while not os.path.exists(path):
        await asyncio.sleep(0.005)

async def main(path, go, me, other):
    spool = SqliteSpool(path, 1_000_000, 60)
    await spool.start()
    print("ready", flush=True)
    await until(go)
    taken, idle = [], 0
    while idle < 3:
        claimed = await spool.claim(5, wait=0.1)
        idle = 0 if claimed else idle + 1
        taken += [item.record.key for item in claimed]
        if not os.path.exists(me):  # after the first claim, meet the other process,
            open(me, "w").close()   # so that neither can drain the spool alone
            await asyncio.wait_for(until(other), 60)
        await asyncio.gather(*(spool.ack(item) for item in claimed))
    await spool.close()
    print(json.dumps(taken), flush=True)

asyncio.run(main(*sys.argv[1:]))
"""

CRASHER = """
import asyncio, os, signal, sys
from gateway.spool import Record
from gateway.spool.keys import KnownKeys
from gateway.spool.sqlite import SqliteSpool

async def main(path):
    spool = SqliteSpool(path, 1000, 60, lease=0.5)
    await spool.start()
    # Two puts: a claim leases a put's row whole, so the ten claimed are the first put.
    stored = await spool.put([Record("track", f"k{i}", b"{}", "UA") for i in range(10)])
    stored += await spool.put([Record("track", f"k{i}", b"{}", "UA") for i in range(10, 50)])
    claimed = await spool.claim(10, wait=0)
    print(sum(stored), len(claimed), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # dies holding ten leases, never closed

asyncio.run(main(sys.argv[1]))
"""


async def test_sqlite_two_processes_never_claim_the_same_record(tmp_path: Path) -> None:
    path = str(tmp_path / "spool.db")
    feeder = SqliteSpool(path, 1_000_000, 60)
    await feeder.start()
    for start in range(0, 1000, 100):
        await feeder.put([Record("track", f"k{i}", b"{}", "UA") for i in range(start, start + 100)])
    go = tmp_path / "go"
    marks = [str(tmp_path / "first"), str(tmp_path / "second")]
    children = [
        run_child(CLAIMER, [path, str(go), *marks]),
        run_child(CLAIMER, [path, str(go), *marks[::-1]]),
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready", child.stderr
        go.touch()
        outputs = [child.communicate(timeout=120) for child in children]
    finally:
        for child in children:
            child.kill()
    first, second = (json.loads(out) for out, _ in outputs)
    assert not set(first) & set(second)
    assert len(first) + len(second) == 1000
    assert set(first) | set(second) == {f"k{i}" for i in range(1000)}
    assert first and second, "both processes should have claimed some"
    assert await feeder.depth() == 0
    await feeder.close()


async def test_sqlite_resumes_after_a_crash_and_reclaims_its_leases(tmp_path: Path) -> None:
    path = str(tmp_path / "spool.db")
    child = run_child(CRASHER, [path])
    out, err = child.communicate(timeout=60)
    assert child.returncode == -9, err
    assert out.split() == ["50", "10"]
    spool = SqliteSpool(path, 1000, 60)
    await spool.start()
    try:
        assert await spool.depth() == 50
        assert await spool.put(records(1)) == [False]  # k0 is remembered
        free = await spool.claim(100, wait=0)
        assert len(free) == 40  # ten are still leased to the dead process
        expired = await spool.claim(100, wait=3)
        assert len(expired) == 10
        assert not keys(free) & keys(expired)
    finally:
        await spool.close()


async def test_sqlite_lease_taken_over_ignores_the_old_owner(tmp_path: Path) -> None:
    path = str(tmp_path / "spool.db")
    slow = SqliteSpool(path, 100, 60, lease=0.2)
    other = SqliteSpool(path, 100, 60, lease=30)
    await slow.start()
    await other.start()
    try:
        await slow.put(records(1))
        (stale,) = await slow.claim(1, wait=0)
        assert await other.claim(1, wait=0) == []
        (taken,) = await other.claim(1, wait=2)
        await slow.retry(stale, delay=0)  # too late: the lease is no longer its own
        await slow.dead(stale, 400, "late")
        assert await slow.dead_letters() == []
        await other.ack(taken)
        assert await other.depth() == 0
    finally:
        await slow.close()
        await other.close()


@contextlib.asynccontextmanager
async def here_and_elsewhere(tmp_path: Path, **options: Any
                             ) -> AsyncIterator[tuple[SqliteSpool, SqliteSpool]]:
    """This process's spool (with `options`) and another process's, on one file."""
    path = str(tmp_path / "spool.db")
    spool, other = SqliteSpool(path, 100, 60, **options), SqliteSpool(path, 100, 60)
    await spool.start()
    await other.start()
    try:
        yield spool, other
    finally:
        await spool.close()
        await other.close()


async def test_sqlite_hands_a_put_to_a_waiting_claim_leased_in_the_file(tmp_path: Path) -> None:
    # poll_interval: the file is not looked at again
    async with here_and_elsewhere(tmp_path, poll_interval=60) as (spool, other):
        assert await spool.claim(10, wait=0) == []  # this process's forwarder wants records
        assert await spool.put(records(3)) == [True] * 3
        commits = spool.commits
        claimed = await spool.claim(10, wait=0)
        assert keys(claimed) == {"k0", "k1", "k2"}
        assert [item.attempts for item in claimed] == [0, 0, 0]
        assert [item.record for item in claimed] == records(3)
        assert spool.commits == commits  # handed over in memory, not leased by a write
        assert await other.claim(10, wait=0) == []  # leased in the file all the same
        for item in claimed:
            await spool.ack(item)
        assert await spool.depth() == 0


async def test_sqlite_a_put_nobody_waits_for_is_due_to_any_process(tmp_path: Path) -> None:
    async with here_and_elsewhere(tmp_path) as (spool, other):
        await spool.put(records(3))  # no claim here yet: not handed over
        assert keys(await other.claim(10, wait=0)) == {"k0", "k1", "k2"}
        assert await spool.claim(10, wait=0) == []
        await asyncio.sleep(HUNGRY_FOR + 0.1)  # no claim here since: not handed over either
        await spool.put(records(1, "b"))
        assert keys(await other.claim(10, wait=0)) == {"b0"}


async def test_sqlite_a_backlog_in_the_file_moves_while_records_are_handed(
        tmp_path: Path) -> None:
    async with here_and_elsewhere(tmp_path, poll_interval=60) as (spool, other):
        for old in records(8, "old"):  # nobody claims there: in the file, a put (row) each
            await other.put([old])
        assert keys(await spool.claim(2, wait=0)) == {"old0", "old1"}
        await spool.put(records(2 * FILE_EVERY, "new"))  # handed over
        for _ in range(2, FILE_EVERY):
            assert {key[:3] for key in keys(await spool.claim(2, wait=0))} == {"new"}
        assert {key[:3] for key in keys(await spool.claim(2, wait=0))} == {"new", "old"}


async def test_sqlite_handed_records_go_back_to_the_file(tmp_path: Path) -> None:
    """On close, and when half their lease has gone by before a claim takes them."""
    async with here_and_elsewhere(tmp_path, lease=0.4) as (spool, other):
        assert await spool.claim(10, wait=0) == []
        await spool.put(records(2))
        await asyncio.sleep(0.25)  # past half the lease: not handed out, claimed from the file
        assert await spool.claim(10, wait=0) == []
        taken = await spool.claim(10, wait=2)
        assert keys(taken) == {"k0", "k1"}
        for item in taken:
            await spool.ack(item)
        await spool.put(records(2, "c"))  # a claim was just made here: handed over
        await spool.close()
        assert keys(await other.claim(10, wait=0)) == {"c0", "c1"}  # released on close


async def test_sqlite_group_commit_batches_concurrent_puts(tmp_path: Path) -> None:
    spool = SqliteSpool(str(tmp_path / "spool.db"), 10_000, 60)
    await spool.start()
    try:
        before = spool.commits
        answers = await asyncio.gather(*(spool.put(records(1, f"p{i}-")) for i in range(200)))
        assert answers == [[True]] * 200
        assert await spool.depth() == 200
        assert spool.commits - before <= 20, f"{spool.commits - before} transactions for 200 puts"
    finally:
        await spool.close()


async def test_sqlite_one_full_put_does_not_undo_its_batch(tmp_path: Path) -> None:
    spool = SqliteSpool(str(tmp_path / "spool.db"), 5, 60)
    await spool.start()
    try:
        answers = await asyncio.gather(
            spool.put(records(3, "a")), spool.put(records(3, "b")), return_exceptions=True
        )
        assert sorted(type(answer).__name__ for answer in answers) == ["SpoolFull", "list"]
        assert await spool.depth() == 3
    finally:
        await spool.close()


async def test_sqlite_locked_past_busy_timeout_is_spool_full_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = SqliteSpool(str(path), 100, 60, busy_timeout=0.2)
    await spool.start()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(SpoolFull):
            await spool.put(records(1))
        other.execute("ROLLBACK")
        assert await spool.put(records(1)) == [True]  # the writer lived on; nothing was kept
        assert await spool.depth() == 1
    finally:
        other.close()
        await spool.close()


async def test_sqlite_a_failed_transaction_remembers_none_of_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = SqliteSpool(str(path), 100, 60)
    await spool.start()
    with sqlite3.connect(path) as conn:  # fails the insert of records, after the keys' log
        conn.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON puts WHEN NEW.records LIKE '%\"k1\"%'"
            " BEGIN SELECT RAISE(ABORT, 'boom'); END"
        )
    try:
        with pytest.raises(SpoolFull):
            await spool.put(records(2))
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TRIGGER boom")
        assert await spool.put(records(2)) == [True, True]  # the client's retry is new
        assert await spool.depth() == 2
    finally:
        await spool.close()


async def test_sqlite_full_disk_refuses_puts(tmp_path: Path) -> None:
    spool = SqliteSpool(str(tmp_path / "spool.db"), 100, 60, min_free_bytes=2**62)
    await spool.start()
    try:
        with pytest.raises(SpoolFull):
            await spool.put(records(1))
        assert await spool.depth() == 0
    finally:
        await spool.close()


async def test_sqlite_forgets_expired_keys(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = SqliteSpool(str(path), 100, 0.1)
    await spool.start()
    try:
        await spool.put(records(5))
        await asyncio.sleep(0.5)
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM key_batches").fetchone() == (0,)
    finally:
        await spool.close()


async def test_sqlite_an_expired_key_is_new_once_and_remembered_afresh(tmp_path: Path) -> None:
    path = str(tmp_path / "spool.db")
    spool = SqliteSpool(path, 100, 1.0)
    await spool.start()
    try:
        first, second = records(2)
        assert await spool.put([first]) == [True]
        await asyncio.sleep(1.1)  # first's time ran out; its log row may still be there
        assert await spool.put([first, second, first]) == [True, True, False]
        assert await spool.put([first]) == [False]
        restarted = SqliteSpool(path, 100, 1.0)  # learns the log, the older row too
        await restarted.start()
        try:
            assert await restarted.put([first, second]) == [False, False]
        finally:
            await restarted.close()
    finally:
        await spool.close()


async def test_sqlite_keys_of_an_earlier_version_are_kept(tmp_path: Path) -> None:
    """Spools before the key log kept keys in a unique index: moved to the log on open."""
    path = tmp_path / "spool.db"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE keys (key TEXT PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID"
        )
        old.executemany(
            "INSERT INTO keys VALUES (?, ?)", [("k0", time.time() + 60), ("k1", time.time() - 1)]
        )
    spool = SqliteSpool(str(path), 100, 60.0)
    await spool.start()
    try:
        assert await spool.put(records(3)) == [False, True, True]  # k1 had expired
        with sqlite3.connect(path) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "keys" not in tables
    finally:
        await spool.close()


async def test_sqlite_a_key_log_of_an_earlier_version_is_kept(tmp_path: Path) -> None:
    """Spools before the key batches logged a key a row: moved to batches of one on open."""
    path = tmp_path / "spool.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE key_log (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                    " key TEXT NOT NULL, expires_at REAL NOT NULL)")
        old.executemany("INSERT INTO key_log (key, expires_at) VALUES (?, ?)",
                        [("k0", time.time() + 60), ("k1", time.time() - 1), ("k2", 2e9)])
    spool = SqliteSpool(str(path), 100, 60.0)
    await spool.start()
    try:
        assert await spool.put(records(4)) == [False, True, False, True]  # k1 had expired
        with sqlite3.connect(path) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            logged = conn.execute("SELECT keys FROM key_batches ORDER BY id").fetchall()
        assert "key_log" not in tables
        assert [json.loads(keys) for (keys,) in logged] == [["k0"], ["k1"], ["k2"], ["k1", "k3"]]
    finally:
        await spool.close()


def test_known_keys_each_until_its_own_expiry() -> None:
    known = KnownKeys()
    event_id = compact(str(uuid.uuid4()))
    known.learn([(event_id, 10.0), ("order-1@t", 100.0)])
    assert known.known(event_id, 9.9)
    assert not known.known(event_id, 10.0)
    assert known.known("order-1@t", 99.0)
    known.learn([(event_id, 20.0)])  # learned again: the later expiry wins
    known.learn([(event_id, 15.0)])
    known.forget_expired(16.0)  # the batches of 10 and 15 go; the key stays, for its 20
    assert known.known(event_id, 19.0) and len(known) == 2
    known.forget_expired(20.0)
    assert not known.known(event_id, 0.0) and len(known) == 1
    known.forget_expired(100.0)
    assert len(known) == 0


# Earlier versions' table of records, a row each (schema.py moves them to `puts`).
OLD_RECORDS = """
    CREATE TABLE records (id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL, key TEXT NOT NULL, body BLOB NOT NULL, user_agent TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, enqueued_at REAL NOT NULL,
        due_at REAL NOT NULL, lease_owner TEXT)"""
# Records not settled, counted in the rows of the puts (schema.py).
WAITING_RECORDS = """
    SELECT count(*) FROM puts, json_each(puts.records) AS record
    WHERE substr(puts.settled, record.key + 1, 1) = x'00'"""


async def test_sqlite_depth_stays_exact_through_every_call(tmp_path: Path) -> None:
    """The writer keeps the count: after each call it equals count(*) of the records."""
    path = tmp_path / "spool.db"
    with sqlite3.connect(path) as old:  # a spool of an earlier version: triggers kept it
        old.execute("CREATE TABLE counts (name TEXT PRIMARY KEY, n INTEGER NOT NULL)")
        old.execute(OLD_RECORDS)
        old.execute("INSERT INTO counts VALUES ('records', 0)")
        old.execute(
            "CREATE TRIGGER records_counted_in AFTER INSERT ON records"
            " BEGIN UPDATE counts SET n = n + 1 WHERE name = 'records'; END"
        )
    spool = SqliteSpool(str(path), 100, 60.0)
    await spool.start()

    async def exact() -> int:
        depth = await spool.depth()  # after this process's acks are committed
        with sqlite3.connect(path) as conn:
            (actual,) = conn.execute(WAITING_RECORDS).fetchone()
        assert depth == actual
        return depth

    try:
        await spool.put(records(6))
        assert await exact() == 6
        first, second, third, *rest = await spool.claim(10, wait=0)
        await spool.ack(first)
        await spool.ack(second)
        assert await exact() == 4
        await spool.dead(third, 400, "bad")
        assert await exact() == 3
        await spool.retry(rest[0], delay=0)
        assert await exact() == 3
        assert await spool.replay() == 1
        assert await exact() == 4
        assert await spool.put(records(2, "more")) == [True, True]
        assert await exact() == 6
    finally:
        await spool.close()


async def test_sqlite_url_default_is_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spool = open_spool("sqlite:///./ian-spool.db", 100, 60)
    await spool.start()
    await spool.close()
    assert (tmp_path / "ian-spool.db").exists()


def start_then_close(path: str, together: Any) -> None:
    """A worker process's spool opening: start, once every other worker is about to, and close."""
    async def run() -> None:
        spool = SqliteSpool(path, 100, 60)
        await spool.start()
        await spool.close()

    together.wait()
    asyncio.run(run())


def test_sqlite_workers_starting_together_on_a_fresh_file_each_open_it(tmp_path: Path) -> None:
    """`serve --workers N` starts its workers at once on one file: none may fail to open it
    (each turns a new file to WAL; SQLite can answer that busy at once, not after a wait)."""
    fork = multiprocessing.get_context("fork")
    for attempt in range(40):
        together = fork.Barrier(4)
        path = str(tmp_path / f"spool-{attempt}.db")
        workers = [fork.Process(target=start_then_close, args=(path, together)) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert [worker.exitcode for worker in workers] == [0, 0, 0, 0], f"attempt {attempt}"


# -- Redis: instances and consumers on one server ------------------------------


# The Redis tests below open spools of the contract's `spools` fixture, on Redis alone.
on_redis = pytest.mark.parametrize("backend", ["redis"])


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A plain client of the test server, to look behind the spool."""
    raw = aioredis.Redis.from_url(redis_url)
    yield raw
    await raw.aclose()


@pytest.mark.redis
@on_redis
async def test_redis_reclaims_a_dead_consumers_entries(
    spools: OpenSpool, raw_redis: aioredis.Redis, prefix: str
) -> None:
    spool = await spools(lease=0.3)
    await spool.put(records(3))
    # A forwarder that read the entries and died before acking them.
    read = await raw_redis.xreadgroup(GROUP, "dead-forwarder", {f"{prefix}queue": ">"}, count=10)
    assert len(read[0][1]) == 3
    assert await spool.claim(10, wait=0) == []
    await asyncio.sleep(0.4)
    reclaimed = await spool.claim(10, wait=2)
    assert keys(reclaimed) == {"k0", "k1", "k2"}
    for item in reclaimed:
        await spool.ack(item)
    assert await spool.depth() == 0
    assert (await raw_redis.xpending(f"{prefix}queue", GROUP))["pending"] == 0


@pytest.mark.redis
@on_redis
async def test_redis_lease_taken_over_ignores_the_old_owner(spools: OpenSpool) -> None:
    slow = await spools(lease=0.2)
    other = await spools(lease=0.2)
    await slow.put(records(1))
    (stale,) = await slow.claim(1, wait=0)
    await asyncio.sleep(0.3)
    (taken,) = await other.claim(1, wait=2)
    await slow.retry(stale, delay=0)  # too late: the entry is no longer its own
    await slow.dead(stale, 400, "late")
    assert await slow.dead_letters() == []
    assert await slow.depth() == 1
    await other.ack(taken)
    assert await other.depth() == 0


@pytest.mark.redis
@on_redis
async def test_redis_failed_xadd_forgets_the_keys(
    spools: OpenSpool, raw_redis: aioredis.Redis, prefix: str
) -> None:
    spool = await spools()
    # An entry with the largest possible id: every later `XADD *` is refused.
    stream = f"{prefix}queue"
    top = await raw_redis.xadd(stream, {"x": "1"}, id="18446744073709551615-18446744073709551615")
    await raw_redis.xdel(stream, top)
    with pytest.raises(SpoolFull):
        await spool.put(records(2))
    assert await raw_redis.exists(f"{prefix}key:k0", f"{prefix}key:k1") == 0


@pytest.mark.redis
@on_redis
async def test_redis_entries_of_a_closed_instance_are_claimable_at_once(
    spools: OpenSpool,
) -> None:
    leaving = await spools(lease=30)
    staying = await spools(lease=30)
    await leaving.put(records(2))
    assert len(await leaving.claim(10, wait=0)) == 2
    await leaving.close()
    assert keys(await staying.claim(10, wait=1)) == {"k0", "k1"}


async def test_sqlite_a_put_is_one_row_settled_record_by_record(tmp_path: Path) -> None:
    """A beacon's records share a row: each is acked, retried or dead on its own, a lease that
    ends sends again only the ones not settled, and the row goes with the last of them."""
    async with here_and_elsewhere(tmp_path, lease=0.3) as (spool, other):
        await spool.put(records(4))
        first, second, third, fourth = await spool.claim(10, wait=0)
        await spool.ack(first)
        await spool.dead(second, 400, "bad")
        await spool.retry(third, delay=60)
        assert await spool.depth() == 2  # the retry waits in a row of its own; the fourth
        # This process stops answering: the fourth comes back when the lease ends, alone.
        (again,) = await other.claim(10, wait=2)
        assert again.record == fourth.record
        assert [letter.record.key for letter in await other.dead_letters()] == ["k1"]
        with sqlite3.connect(tmp_path / "spool.db") as conn:
            rows = conn.execute("SELECT attempts, records FROM puts ORDER BY id").fetchall()
        assert [(attempts, [r[1] for r in json.loads(meta)]) for attempts, meta in rows] == [
            (0, ["k0", "k1", "k2", "k3"]), (1, ["k2"])]
        await other.ack(again)
        await spool.ack(fourth)  # late, from the first owner: the upstream has it all the same
        assert await spool.depth() == 1
        with sqlite3.connect(tmp_path / "spool.db") as conn:
            assert conn.execute("SELECT count(*) FROM puts").fetchone() == (1,)


async def test_sqlite_records_of_an_earlier_version_are_moved_to_puts(tmp_path: Path) -> None:
    """A file with a row per record (up to 0.x): each becomes a put of one, nothing lost."""
    path = tmp_path / "spool.db"
    with sqlite3.connect(path) as old:
        old.execute(OLD_RECORDS)
        old.execute("CREATE TABLE counts (name TEXT PRIMARY KEY, n INTEGER NOT NULL)")
        old.execute("INSERT INTO counts VALUES ('records', 2)")
        old.executemany(
            "INSERT INTO records (kind, key, body, user_agent, attempts, enqueued_at, due_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [("track", "e1", b'{"event_id":"e1","x":"\\u00e9"}', "UA/1", 2, 1.0, 1.0),
             ("order_log", "o1@t", b'{"order_id":"o1"}', "", 0, 2.0, 2.0)])
    spool = SqliteSpool(str(path), 100, 60.0)
    await spool.start()
    try:
        assert await spool.depth() == 2
        claimed = await spool.claim(10, wait=0)
        assert [(c.record, c.attempts) for c in claimed] == [
            (Record("track", "e1", b'{"event_id":"e1","x":"\\u00e9"}', "UA/1"), 2),
            (Record("order_log", "o1@t", b'{"order_id":"o1"}', ""), 0)]
        for item in claimed:
            await spool.ack(item)
        assert await spool.depth() == 0
    finally:
        await spool.close()
