"""Realistic storefront traffic against any gateway, with locust's FastHttpUser.

    locust -f loadtests/locustfile.py --headless -u 50 -r 10 -t 30s --host http://127.0.0.1:8080

(from the repository's root, where locust finds the package `loadtests`).

Each user is a shopper browsing: a page view fires its beacons (on render,
after the viewability second, on interaction; paced as `traffic.PAUSES` says)
as `text/plain` bodies like `sendBeacon`, with the proportions, duplicates and
invalid share stated in `traffic.py`.
Every answer is held to the contract (docs/contract.md, "Endpoints"): 202 with the exact
accepted / duplicates / rejected counts, or 400 when nothing in the beacon was
valid. 429 and 503 are the gateway pushing back: counted as failures, by name.
Set `IAN_RECORD_VERSION=1` to send production events (default 999: testing).
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from locust import FastHttpUser, between, task

from loadtests.traffic import USER_AGENTS, Beacon, PageView

PUSHBACK = {429: "429 rate limited", 503: "503 spool full"}


class Shopper(FastHttpUser):
    """One shopper: a page view every few seconds, its beacons spaced as a browser sends them."""

    wait_time = between(2, 6)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.user_id = f"shopper-{self.rng.getrandbits(40):010x}"
        self.user_agent = self.rng.choice(USER_AGENTS)
        self.record_version = os.environ.get("IAN_RECORD_VERSION", "999")

    @task
    def page_view(self) -> None:
        page = PageView(self.rng, self.user_id, self.record_version)
        for pause, beacons in page.stages():
            time.sleep(pause)  # gevent-patched by locust: other users run meanwhile
            for beacon in beacons:
                self.send(beacon)

    def send(self, beacon: Beacon) -> None:
        name = "/v1/events (resent)" if beacon.resent else "/v1/events"
        headers = {"Content-Type": "text/plain;charset=UTF-8", "User-Agent": self.user_agent}
        body: Any = beacon.body  # bytes: FastHttpSession documents it, its annotation omits it
        with self.client.post("/v1/events", data=body, headers=headers, name=name,
                              catch_response=True) as response:
            if response.status_code in PUSHBACK:
                response.failure(PUSHBACK[response.status_code])
                return
            try:
                answer = response.json()
            except ValueError:
                response.failure(f"status {response.status_code}: answer is not JSON")
                return
            problem = beacon.check(response.status_code, answer if isinstance(answer, dict) else {})
            if problem:
                response.failure(problem)
            else:
                response.success()
