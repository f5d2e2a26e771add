"""Fault injection as a real HTTP client sees it: errors, Retry-After, latency, drops."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.sandbox import Sandbox
from gateway.sandbox.http import Dropped
from tests.support import thread_server

from .bodies import CREDENTIALS, token, track_event


def put(http: httpx.Client, url: str, faults: dict[str, Any]) -> httpx.Response:
    return http.put(f"{url}/_sandbox/faults", json=faults)


def track(http: httpx.Client, url: str, bearer: str) -> httpx.Response:
    return http.post(f"{url}/v2/ian/track", json=track_event(),
                     headers={"Authorization": f"Bearer {bearer}"})


def test_an_outage_fails_every_connect_call_with_retry_after(
        sandbox: Sandbox, http: httpx.Client) -> None:
    with thread_server(sandbox) as server:
        bearer = token(http, server.url)
        assert put(http, server.url, {"outage": True, "retry_after_s": 2}).status_code == 200
        failed = track(http, server.url, bearer)
        token_call = http.post(f"{server.url}/v2/oauth/token", json=CREDENTIALS)
        stats = http.get(f"{server.url}/_sandbox/stats")  # the admin API keeps working
        put(http, server.url, {"outage": False})
        recovered = track(http, server.url, bearer)
    assert failed.status_code == 503
    assert failed.headers["retry-after"] == "2"
    assert failed.json() == {"error": {"message": "Service Unavailable", "error_code": 503}}
    assert token_call.status_code == 503
    assert stats.status_code == 200
    assert recovered.status_code == 200
    assert sandbox.store.stats["track"].accepted == 1


def test_429_carries_retry_after_rounded_up(sandbox: Sandbox, http: httpx.Client) -> None:
    with thread_server(sandbox) as server:
        bearer = token(http, server.url)
        put(http, server.url, {"outage": True, "status": 429, "retry_after_s": 1.5})
        answer = track(http, server.url, bearer)
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "2"
    # doc 002, 2003: "The request could not be completed at this time, try again later."
    assert answer.json() == {"error": {
        "message": "The request could not be completed at this time, try again later.",
        "error_code": 2003}, "meta": {"wait": "2"}}


def test_an_error_rate_fails_some_calls_and_records_only_the_rest(
        sandbox: Sandbox, http: httpx.Client) -> None:
    with thread_server(sandbox) as server:
        bearer = token(http, server.url)
        put(http, server.url, {"error_rate": 0.5, "status": 502, "seed": 7})
        statuses = [track(http, server.url, bearer).status_code for _ in range(40)]
    assert set(statuses) == {200, 502}
    assert 8 <= statuses.count(502) <= 32
    assert sandbox.store.stats["track"].accepted == statuses.count(200)


def test_a_dropped_connection_gets_no_answer_and_logs_nothing(
        sandbox: Sandbox, http: httpx.Client, capfd: pytest.CaptureFixture[str]) -> None:
    with thread_server(sandbox) as server:
        bearer = token(http, server.url)
        put(http, server.url, {"drop_rate": 1.0})
        for _ in range(3):
            with pytest.raises(httpx.RemoteProtocolError):
                track(http, server.url, bearer)
        put(http, server.url, {"drop_rate": 0.0})
        after = track(http, server.url, bearer)
    assert after.status_code == 200
    assert sandbox.store.stats["track"].accepted == 1
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    assert "Exception" not in out + err


def test_some_drops_with_a_seed(sandbox: Sandbox, http: httpx.Client) -> None:
    outcomes = []
    with thread_server(sandbox) as server:
        bearer = token(http, server.url)
        put(http, server.url, {"drop_rate": 0.5, "seed": 3})
        for _ in range(20):
            try:
                outcomes.append(track(http, server.url, bearer).status_code)
            except httpx.RemoteProtocolError:
                outcomes.append(0)
    assert set(outcomes) == {0, 200}


def test_latency_delays_connect_calls_only(sandbox: Sandbox, http: httpx.Client) -> None:
    with thread_server(sandbox) as server:
        bearer = token(http, server.url)
        put(http, server.url, {"latency_ms": 300})
        started = time.monotonic()
        assert track(http, server.url, bearer).status_code == 200
        slow = time.monotonic() - started
        started = time.monotonic()
        http.get(f"{server.url}/_sandbox/stats")
        fast = time.monotonic() - started
    assert slow >= 0.3
    assert fast < 0.3


def test_get_faults_and_start_up_faults(make_sandbox: Callable[..., Sandbox],
                                        http: httpx.Client) -> None:
    sandbox = make_sandbox(faults={"error_rate": 0.2, "status": 503, "latency_ms": 50})
    with thread_server(sandbox) as server:
        start = http.get(f"{server.url}/_sandbox/faults").json()
        put(http, server.url, {"outage": True})
        changed = http.get(f"{server.url}/_sandbox/faults").json()
        http.post(f"{server.url}/_sandbox/reset")
        reset = http.get(f"{server.url}/_sandbox/faults").json()
    assert start == {"error_rate": 0.2, "status": 503, "latency_ms": 50, "outage": False,
                     "retry_after_s": 1.0, "drop_rate": 0.0, "seed": None}
    assert changed["outage"] is True
    assert changed["error_rate"] == 0.0  # PUT replaces the whole setting
    assert reset == start  # reset goes back to the start-up faults


@pytest.mark.parametrize(("faults", "message"), [
    ({"error_rate": 2}, "error_rate must be a number from 0 to 1"),
    ({"status": 200}, "status must be an HTTP error status from 400 to 599"),
    ({"latency_ms": -1}, "latency_ms must be a number >= 0"),
    ({"outage": "yes"}, "outage must be true or false"),
    ({"explode": True}, "unknown fault settings: explode"),
])
async def test_bad_fault_settings_are_400(client: httpx.AsyncClient, faults: dict[str, Any],
                                          message: str) -> None:
    answer = await client.put("/_sandbox/faults", json=faults)
    assert answer.status_code == 400
    assert answer.json() == {"errors": [{"error": {"message": message, "error_code": 1001},
                                         "meta": {"key": "faults"}}]}
    assert (await client.get("/_sandbox/faults")).json()["outage"] is False


async def test_in_process_a_drop_raises(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.set_faults(drop_rate=1.0)
    with pytest.raises(Dropped):
        await client.post("/v2/ian/track", json=track_event())
