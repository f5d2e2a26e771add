"""The benchmark harness's pure pieces: ratios, targets, JSON, the wrk Lua scripts.

No load here: performance is measured by `loadtests/bench`, not by timed tests.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.settings import Settings
from gateway.validate import validate_event
from loadtests import bench, bench_e2e, bench_lua, bench_profile, bench_report, bench_stub

LOADTESTS = Path(__file__).resolve().parent.parent / "loadtests"

def results(**gateway: Any) -> dict[str, Any]:
    return {
        "git_sha": "abc123",
        "baselines": {"bare_asgi": {"rps": 20_000.0}, "bare_aiohttp": {"rps": 8_000.0}},
        "gateway": {"intake_1": {"rps": 12_000.0}, "e2e": {"received_events_per_s": 4_000.0},
                    "intake_1_without_spool": {"rps": 16_000.0},
                    "half_rate": {"p99_us": 4_500.0}, **gateway},
        "memory": {"bytes_per_key_rss": 250.0, "key_string_bytes": 85},
        "field": {"bare_aiohttp": {"rps": 4_000.0}, "bare_pyreqwest": {"rps": 12_000.0},
                  "e2e": {"received_events_per_s": 6_000.0}},
    }


def test_ratio_guards_against_missing_and_zero() -> None:
    assert bench_report.ratio(3.0, 4.0) == 0.75
    assert bench_report.ratio(None, 4.0) is None
    assert bench_report.ratio(3.0, 0.0) is None


def test_figures_are_same_run_ratios() -> None:
    figures = bench_report.figures(results())
    assert figures == {"intake_vs_bare_asgi": 0.6, "e2e_vs_bare_aiohttp": 0.5,
                       "half_rate_p99_ms": 4.5, "half_rate_forwarder_p99_ms": None,
                       "field_e2e_vs_bare_aiohttp": 1.5, "field_e2e_vs_bare_pyreqwest": 0.5,
                       "bytes_per_event_id": 250.0, "intake_without_spool_vs_bare_asgi": 0.8,
                       "field_cpu_vs_bare_pyreqwest": None}


def test_the_spool_free_intake_is_shown_for_information_only() -> None:
    row = next(r for r in bench_report.rows(results()) if "stores nothing" in r[0])
    assert row[1] == "16,000" and row[3].endswith("; 0.80 of bare ASGI")
    assert "intake_without_spool_vs_bare_asgi" not in {t.key for t in bench_report.TARGETS}


async def test_the_spool_free_intake_is_the_gateways_own() -> None:
    """It validates, dedupes and answers as the gateway does; only nothing is stored."""
    from loadtests import intake_without_spool

    body = bench_lua.fill(bench_lua.body_template(1))
    broken = body.replace(b'"event":"ian.', b'"event":"nope.')
    app = intake_without_spool.create(Settings(forwarder=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gateway", headers=bench_lua.HEADERS) as client:
        first = await client.post("/v1/events", content=body)
        again = await client.post("/v1/events", content=body)
        wrong = await client.post("/v1/events", content=broken)
    assert first.status_code == 202 and first.json()["accepted"] == 1
    assert again.json()["duplicates"] == 1
    assert wrong.status_code == 400


def test_targets_are_judged_in_their_direction() -> None:
    verdicts = {v["key"]: v["met"] for v in bench_report.judge(results())}
    assert verdicts == {"intake_vs_bare_asgi": True, "e2e_vs_bare_aiohttp": False,
                        "half_rate_p99_ms": True, "half_rate_forwarder_p99_ms": None,
                        "field_e2e_vs_bare_aiohttp": True, "field_e2e_vs_bare_pyreqwest": False,
                        "bytes_per_event_id": False}


def test_a_run_without_the_gateway_is_not_judged_on_it() -> None:
    partial = {**results(), "gateway": None}
    verdicts = {v["key"]: v["met"] for v in bench_report.judge(partial)}
    assert verdicts["intake_vs_bare_asgi"] is None
    assert verdicts["bytes_per_event_id"] is False
    assert "not measured" in bench_report.render(partial)


def test_results_are_written_as_json_named_by_time_and_sha(tmp_path: Path) -> None:
    path = bench_report.write(results(), tmp_path, when=0)
    assert path.name == "19700101T000000Z-abc123.json"
    document = json.loads(path.read_text())
    assert document["ratios"]["intake_vs_bare_asgi"] == 0.6
    assert [t["met"] for t in document["targets"]] == [True, False, True, None, True, False,
                                                       False]


def test_render_prints_figures_and_verdicts() -> None:
    text = bench_report.render(results())
    assert "MISSED" in text and "met" in text
    assert "12,000" in text


def test_render_shows_the_cpu_cost_per_request_where_measured() -> None:
    half = {"rps": 1_500.0, "p99_us": 9_000.0, "cpu_busy": 0.85}
    text = bench_report.render(results(half_rate=half))
    assert "cpu 85% = 567 us/req" in text  # 0.85 s of CPU per second over 1,500 requests
    assert "us/event" not in text  # the end-to-end run here has no CPU figure


def test_render_splits_the_end_to_end_cpu_by_thread() -> None:
    e2e = {"received_events_per_s": 4_000.0, "cpu_busy": 0.9,
           "cpu_threads": {"main": 0.5, "pyreqwest": 0.3, "other": 0.1}}
    text = bench_report.render(results(e2e=e2e))
    assert "cpu 90% = 225 us/event (main 125, other 25, pyreqwest 75)" in text


def test_the_field_ratio_by_cpu_is_shown_for_information_only() -> None:
    run = results()
    run["field"]["bare_pyreqwest"]["cpu_busy"] = 0.6  # 50 us per request at 12,000/s
    run["field"]["e2e"]["cpu_busy"] = 0.9  # 150 us per event at 6,000/s
    assert bench_report.figures(run)["field_cpu_vs_bare_pyreqwest"] == pytest.approx(1 / 3)
    row = next(r for r in bench_report.rows(run) if r[0] == "field: gateway end-to-end, defaults")
    assert row[3].endswith("; by CPU per event 0.33 of bare pyreqwest")
    assert "field_cpu_vs_bare_pyreqwest" not in {t.key for t in bench_report.TARGETS}


def test_thread_seconds_finds_this_process_main_thread() -> None:
    spinning = threading.Event()

    def spin() -> None:
        while not spinning.is_set():
            pass

    other = threading.Thread(target=spin)
    other.start()
    try:
        for _ in range(2_000_000):
            pass
        seconds = bench.thread_seconds(os.getpid())
    finally:
        spinning.set()
        other.join()
    assert seconds["main"] > 0
    assert set(seconds) <= {"main", "other", "pyreqwest"}
    assert "other" in seconds


def test_body_template_has_one_hole_per_event() -> None:
    assert len(bench_lua.body_template(1)) == 2
    assert len(bench_lua.body_template(20)) == 21


def test_filled_bodies_are_valid_events_with_unique_ids() -> None:
    document = orjson.loads(bench_lua.fill(bench_lua.body_template(20)))
    events = document["events"]
    for event in events:
        # what intake's enrichment sets before validating
        context = {"user_agent": bench_lua.USER_AGENT, "user_ip": "203.0.113.7"}
        event["data"]["sponsored_product_data"]["event_tracking_context"] = context
        assert validate_event(event) == []
    ids = {e["data"]["sponsored_product_data"]["event_id"] for e in events}
    assert len(ids) == 20


def test_lua_script_generates_unique_uuid_shaped_ids() -> None:
    lua = bench_lua.lua_script(bench_lua.Script(events=20, run_id="0a1b2c3d"))
    assert 'RUN = "0a1b2c3d"' in lua
    assert lua.count('\\"event_id\\":\\"",') == 20  # each hole closes a fragment
    # the id format: run (8 hex), thread (4 hex), version 4, variant 8, counter (12 hex)
    assert '"%s-%04x-4000-8000-%012x"' in lua
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4000-8000-[0-9a-f]{12}",
                        "0a1b2c3d-0001-4000-8000-00000000002a")
    assert '["Content-Type"] = "text/plain;charset=UTF-8"' in lua
    assert "function delay()" not in lua and "function response(" not in lua


def test_lua_script_options_add_delay_and_verification() -> None:
    lua = bench_lua.lua_script(bench_lua.Script(events=1, delay_ms=7, verify=True))
    assert "MEAN_DELAY_MS = 7" in lua
    assert "-MEAN_DELAY_MS * math.log(1 - math.random())" in lua  # exponential think time
    assert "function response(status, headers, body)" in lua


def test_lua_strings_are_escaped() -> None:
    assert bench_lua.lua_string('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


def test_wrk_summary_is_parsed_with_requests_per_second() -> None:
    output = 'Running 10s test\nBENCH_JSON {"requests": 5000, "duration_us": 2000000}\n'
    assert bench_lua.parse_wrk(output)["rps"] == 2500.0


def test_offered_rate_closes_the_backlog_gap() -> None:
    assert bench_e2e.offered_rate(1000.0, 3000.0, 3000.0, 2.0) == 1000.0
    assert bench_e2e.offered_rate(1000.0, 1000.0, 3000.0, 2.0) == 2000.0
    assert bench_e2e.offered_rate(1000.0, 9000.0, 3000.0, 2.0) == 0.0


def test_spool_depth_is_read_from_prometheus_text() -> None:
    page = b"# HELP ian_spool_depth x\n# TYPE ian_spool_depth gauge\nian_spool_depth 42.0\n"
    assert bench_e2e.spool_depth_from(page) == 42.0
    assert bench_e2e.spool_depth_from(b"other 1\n") is None


def test_stub_listens_on_loopback_and_counts_lines(tmp_path: Path) -> None:
    conf = bench_stub.stub_conf(tmp_path, 18080)
    assert "listen 127.0.0.1:18080" in conf
    assert "Successfully processed" in conf
    assert bench_stub.received(tmp_path) == 0
    bench_stub.track_log(tmp_path).write_text("1\n" * 3)
    assert bench_stub.received(tmp_path) == 3


def test_options_and_cpu_plan() -> None:
    options = bench.parse_args(["--duration", "3", "--env", "IAN_X=1=2", "--no-pin"])
    assert options.duration == 3.0 and options.env == {"IAN_X": "1=2"} and not options.pin
    assert bench.Cpus.plan(pin=False) == bench.Cpus(None, None)


def test_py_spy_stacks_are_summarized_by_own_and_inclusive_time() -> None:
    raw = "main;handle;commit 6\nmain;handle;uuid4 3\nmain;idle 1\n"
    summary = bench_profile.summarize(raw, top=2)
    assert summary["samples"] == 10
    assert summary["own"] == [("commit", 60.0), ("uuid4", 30.0)]
    assert summary["inclusive"][0] == ("main", 100.0)
    text = bench_report.render({**results(), "gateway": {"e2e": {"profile": summary}}})
    assert "60.0%  commit" in text


def test_static_script_builds_one_body_for_the_ceiling() -> None:
    lua = bench_lua.lua_script(bench_lua.Script(static=True))
    assert "wrk.body = table.concat(PARTS" in lua
    assert "function request()" not in lua


def test_pacing_picks_connections_for_the_target_rate() -> None:
    # 1,000 req/s with 20 ms of delay and 30 ms per request: 50 connections
    assert bench.pace_connections(1000.0, 20, 0.030) == 50
    assert bench.pace_connections(10.0, 20, 0.0) == 4
    # 20 connections at 400 req/s with a 20 ms delay: each request took 30 ms
    assert bench.request_time(20, 400.0, 20) == pytest.approx(0.03)


def test_a_failed_step_is_recorded_and_the_rest_still_run(tmp_path: Path) -> None:
    options = bench.parse_args([])
    runner = bench.Bench(options, bench.Procs(tmp_path), tmp_path, bench.Cpus(None, None))

    def broken() -> dict[str, Any]:
        raise RuntimeError("port did not open")

    runner.steps = lambda gateway: [  # type: ignore[method-assign]
        bench.Step("baselines", "bare_asgi", "broken", broken),
        bench.Step("memory", "", "fine", lambda: {"bytes_per_key_rss": 1.0}),
    ]
    found: dict[str, Any] = {}
    runner.run_steps(found, gateway=False)
    assert found["baselines"]["bare_asgi"] == {"error": "port did not open"}
    assert found["memory"] == {"bytes_per_key_rss": 1.0}


def test_uncommitted_lists_nothing_outside_a_repository(tmp_path: Path) -> None:
    assert bench_report.uncommitted(tmp_path) == []
