"""`ian-gateway sandbox` as a real process: flags, environment, faults at start-up."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import httpx

from gateway.sandbox import add_arguments, run
from gateway.sandbox.cli import faults_from

from .bodies import CREDENTIALS, token, track_event


def test_serves_connect_and_admin(spawn: Callable[..., Any], http: httpx.Client) -> None:
    sandbox = spawn(["sandbox"])
    bearer = token(http, sandbox.url)
    answer = http.post(f"{sandbox.url}/v2/ian/track", json=track_event(),
                       headers={"Authorization": f"Bearer {bearer}"})
    assert answer.status_code == 200
    assert http.get(f"{sandbox.url}/_sandbox/stats").json()["track"]["accepted"] == 1


def test_credentials_from_the_environment(spawn: Callable[..., Any], http: httpx.Client) -> None:
    sandbox = spawn(["sandbox"], env={"IAN_SANDBOX_CLIENT_ID": "retailer",
                                      "IAN_SANDBOX_CLIENT_SECRET": "s3cret"})
    refused = http.post(f"{sandbox.url}/v2/oauth/token", json=CREDENTIALS)
    accepted = http.post(f"{sandbox.url}/v2/oauth/token", json={
        **CREDENTIALS, "client_id": "retailer", "client_secret": "s3cret"})
    assert refused.status_code == 401
    assert accepted.status_code == 200


def test_fault_flags(spawn: Callable[..., Any], http: httpx.Client) -> None:
    sandbox = spawn(["sandbox", "--outage", "--fault-status", "429", "--retry-after", "3",
                     "--token-ttl", "60"])
    faults = http.get(f"{sandbox.url}/_sandbox/faults").json()
    assert faults["outage"] is True
    assert faults["status"] == 429
    answer = http.post(f"{sandbox.url}/v2/oauth/token", json=CREDENTIALS)
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "3"
    http.put(f"{sandbox.url}/_sandbox/faults", json={})
    assert http.post(f"{sandbox.url}/v2/oauth/token", json=CREDENTIALS).json()["expires_in"] == 60


def test_defaults_and_bad_flags() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", 8081)
    assert run(parser.parse_args(["--error-rate", "1.5"])) == 2


def test_try_later_flag_sets_the_fault() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert faults_from(parser.parse_args([]))["try_later_s"] == 0
    assert faults_from(parser.parse_args(["--try-later", "30"]))["try_later_s"] == 30
    assert run(parser.parse_args(["--try-later", "-1"])) == 2
