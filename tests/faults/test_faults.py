"""Issue 5, fault tests: real gateway processes, the sandbox's fault injection, real signals.

Each test runs `ian-gateway serve` (and `ian-gateway sandbox` as Connect) as real
processes on loopback, drives a bounded beacon load (`loadgen.LoadGen`), breaks
something (an upstream outage, SIGKILL, SIGTERM, a dead instance), waits for the
spool to drain and then asks the sandbox what arrived. The promise under test:
an event answered 202 arrives upstream, and arrives once. Where a crash makes
"once" impossible (an upstream 2xx not yet acked when the process died) the
duplicates are counted and reported (`measured`, printed in pytest's summary).

    python -m pytest -m fault tests/faults -rA
"""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.support import Process, free_port

from .loadgen import LoadGen, Tally

pytestmark = pytest.mark.fault

Spawn = Callable[..., Process]

SERVE = ["serve", "--host", "127.0.0.1", "--log-level", "warning"]
FORWARD_CONCURRENCY = 64  # IAN_FORWARD_CONCURRENCY: what a crash leaves un-acked, with the few
# acked since the spool's last commit began (well under it at these tests' rates)
GRACEFUL_EXIT_S = 30.0  # uvicorn's timeout_graceful_shutdown (20 s) + the forwarder's drain
# IAN_SPOOL_LEASE (default 30 s): a dead process's leases end after it.
SPOOL_LEASE_S = 30.0
SPOOL_PREFIX = "ian:spool:"  # gateway/spool/redis.py's default key prefix
OUTAGE_DRAIN_S = 60.0  # how long after the upstream's recovery the spool may take to drain


# -- the sandbox, through its admin API ---------------------------------------


@dataclass
class Sandbox:
    """A `ian-gateway sandbox` process and its admin API."""

    process: Process
    http: httpx.Client

    @property
    def url(self) -> str:
        return self.process.url

    def faults(self, **settings: Any) -> None:
        """PUT /_sandbox/faults: replaces every fault setting with these."""
        answer = self.http.put(f"{self.url}/_sandbox/faults", json=settings)
        assert answer.status_code == 200, answer.text

    def stats(self) -> dict[str, Any]:
        """GET /_sandbox/stats for track: accepted, distinct_ids, duplicates."""
        stats: dict[str, Any] = self.http.get(f"{self.url}/_sandbox/stats").json()["track"]
        return stats

    def arrivals(self) -> Counter[str]:
        """How many times each event_id reached /v2/ian/track."""
        seen: Counter[str] = Counter()
        offset = 0
        while True:
            page = self.http.get(f"{self.url}/_sandbox/received",
                                 params={"kind": "track", "offset": offset, "limit": 1000}).json()
            for item in page["items"]:
                (data,) = item["body"]["data"].values()
                seen[data["event_id"]] += 1
            offset += page["count"]
            if page["count"] < 1000:
                return seen


def start_sandbox(spawn: Spawn, http: httpx.Client, port: int | None = None) -> Sandbox:
    return Sandbox(spawn(["sandbox", "--log-level", "warning"], port=port), http)


@pytest.fixture
def sandbox(spawn: Spawn, http: httpx.Client) -> Sandbox:
    return start_sandbox(spawn, http)


def gateway_env(sandbox: Sandbox, spool: str, **extra: str) -> dict[str, str]:
    return {
        "IAN_UPSTREAM_URL": sandbox.url,
        "IAN_CLIENT_ID": "sandbox-client",
        "IAN_CLIENT_SECRET": "sandbox-secret",
        "IAN_SPOOL": spool,
        "IAN_FORWARD_CONCURRENCY": str(FORWARD_CONCURRENCY),
        "IAN_LOG_FORMAT": "text",
        **extra,
    }


def restart(spawn: Spawn, dead: Process, env: dict[str, str], args: list[str]) -> Process:
    """The same command on the same port; the dead process's log is kept beside."""
    dead.log.rename(dead.log.with_suffix(f".{dead.proc.pid}.log"))
    return spawn(args, port=dead.port, env=env)


def sigkill(process: Process) -> None:
    process.signal(signal.SIGKILL)
    process.proc.wait(10)


# -- the gateway's spool -------------------------------------------------------


def spool_depth(http: httpx.Client, gateway: Process) -> int:
    depth: int = http.get(f"{gateway.url}/readyz").json()["spool_depth"]
    return depth


def drain(http: httpx.Client, gateway: Process, timeout: float) -> float:
    """Wait until the spool is empty (`/readyz` spool_depth 0); answer how long it took."""
    started = time.monotonic()
    depth = -1
    while time.monotonic() - started < timeout:
        depth = spool_depth(http, gateway)
        if depth == 0:
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"spool not drained in {timeout}s: {depth} left\n{gateway.output()}")


def spooled_keys(path: Path) -> set[str]:
    """event_ids waiting in a stopped gateway's SQLite spool (records not yet acked)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return {key for (key,) in conn.execute(
            "SELECT record.value ->> 1 FROM puts, json_each(puts.records) AS record"
            " WHERE record.value ->> 0 = 'track'"
            " AND substr(puts.settled, record.key + 1, 1) = x'00'")}


# -- what arrived against what was answered -----------------------------------


@dataclass
class Outcome:
    accepted: set[str]  # answered 202, accepted
    arrivals: Counter[str]  # event_id -> times received upstream
    missing: set[str]  # accepted, never arrived: a lost event
    doubled: dict[str, int]  # arrived more than once
    strangers: set[str]  # arrived, never sent by this load

    @property
    def duplicates(self) -> int:
        return sum(count - 1 for count in self.doubled.values())


def outcome(tally: Tally, arrivals: Counter[str]) -> Outcome:
    accepted = set(tally.accepted)
    return Outcome(
        accepted=accepted,
        arrivals=arrivals,
        missing=accepted - set(arrivals),
        doubled={key: count for key, count in arrivals.items() if count > 1},
        strangers=set(arrivals) - tally.sent,
    )


def assert_load_was_clean(tally: Tally) -> None:
    """The load itself: no event refused, no re-sent event accepted a second time."""
    assert tally.rejected == []
    assert tally.accepted_twice == []
    assert tally.resent_duplicates == tally.resent
    assert len(tally.accepted) > 100


def assert_arrived_once(result: Outcome) -> None:
    assert result.missing == set(), f"{len(result.missing)} accepted events never arrived"
    assert result.doubled == {}, f"{len(result.doubled)} events arrived twice or more"
    assert result.strangers == set()


def assert_exactly_once(result: Outcome, sandbox: Sandbox) -> None:
    assert_arrived_once(result)
    stats = sandbox.stats()
    assert stats["duplicates"] == 0
    assert stats["distinct_ids"] == stats["accepted"] == len(result.arrivals)


def numbers(tally: Tally, result: Outcome, **more: Any) -> dict[str, Any]:
    return {"events_sent": len(tally.sent), "accepted": len(tally.accepted),
            "unknown": len(tally.unknown), "resent_duplicates": tally.resent_duplicates,
            "arrived": len(result.arrivals), "missing": len(result.missing),
            "unknown_arrived": len(tally.unknown & set(result.arrivals)),
            "duplicates": result.duplicates, **more}


# -- 1. a 30 s upstream outage under load --------------------------------------


@dataclass
class OutageRun:
    tally: Tally
    result: Outcome
    stats: dict[str, Any]
    peak_depth: int  # spool depth just before the upstream came back
    upstream_at_outage: int  # track calls the sandbox had accepted when it went down...
    upstream_during_outage: int  # ...and just before it came back
    spooled: set[str]  # still in the spool when the drain wait ended
    dead_letters: int
    drained_s: float | None  # seconds from recovery to an empty spool; None: not in time
    seed: int


def wait_until(load: LoadGen, moment: float) -> None:
    time.sleep(max(moment - load.elapsed(), 0.0))


def wait_for_drain(http: httpx.Client, gateway: Process, timeout: float) -> float | None:
    try:
        return drain(http, gateway, timeout)
    except AssertionError:
        return None


def dead_letter_count(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        (count,) = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    return int(count)


@pytest.fixture(scope="module")
def outage_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OutageRun]:
    """Once for the module: 40 s of load, the upstream down from t=5 s to t=35 s, then
    at most OUTAGE_DRAIN_S for the spool to empty. Two tests read it: nothing lost or
    doubled (whatever the drain time), and the drain time itself."""
    cwd = tmp_path_factory.mktemp("outage")
    spool = cwd / "spool.db"
    started: list[Process] = []

    def launch(args: list[str], env: dict[str, str] | None = None) -> Process:
        port = free_port()
        started.append(Process([*args, "--port", str(port)], port, env or {}, cwd))
        return started[-1]

    with httpx.Client(timeout=10) as http:
        try:
            sandbox = Sandbox(launch(["sandbox", "--log-level", "warning"]), http)
            gateway = launch(SERVE, gateway_env(sandbox, f"sqlite://{spool}"))
            yield outage(sandbox, gateway, spool, http)
        finally:
            for process in reversed(started):
                process.stop()


def outage(sandbox: Sandbox, gateway: Process, spool: Path, http: httpx.Client) -> OutageRun:
    with LoadGen([gateway.url], rate=20, duration=40) as load:
        wait_until(load, 5)
        sandbox.faults(outage=True)  # every Connect call: 503 with Retry-After 1
        upstream_at_outage = sandbox.stats()["accepted"]
        wait_until(load, 34.5)
        peak_depth = spool_depth(http, gateway)
        upstream_during_outage = sandbox.stats()["accepted"]
        sandbox.faults()  # healthy again
        cleared_at = time.monotonic()
        tally = load.join()
    drained = wait_for_drain(http, gateway, OUTAGE_DRAIN_S - (time.monotonic() - cleared_at))
    drained_s = None if drained is None else time.monotonic() - cleared_at
    gateway.stop()  # graceful: nothing in flight while the spool and the sandbox are read
    return OutageRun(
        tally=tally, result=outcome(tally, sandbox.arrivals()), stats=sandbox.stats(),
        peak_depth=peak_depth, upstream_at_outage=upstream_at_outage,
        upstream_during_outage=upstream_during_outage,
        spooled=spooled_keys(spool), dead_letters=dead_letter_count(spool),
        drained_s=drained_s, seed=load.seed,
    )


def test_upstream_outage_of_30s_under_load_loses_and_doubles_nothing(
        outage_run: OutageRun, measured: Callable[..., None]) -> None:
    run, result, tally = outage_run, outage_run.result, outage_run.tally
    measured(**numbers(tally, result, peak_spool_depth=run.peak_depth,
                       still_in_spool=len(run.spooled), dead_letters=run.dead_letters,
                       drained_s_after_recovery=run.drained_s, seed=run.seed))

    assert_load_was_clean(tally)
    assert set(tally.statuses) == {"202"}  # intake never waits on the upstream
    assert tally.unknown == set()
    assert run.peak_depth > 100  # the outage was real: events piled up in the spool
    assert run.upstream_during_outage == run.upstream_at_outage
    # Not lost: every accepted event arrived, or is still waiting in the spool.
    assert result.accepted - set(result.arrivals) <= run.spooled
    assert run.dead_letters == 0
    # Not doubled: what arrived, arrived once, and nothing arrived that is still spooled.
    assert result.doubled == {}
    assert result.strangers == set()
    assert run.stats["duplicates"] == 0
    assert run.stats["distinct_ids"] == len(result.arrivals)
    assert set(result.arrivals) <= result.accepted
    assert not set(result.arrivals) & run.spooled


def test_upstream_outage_of_30s_spool_drains_within_60s_of_recovery(
        outage_run: OutageRun) -> None:
    assert outage_run.drained_s is not None, (
        f"{len(outage_run.spooled)} events still in the spool {OUTAGE_DRAIN_S}s after recovery")
    assert outage_run.result.missing == set()


# -- 2. SIGKILL of the gateway mid-load, restart on the same spool -------------


def test_sigkill_of_the_gateway_mid_load_loses_nothing(
        spawn: Spawn, sandbox: Sandbox, http: httpx.Client, tmp_path: Path,
        measured: Callable[..., None]) -> None:
    """A crash loses no event answered 202; the ones the upstream took but the dead
    process never acked are sent again once their lease ends (at-least-once)."""
    env = gateway_env(sandbox, f"sqlite://{tmp_path}/spool.db")
    sandbox.faults(latency_ms=50)  # a WAN-like upstream: some requests are always in flight
    gateway = spawn(SERVE, env=env)
    kill_at = random.uniform(4.0, 10.0)
    with LoadGen([gateway.url], rate=20, duration=15) as load:
        wait_until(load, kill_at)
        sigkill(gateway)
        gateway = restart(spawn, gateway, env, SERVE)
        down_s = load.elapsed() - kill_at
        tally = load.join()
    drained = drain(http, gateway, timeout=SPOOL_LEASE_S + 30)
    result = outcome(tally, sandbox.arrivals())
    measured(**numbers(tally, result, killed_at_s=round(kill_at, 2), down_s=round(down_s, 2),
                       drained_s=round(drained, 1), seed=load.seed))

    assert_load_was_clean(tally)
    assert result.missing == set(), f"{len(result.missing)} accepted events lost"
    assert result.strangers == set()
    assert set(result.doubled.values()) <= {2}
    assert result.duplicates <= FORWARD_CONCURRENCY
    assert sandbox.stats()["duplicates"] == result.duplicates


# -- 2b. SIGKILL of the upstream (the sandbox) mid-load ------------------------


def test_sigkill_of_the_upstream_mid_load_loses_nothing(
        spawn: Spawn, sandbox: Sandbox, http: httpx.Client, tmp_path: Path,
        measured: Callable[..., None]) -> None:
    """The sandbox keeps what it received in memory, so a SIGKILL destroys the evidence:
    it is frozen first (an outage: nothing more is recorded once the PUT returns), its
    record read, then killed and a new one started on the same port, which knows no
    token. The gateway meets 503s, refused connections and a 401, and recovers."""
    env = gateway_env(sandbox, f"sqlite://{tmp_path}/spool.db")
    gateway = spawn(SERVE, env=env)
    with LoadGen([gateway.url], rate=20, duration=10) as load:
        wait_until(load, random.uniform(3.0, 6.0))
        sandbox.faults(outage=True)
        before = sandbox.arrivals()
        sigkill(sandbox.process)
        time.sleep(1.0)  # connection refused for a while
        sandbox = Sandbox(restart(spawn, sandbox.process, {}, ["sandbox", "--log-level",
                                                                "warning"]), http)
        tally = load.join()
    drained = drain(http, gateway, timeout=45)
    result = outcome(tally, before + sandbox.arrivals())
    measured(**numbers(tally, result, before_kill=len(before), drained_s=round(drained, 1),
                       seed=load.seed))

    assert_load_was_clean(tally)
    assert tally.unknown == set()
    assert len(before) > 0
    assert_exactly_once_overall(result)


def assert_exactly_once_overall(result: Outcome) -> None:
    assert_arrived_once(result)
    assert set(result.arrivals) == result.accepted


# -- 3. SIGTERM: a graceful stop under load -----------------------------------


def test_sigterm_under_load_exits_cleanly_and_keeps_every_event(
        spawn: Spawn, sandbox: Sandbox, http: httpx.Client, tmp_path: Path,
        measured: Callable[..., None]) -> None:
    """Every event answered 202, before or after the signal, is upstream or in the
    spool when the process has exited; a restart sends the rest, once."""
    spool = tmp_path / "spool.db"
    env = gateway_env(sandbox, f"sqlite://{spool}")
    # Slow and flaky: requests in flight and records waiting to retry at the signal.
    sandbox.faults(latency_ms=300, error_rate=0.2)
    gateway = spawn(SERVE, env=env)
    with LoadGen([gateway.url], rate=20, duration=10) as load:
        wait_until(load, random.uniform(4.0, 7.0))
        gateway.signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = gateway.proc.wait(GRACEFUL_EXIT_S)
        exit_s = time.monotonic() - signalled
        tally = load.join()
    upstream_at_exit = set(sandbox.arrivals())
    spooled = spooled_keys(spool)
    gateway = restart(spawn, gateway, env, SERVE)
    drained = drain(http, gateway, timeout=45)  # what waits may be in backoff (full jitter)
    result = outcome(tally, sandbox.arrivals())
    measured(**numbers(tally, result, exit_code=code, exit_s=round(exit_s, 2),
                       spooled_at_exit=len(spooled), upstream_at_exit=len(upstream_at_exit),
                       accepted_before_signal=len(tally.accepted_before(signalled)),
                       drained_s=round(drained, 1), seed=load.seed))

    assert_load_was_clean(tally)
    assert result.accepted - upstream_at_exit <= spooled, "accepted, then neither sent nor kept"
    assert not upstream_at_exit & spooled, "sent and acked, yet kept: it would be sent twice"
    assert_exactly_once(result, sandbox)
    assert code in (0, -signal.SIGTERM)  # exited by itself, in time; 0 is checked below


def test_sigterm_exit_status_is_0(spawn: Spawn, sandbox: Sandbox, tmp_path: Path) -> None:
    gateway = spawn(SERVE, env=gateway_env(sandbox, f"sqlite://{tmp_path}/spool.db"))
    gateway.signal(signal.SIGTERM)
    assert gateway.proc.wait(GRACEFUL_EXIT_S) == 0


# -- 4. two instances on one Redis ---------------------------------------------


@pytest.fixture
def empty_redis(redis_url: str) -> str:
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    return redis_url


def pending_by_pid(redis_url: str) -> dict[int, int]:
    """Entries delivered to each process's consumer and not yet acked, by process id
    (gateway/spool/redis.py names a consumer `<host>-<pid>-<random>`)."""
    with redis.Redis.from_url(redis_url) as client:
        consumers = client.xinfo_consumers(f"{SPOOL_PREFIX}queue", "forwarders")
    return {int(c["name"].decode().split("-")[-2]): int(c["pending"]) for c in consumers}


@pytest.mark.redis
def test_two_instances_on_one_redis_forward_each_event_once(
        spawn: Spawn, sandbox: Sandbox, http: httpx.Client, empty_redis: str,
        measured: Callable[..., None]) -> None:
    env = gateway_env(sandbox, empty_redis)
    first, second = spawn(SERVE, env=env), spawn(SERVE, env=env)
    assert_every_event_once(http, sandbox, measured, [first, second], rate=12, duration=10,
                            fan_out=True)


@pytest.mark.redis
def test_sigkill_of_one_redis_instance_its_pending_entries_are_reclaimed(
        spawn: Spawn, sandbox: Sandbox, http: httpx.Client, empty_redis: str,
        measured: Callable[..., None]) -> None:
    """The survivor takes the dead instance's pending entries over (XAUTOCLAIM) once
    their lease (30 s) ends; those the upstream had already taken arrive twice."""
    env = gateway_env(sandbox, empty_redis)
    # A slow upstream: each instance holds a second's worth of pending entries at any time.
    sandbox.faults(latency_ms=1000)
    victim, survivor = spawn(SERVE, env=env), spawn(SERVE, env=env)
    with LoadGen([victim.url, survivor.url], rate=12, duration=12, fan_out=True) as load:
        wait_until(load, random.uniform(4.0, 8.0))
        sigkill(victim)
        at_kill = pending_by_pid(empty_redis)
        tally = load.join()
    drained = drain(http, survivor, timeout=SPOOL_LEASE_S + 30)
    result = outcome(tally, sandbox.arrivals())
    after = pending_by_pid(empty_redis)
    pending_at_kill = at_kill.get(victim.proc.pid, 0)
    measured(**numbers(tally, result, pending_at_kill=at_kill, pending_after=after,
                       drained_s=round(drained, 1), seed=load.seed))

    assert_load_was_clean(tally)
    assert pending_at_kill > 0, at_kill
    assert after.get(victim.proc.pid, 0) == 0  # all taken over by the survivor
    assert result.missing == set(), f"{len(result.missing)} accepted events lost"
    assert result.strangers == set()
    assert result.duplicates <= pending_at_kill


# -- 5. serve --workers 2 on one SQLite file -----------------------------------


def test_two_workers_on_one_sqlite_spool_forward_each_event_once(
        spawn: Spawn, sandbox: Sandbox, http: httpx.Client, tmp_path: Path,
        measured: Callable[..., None]) -> None:
    env = gateway_env(sandbox, f"sqlite://{tmp_path}/spool.db")
    gateway = spawn([*SERVE, "--workers", "2"], env=env)
    wait_ready(http, gateway)
    assert_every_event_once(http, sandbox, measured, [gateway], rate=20, duration=10)


def assert_every_event_once(http: httpx.Client, sandbox: Sandbox, measured: Callable[..., None],
                            gateways: list[Process], **load: Any) -> None:
    """A load with nothing broken: every event answered, and each accepted one arrived once
    (drained through the first gateway)."""
    with LoadGen([gateway.url for gateway in gateways], **load) as loadgen:
        tally = loadgen.join()
    drained = drain(http, gateways[0], timeout=30)
    result = outcome(tally, sandbox.arrivals())
    measured(**numbers(tally, result, drained_s=round(drained, 1), seed=loadgen.seed))

    assert_load_was_clean(tally)
    assert tally.unknown == set()
    assert_exactly_once(result, sandbox)
    assert result.accepted == set(result.arrivals)


def wait_ready(http: httpx.Client, gateway: Process, timeout: float = 15.0) -> None:
    """The port opens before every worker is up; wait for /readyz to answer 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if http.get(f"{gateway.url}/readyz").status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"gateway not ready in {timeout}s\n{gateway.output()}")


# -- 5. the upstream throttles: 429 for 10 s under load (issue 13) -------------


def forward_limit(http: httpx.Client, gateway: Process) -> float:
    """The forwarder's adaptive in-flight limit, as Prometheus scrapes it."""
    for line in http.get(f"{gateway.url}/metrics").text.splitlines():
        if line.startswith("ian_forward_concurrency_limit "):
            return float(line.split()[1])
    raise AssertionError("no ian_forward_concurrency_limit in /metrics")


def limits_until(http: httpx.Client, gateway: Process, load: LoadGen, moment: float
                 ) -> list[float]:
    """The limit, read every 0.2 s until `moment` of the load."""
    seen = []
    while load.elapsed() < moment:
        seen.append(forward_limit(http, gateway))
        time.sleep(0.2)
    return seen


def test_429_for_10s_under_load_loses_nothing_and_the_limit_drops_and_recovers(
        spawn: Spawn, sandbox: Sandbox, http: httpx.Client, tmp_path: Path,
        measured: Callable[..., None]) -> None:
    """Instacart throttles: every Connect call answers 429 (Retry-After 1) for 10 s.
    The gateway at its default concurrency keeps every event, halves its in-flight
    limit while throttled, and grows it back on the backlog afterwards."""
    env = gateway_env(sandbox, f"sqlite://{tmp_path}/spool.db")
    del env["IAN_FORWARD_CONCURRENCY"]  # the default ceiling: the limit is the limiter's
    sandbox.faults(latency_ms=40)  # a distant upstream
    gateway = spawn(SERVE, env=env)
    with LoadGen([gateway.url], rate=20, duration=25) as load:
        before = limits_until(http, gateway, load, 5)
        sandbox.faults(latency_ms=40, outage=True, status=429, retry_after_s=1)
        throttled = limits_until(http, gateway, load, 15)
        sandbox.faults(latency_ms=40)
        after = limits_until(http, gateway, load, 25)
        tally = load.join()
    drained = drain(http, gateway, timeout=60)
    after += [forward_limit(http, gateway)]
    result = outcome(tally, sandbox.arrivals())
    measured(**numbers(tally, result, limit_before=max(before), limit_throttled=min(throttled),
                       limit_after=max(after), drained_s=round(drained, 1), seed=load.seed))

    assert_load_was_clean(tally)
    assert_exactly_once(result, sandbox)
    assert set(result.arrivals) == result.accepted
    assert min(throttled) < max(before) / 2, "the limit did not back off on 429"
    assert max(after) >= max(before), "the limit did not recover after the 429s"
