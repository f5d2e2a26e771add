"""The locustfile's traffic: valid per the catalog except its deliberately invalid share.

No network: `traffic.py` is the locustfile's generator without locust (which
monkey-patches the process with gevent), and the locustfile itself is imported
in a child process.
"""

from __future__ import annotations

import copy
import random
import subprocess
import sys
from collections import Counter
from typing import Any

import orjson
import pytest

from gateway.catalog import AD_TYPES, PAIRS, ad_data
from gateway.validate import validate_event
from loadtests import traffic
from loadtests.traffic import Beacon, PageView
from tests.support import ROOT

PAGES = 400


def errors_after_enrichment(event: dict[str, Any]) -> list[Any]:
    """What the gateway's validation answers once intake has set the tracking context."""
    enriched = copy.deepcopy(event)
    found = ad_data(enriched)
    if found is not None:
        found[1]["event_tracking_context"] = {"user_agent": traffic.USER_AGENTS[0],
                                              "user_ip": "203.0.113.7"}
    return validate_event(enriched)


@pytest.fixture(scope="module")
def beacons() -> list[Beacon]:
    rng = random.Random(42)
    return [b for _ in range(PAGES) for b in PageView(rng, "shopper-1").all_beacons()]


def test_every_event_validates_except_the_invalid_share(beacons: list[Beacon]) -> None:
    for beacon in beacons:
        failing = sum(1 for event in beacon.events if errors_after_enrichment(event))
        assert failing == beacon.invalid


def test_the_invalid_share_is_about_one_percent(beacons: list[Beacon]) -> None:
    events = sum(len(b.events) for b in beacons if not b.resent)
    invalid = sum(b.invalid for b in beacons if not b.resent)
    assert 0.003 < invalid / events < 0.03


def test_valid_events_use_catalog_pairs_across_every_ad_type(beacons: list[Beacon]) -> None:
    seen = set()
    for beacon in beacons:
        for event in beacon.events:
            found = ad_data(event)
            assert found is not None
            if not errors_after_enrichment(event):
                seen.add((event["event"], found[0].name))
    assert seen <= PAIRS
    assert {ad for _, ad in seen} == {ad.name for ad in AD_TYPES}


def test_proportions_per_page_view(beacons: list[Beacon]) -> None:
    names = Counter(e["event"] for b in beacons if not b.resent for e in b.events)
    per_page = {name: count / PAGES for name, count in names.items()}
    assert per_page["ian.sponsored_product.begin_to_render_viewport"] == pytest.approx(20, abs=0.5)
    assert per_page["ian.sponsored_product.1px_in_viewport"] == pytest.approx(18, abs=1)
    assert per_page["ian.sponsored_product.viewable_in_viewport"] == pytest.approx(12, abs=1)
    assert per_page["ian.sponsored_product.clicked"] == pytest.approx(0.6, abs=0.25)
    assert per_page["ian.sponsored_product.added_to_cart"] == pytest.approx(0.2, abs=0.15)


def test_beacons_fit_the_contract(beacons: list[Beacon]) -> None:
    for beacon in beacons:
        assert 1 <= len(beacon.events) <= traffic.MAX_BATCH
        assert len(beacon.body) <= 64 * 1024
        assert orjson.loads(beacon.body)


def test_some_beacons_are_resent_as_they_were(beacons: list[Beacon]) -> None:
    resent = [b for b in beacons if b.resent]
    assert resent
    originals = {b.body for b in beacons if not b.resent}
    assert all(b.body in originals for b in resent)


def test_event_ids_are_unique_across_fresh_beacons(beacons: list[Beacon]) -> None:
    ids = [next(iter(e["data"].values()))["event_id"]
           for b in beacons if not b.resent for e in b.events]
    valid_ids = [i for i in ids if i != "not-a-uuid"]
    assert len(valid_ids) == len(set(valid_ids))


def test_answers_are_checked_against_the_contract() -> None:
    rng = random.Random(7)
    page = PageView(rng, "shopper-2")
    beacon = Beacon(page.render_events()[:5], invalid=1)
    rejected = [{"index": 0, "errors": []}]
    assert beacon.check(202, {"accepted": 4, "duplicates": 0, "rejected": rejected}) is None
    assert beacon.check(202, {"accepted": 5, "duplicates": 0, "rejected": []}) is not None
    resent = Beacon(beacon.events, invalid=1, resent=True)
    assert resent.check(202, {"accepted": 0, "duplicates": 4, "rejected": rejected}) is None
    lone = page.lone_invalid()
    assert lone.expected_status() == 400
    assert lone.check(400, {"accepted": 0, "duplicates": 0, "rejected": rejected}) is None
    assert lone.check(202, {}) is not None


def test_the_locustfile_imports_and_defines_a_fast_http_user() -> None:
    code = (
        "from loadtests import locustfile\n"
        "from locust import FastHttpUser\n"
        "assert issubclass(locustfile.Shopper, FastHttpUser)\n"
        "assert locustfile.Shopper.tasks\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
