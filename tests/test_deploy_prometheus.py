"""deploy/prometheus: the rules checked and unit-tested by promtool, and the real Prometheus
scraping a two-worker gateway.

`promtool` and `prometheus` are Debian's `prometheus` package (tests/run installs it).
The end-to-end test runs Prometheus on loopback with its own configuration and data
directory, scraping `ian-gateway serve --workers 2` every second, and asks its HTTP
API for the events the test sent: prometheus_client's multiprocess mode must add up
both workers' counts whichever worker answers the scrape.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import ROOT, free_port, wait_for_port
from tests.support.factories import ALL_PAIRS, event
from tests.support.served import Served, served

RULES = ROOT / "deploy" / "prometheus" / "ian-gateway.rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "ian-gateway.json"
# Grafana's variables, as the dashboard's queries use them, for Prometheus itself.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "5m", '"$job"': '".+"'}
RULE_TESTS = ROOT / "deploy" / "prometheus" / "ian-gateway.rules.test.yml"
SINGLE, BATCHES, BATCH = 12, 4, 5  # 12 one-event beacons and 4 beacons of 5 events
SENT = SINGLE + BATCHES * BATCH


def promtool(*args: str) -> str:
    done = subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60,
                          cwd=RULES.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_promtool_checks_the_rules() -> None:
    assert "SUCCESS: 19 rules found" in promtool("check", "rules", RULES.name)


def test_promtool_unit_tests_the_rules() -> None:
    assert "SUCCESS" in promtool("test", "rules", RULE_TESTS.name)


def test_every_alert_is_unit_tested() -> None:
    rules = RULES.read_text()
    tested = RULE_TESTS.read_text()
    alerts = [line.split(":", 1)[1].strip() for line in rules.splitlines()
              if line.strip().startswith("- alert:")]
    assert alerts and all(f"alertname: {name}" in tested for name in alerts)


class Prometheus:
    """Debian's prometheus, scraping `target` every second, in `directory`."""

    def __init__(self, directory: Path, target: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = directory / "prometheus.yml"
        config.write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "ian-gateway",
                                "static_configs": [{"targets": [target]}]}],
        }))
        self.log = (directory / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def query(self, promql: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        assert answer.status_code == 200, (promql, answer.text)
        result: list[dict[str, Any]] = answer.json()["data"]["result"]
        return result

    def value(self, promql: str, expected: float, timeout: float = 30.0) -> float | None:
        """The query's single value once it equals `expected`, else its last value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            result = self.query(promql)
            last = float(result[0]["value"][1]) if result else None
            if last == expected:
                break
            time.sleep(0.5)
        return last

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prometheus")


@pytest.fixture(scope="module")
def gateway(directory: Path) -> Iterator[Served]:
    with served(directory, workers=2) as running:
        yield running


@pytest.fixture(scope="module")
def prometheus(directory: Path, gateway: Served) -> Iterator[Prometheus]:
    server = Prometheus(directory, f"127.0.0.1:{gateway.gateway.port}")
    try:
        wait_for_port(server.port, proc=server.proc)  # type: ignore[arg-type]
        yield server
    finally:
        server.stop()


def send(url: str) -> None:
    """SENT valid events, each request on a new connection so both workers take some."""
    pairs = iter(ALL_PAIRS * 2)
    bodies = [event(*next(pairs)) for _ in range(SINGLE)]
    bodies += [{"events": [event(*next(pairs)) for _ in range(BATCH)]} for _ in range(BATCHES)]
    for body in bodies:
        answer = httpx.post(f"{url}/v1/events", json=body, headers={"Content-Type": "text/plain"})
        assert answer.status_code == 202 and not answer.json()["rejected"], answer.text


def test_prometheus_reads_every_workers_events_and_loads_the_rules(
    gateway: Served, prometheus: Prometheus
) -> None:
    send(gateway.gateway.url)
    accepted = 'sum(ian_intake_events_total{job="ian-gateway",kind="track",outcome="accepted"})'
    delivered = 'sum(ian_upstream_responses_total{job="ian-gateway",kind="track",status="200"})'
    assert prometheus.value(accepted, SENT) == SENT
    assert prometheus.value(delivered, SENT) == SENT
    assert len(gateway.received()) == SENT
    # and the rules load in the real server, every one evaluated without error
    answer = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=10).json()
    rules = [rule for group in answer["data"]["groups"] for rule in group["rules"]]
    assert len(rules) == 19
    assert all(rule["health"] != "err" for rule in rules), rules


def test_the_dashboards_queries_run_in_prometheus(prometheus: Prometheus) -> None:
    """Every query of deploy/grafana/ian-gateway.json parses and evaluates, after traffic."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    answered = []
    for expr in exprs:
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        answered.append(bool(prometheus.query(expr)))
    assert exprs and any(answered)
