"""Issue 16, fault tests: an upstream that misbehaves on purpose (tests/faults/hostile.py).

A real `ian-gateway serve` forwards to `HostileUpstream` as its IAN_UPSTREAM_URL;
the double answers each event's first attempt with one hostile behaviour and
relays every later one to a real `ian-gateway sandbox`. The promise under test:
every event answered 202 is delivered to the sandbox or dead-lettered, none is
lost, and nothing reaches any host but IAN_UPSTREAM_URL (`Elsewhere`, the target
of the redirects, receives nothing).

    python -m pytest -m fault tests/faults/test_hostile_upstream.py -rA
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support import Process
from tests.support.factories import ALL_PAIRS, event, event_id

from .hostile import BEHAVIOURS, HUGE, Elsewhere, HostileUpstream
from .test_faults import SERVE, Sandbox, gateway_env, spool_depth, start_sandbox

pytestmark = pytest.mark.fault

Spawn = Callable[..., Process]

EVENTS = 40  # accepted events per behaviour, in batches of 10
UPSTREAM_TIMEOUT = "2"  # IAN_UPSTREAM_TIMEOUT: a stall costs the gateway this long
SETTLE_S = 60.0  # how long every event may take to be delivered or dead-lettered
BEACON = {"Content-Type": "text/plain", "User-Agent": "Mozilla/5.0 (hostile upstream test)"}


@pytest.fixture
def elsewhere() -> Iterator[Elsewhere]:
    server = Elsewhere()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hostile(request: pytest.FixtureRequest, spawn: Spawn, http: httpx.Client,
            elsewhere: Elsewhere) -> Iterator[tuple[HostileUpstream, Sandbox]]:
    sandbox = start_sandbox(spawn, http)
    double = HostileUpstream(request.param, sandbox.url, elsewhere.url)
    double.start()
    yield double, sandbox
    double.stop()


def send_events(http: httpx.Client, gateway: Process) -> set[str]:
    """EVENTS fresh events; answers the event_ids the gateway accepted (all of them)."""
    accepted: set[str] = set()
    for start in range(0, EVENTS, 10):
        batch = [event(*ALL_PAIRS[(start + i) % len(ALL_PAIRS)]) for i in range(10)]
        answer = http.post(f"{gateway.url}/v1/events", content=orjson.dumps({"events": batch}),
                           headers=BEACON)
        assert answer.status_code == 202, answer.text
        assert answer.json()["accepted"] == len(batch), answer.text
        accepted |= {event_id(e) for e in batch}
    return accepted


def dead_lettered(spool: Path) -> set[str]:
    with sqlite3.connect(f"file:{spool}?mode=ro", uri=True) as conn:
        return {key for (key,) in conn.execute("SELECT key FROM dead_letters")}


def arrived(sandbox: Sandbox) -> set[str]:
    return set(sandbox.arrivals())


def settle(http: httpx.Client, gateway: Process, sandbox: Sandbox, spool: Path,
           accepted: set[str]) -> float:
    """Wait until every accepted event arrived or was dead-lettered, or until the spool is
    empty (what is missing then is lost: nothing is left to send it); answers how long."""
    started = time.monotonic()
    while time.monotonic() - started < SETTLE_S:
        if accepted <= arrived(sandbox) | dead_lettered(spool):
            break
        if spool_depth(http, gateway) == 0 and time.monotonic() - started > 1:
            break
        time.sleep(0.5)
    return time.monotonic() - started


@pytest.mark.parametrize("hostile", BEHAVIOURS, indirect=True)
def test_a_hostile_upstream_loses_nothing_and_nothing_goes_elsewhere(
        hostile: tuple[HostileUpstream, Sandbox], elsewhere: Elsewhere, spawn: Spawn,
        http: httpx.Client, tmp_path: Path, measured: Callable[..., None]) -> None:
    double, sandbox = hostile
    spool = tmp_path / "spool.db"
    env = gateway_env(sandbox, f"sqlite:///{spool}", IAN_UPSTREAM_URL=double.url,
                      IAN_UPSTREAM_TIMEOUT=UPSTREAM_TIMEOUT, IAN_SPOOL_LEASE="5")
    gateway = spawn([*SERVE], env=env)
    accepted = send_events(http, gateway)
    took = settle(http, gateway, sandbox, spool, accepted)
    delivered, dead = arrived(sandbox) & accepted, dead_lettered(spool) & accepted
    measured(behaviour=double.behaviour, accepted=len(accepted), delivered=len(delivered),
             dead_lettered=len(dead), hostile_answers=double.tally.hostile[double.behaviour],
             relayed=double.tally.relayed, elsewhere=len(elsewhere.received),
             settled_s=round(took, 1))
    # every event met the behaviour once, or the first of them for an episode
    assert double.tally.seen <= accepted
    assert len(double.tally.seen) == min(len(accepted), double.episode or len(accepted))
    assert elsewhere.received == []  # nothing left for a host nobody configured
    assert accepted - delivered - dead == set()  # nothing accepted was lost
    assert http.get(f"{gateway.url}/healthz").status_code == 200
    assert_only_garbage_is_dead(double.behaviour, dead)


def assert_only_garbage_is_dead(behaviour: str, dead: set[str]) -> None:
    """Only an upstream 4xx makes a dead letter: the garbage behaviour's 400s."""
    if behaviour != "garbage":
        assert dead == set()
    else:
        assert dead, "a 400 from the upstream is not retried"


def test_the_double_is_hostile_once_per_event_then_relays(elsewhere: Elsewhere) -> None:
    double = HostileUpstream("huge", elsewhere.url, elsewhere.url)  # relays to Elsewhere here
    double.start()
    try:
        body = orjson.dumps(event())
        with httpx.Client(base_url=double.url) as http:
            first = http.post("/v2/ian/track", content=body)
            assert first.status_code == 503 and len(first.content) == HUGE
            assert http.post("/v2/ian/track", content=body).status_code == 200
    finally:
        double.stop()
    assert len(elsewhere.received) == 1
    assert double.tally.hostile == {"huge": 1} and double.tally.relayed == 1
