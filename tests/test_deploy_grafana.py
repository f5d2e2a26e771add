"""deploy/grafana/ian-gateway.json: every metric the dashboard (and the alert rules) name is
one the gateway exports, read from a real `/metrics` scrape of `serve --workers 2` after
traffic that makes every series appear: accepted, duplicate, rejected and bot events,
rate-limited requests, and upstream answers that retry and that dead-letter.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ROOT
from tests.support.factories import event
from tests.support.served import Served, served

DASHBOARD = ROOT / "deploy" / "grafana" / "ian-gateway.json"
RULES = ROOT / "deploy" / "prometheus" / "ian-gateway.rules.yml"
METRIC = re.compile(r"\bian_[a-z0-9_]+")
RECORDED = re.compile(r"\bian:[a-z0-9_:]+")
BOT = "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0"
RATE, BURST = 1, 10  # per client IP and worker: a burst of 40 requests meets 429s


def queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("grafana"), workers=2,
                IAN_RATE_LIMIT=str(RATE), IAN_RATE_BURST=str(BURST)) as running:
        yield running


def faults(gateway: Served, **settings: Any) -> None:
    answer = httpx.put(f"{gateway.sandbox.url}/_sandbox/faults", json=settings)
    assert answer.status_code == 200, answer.text


def post(gateway: Served, body: Any, user_agent: str = "Mozilla/5.0") -> httpx.Response:
    return httpx.post(f"{gateway.gateway.url}/v1/events", json=body,
                      headers={"Content-Type": "text/plain", "User-Agent": user_agent})


def exported(gateway: Served, wanted: set[str], timeout: float = 30.0) -> set[str]:
    """The sample names of /metrics, once `wanted` are among them (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        text = httpx.get(f"{gateway.gateway.url}/metrics").text
        names = {sample.name for family in text_string_to_metric_families(text)
                 for sample in family.samples}
        if wanted <= names or time.monotonic() > deadline:
            return names
        time.sleep(0.3)


@pytest.fixture(scope="module")
def names(gateway: Served) -> set[str]:
    faults(gateway, error_rate=1.0, status=400)  # dead letters
    assert post(gateway, event()).status_code == 202
    exported(gateway, {"ian_dead_letters_total"})
    faults(gateway, error_rate=1.0, status=429, retry_after_s=1)  # retries
    assert post(gateway, event()).status_code == 202
    exported(gateway, {"ian_forward_retries_total"})
    faults(gateway)
    repeated = event()
    for body in (repeated, repeated, event(event_id="not-a-uuid")):
        post(gateway, body)
    assert post(gateway, event(), user_agent=BOT).status_code == 202
    statuses = [post(gateway, event()).status_code for _ in range(4 * BURST)]
    assert 429 in statuses
    return exported(gateway, set())


def test_the_dashboard_names_only_exported_metrics(names: set[str]) -> None:
    named = {name for expr in queries() for name in METRIC.findall(expr)}
    assert named, "the dashboard queries no ian_* metric"
    assert named <= names, named - names


def test_the_rules_name_only_exported_metrics(names: set[str]) -> None:
    named = set(METRIC.findall(RULES.read_text()))
    assert named <= names, named - names


def test_recorded_series_the_dashboard_names_are_recorded() -> None:
    recorded = set(re.findall(r"record: (ian:[a-z0-9_:]+)", RULES.read_text()))
    named = {name for expr in queries() for name in RECORDED.findall(expr)}
    assert named <= recorded, named - recorded


def test_every_status_figure_has_a_panel() -> None:
    """/status (gateway/status.py) reads these metrics; each has a panel of its own."""
    from gateway.metrics import Metrics

    m = Metrics()
    shown = (m.events, m.rejects, m.upstream, m.dead_letters, m.rate_limited,
             m.forward_latency, m.spool_depth, m.spool_oldest)
    named = {name for expr in queries() for name in METRIC.findall(expr)}
    for metric in shown:
        (family,) = metric.describe()
        assert any(name.startswith(family.name) for name in named), family.name


def test_every_alert_has_its_signal_on_the_dashboard() -> None:
    alerts = re.findall(r"- alert: (\w+)", RULES.read_text())
    descriptions = " ".join(panel.get("description", "")
                            for panel in json.loads(DASHBOARD.read_text())["panels"])
    assert alerts and [alert for alert in alerts if alert not in descriptions] == []


def test_the_dashboard_is_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "ian-gateway" and dashboard["schemaVersion"] >= 36
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        x, w = panel["gridPos"]["x"], panel["gridPos"]["w"]
        assert x >= 0 and x + w <= 24, panel["title"]
