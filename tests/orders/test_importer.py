"""gateway/orders/importer.py: `ian-gateway orders import FILE.jsonl` as an operator sees it.

The sender's retries against a scripted transport; `run` against a real order
intake on loopback; and the backfill end to end: 10,000 orders from a file,
through a real `ian-gateway serve`, arriving at the sandbox exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from gateway.dedupe import Dedupe
from gateway.metrics import Metrics
from gateway.orders.importer import (
    Fatal,
    Line,
    Progress,
    Rejection,
    Sender,
    Summary,
    add_arguments,
    endpoint,
    retry_after,
    run,
)
from gateway.orders.intake import OrderIntake
from gateway.settings import Settings
from gateway.spool.memory import MemorySpool
from tests.support import ROOT, ThreadServer, thread_server
from tests.support.factories import order as make_order

KEY = "k-import-test-0123456789"


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_bytes(b"".join(
        (line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines
    ))
    return path


def lines_of(*orders: dict[str, Any]) -> list[Line]:
    return [Line(i + 1, orjson.dumps(o)) for i, o in enumerate(orders)]


def accepted(count: int) -> httpx.Response:
    return httpx.Response(202, json={"accepted": count, "duplicates": 0, "rejected": []})


class Script:
    """A transport answering from a list of handlers, one per request, recording requests."""

    def __init__(self, *answers: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0)(request)


def sender_for(script: Script, retries: int = 5) -> tuple[Sender, list[float]]:
    slept: list[float] = []
    client = httpx.Client(transport=httpx.MockTransport(script))
    return Sender(client, "http://gw/v1/orders", KEY, retries, sleep=slept.append), slept


def test_batch_body_and_headers() -> None:
    script = Script(lambda r: accepted(2))
    sender, _ = sender_for(script)
    summary = Summary()
    sender.send(lines_of(make_order("a"), make_order("b")), summary)
    [request] = script.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert [o["properties"]["order_id"] for o in orjson.loads(request.content)["orders"]] == [
        "a", "b"]
    assert summary.accepted == 2


@pytest.mark.parametrize("status", [503, 429])
def test_retries_honour_retry_after(status: int) -> None:
    script = Script(lambda r: httpx.Response(status, headers={"Retry-After": "3"}),
                    lambda r: httpx.Response(status, headers={"Retry-After": "1"}),
                    lambda r: accepted(1))
    sender, slept = sender_for(script)
    summary = Summary()
    sender.send(lines_of(make_order("a")), summary)
    assert slept == [3.0, 1.0]
    assert summary.accepted == 1
    assert len(script.requests) == 3


def test_retry_after_as_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    answer = httpx.Response(503, headers={"Retry-After": format_datetime(when, usegmt=True)})
    assert 25 <= retry_after(answer, 1) <= 30


def test_retry_after_missing_or_silly() -> None:
    assert retry_after(httpx.Response(503), 1) == 0.5
    assert retry_after(httpx.Response(503, headers={"Retry-After": "soon"}), 2) == 1.0
    assert retry_after(httpx.Response(503, headers={"Retry-After": "86400"}), 1) == 60.0


def test_connection_errors_are_retried() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    script = Script(refuse, refuse, lambda r: accepted(1))
    sender, slept = sender_for(script)
    summary = Summary()
    sender.send(lines_of(make_order("a")), summary)
    assert len(slept) == 2
    assert summary.accepted == 1


def test_gives_up_after_the_retries() -> None:
    script = Script(*[lambda r: httpx.Response(503, headers={"Retry-After": "1"})] * 3)
    sender, _ = sender_for(script, retries=3)
    with pytest.raises(Fatal, match="gave up after 3 attempts"):
        sender.send(lines_of(make_order("a")), Summary())


def test_wrong_key_stops_at_once() -> None:
    script = Script(lambda r: httpx.Response(401, json={"errors": []}))
    sender, slept = sender_for(script)
    with pytest.raises(Fatal, match="refused the key") as raised:
        sender.send(lines_of(make_order("a")), Summary())
    assert KEY not in str(raised.value)
    assert slept == []


def test_413_splits_the_batch() -> None:
    def limit(request: httpx.Request) -> httpx.Response:
        orders = orjson.loads(request.content)["orders"]
        return httpx.Response(413) if len(orders) > 2 else accepted(len(orders))

    script = Script(*[limit] * 7)
    sender, _ = sender_for(script)
    summary = Summary()
    sender.send(lines_of(*(make_order(str(i)) for i in range(5))), summary)
    assert summary.accepted == 5


def test_rejections_map_to_line_numbers() -> None:
    answer = {"accepted": 1, "duplicates": 0, "rejected": [{"index": 1, "errors": [
        {"error": {"message": "can't be blank", "error_code": 1001},
         "meta": {"key": "properties.order_items"}}]}]}
    script = Script(lambda r: httpx.Response(202, json=answer))
    sender, _ = sender_for(script)
    summary = Summary()
    lines = [Line(10, orjson.dumps(make_order("a"))), Line(12, orjson.dumps(make_order("b")))]
    sender.send(lines, summary)
    [rejection] = summary.rejected
    assert rejection.line == 12
    assert rejection.reasons == ["properties.order_items: can't be blank (1001)"]


@pytest.mark.parametrize("answer", [
    httpx.Response(404, text="not found"),
    httpx.Response(400, json={"errors": [{"error": {"message": "x", "error_code": 9999}}]}),
    httpx.Response(202, json={"accepted": 1, "duplicates": 0,
                              "rejected": [{"index": 9, "errors": []}]}),
    httpx.Response(202, text="<html>"),
])
def test_unexpected_answers_stop_the_import(answer: httpx.Response) -> None:
    sender, _ = sender_for(Script(lambda r: answer))
    with pytest.raises(Fatal, match="unexpected answer"):
        sender.send(lines_of(make_order("a")), Summary())


@pytest.mark.parametrize(("url", "want"), [
    ("http://gw:8080", "http://gw:8080/v1/orders"),
    ("http://gw:8080/", "http://gw:8080/v1/orders"),
    ("http://gw:8080/v1/orders", "http://gw:8080/v1/orders"),
])
def test_endpoint(url: str, want: str) -> None:
    assert endpoint(url) == want


# `run` against a real order intake on loopback.


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.fixture
def intake() -> Iterator[tuple[ThreadServer, MemorySpool]]:
    spool = MemorySpool(max_records=100_000, dedupe_ttl=900)
    orders = OrderIntake(Settings(orders_api_keys=(KEY,)), Dedupe(900, 100_000), spool, Metrics())
    app = Starlette(routes=[Route("/v1/orders", orders, methods=["POST"])])
    with thread_server(app) as server:
        yield server, spool


def test_run_imports_and_summarizes(intake: tuple[ThreadServer, MemorySpool], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    server, spool = intake
    old = (datetime.now(UTC) - timedelta(days=4)).isoformat()
    first = make_order("o-1")
    path = write_jsonl(tmp_path / "orders.jsonl", [
        first,
        make_order("o-2"),
        b"{not json",
        b"   ",
        make_order("o-3", created_at_utc=old),
        first,
        *(make_order(f"bulk-{i}") for i in range(20)),
    ])
    code = run(parse(str(path), "--url", server.url, "--key", KEY, "--batch", "7"))
    out, err = capsys.readouterr()
    assert code == 1
    assert "sent: 22 accepted, 1 duplicates, 2 rejected" in out
    assert "line 3: not JSON" in out
    assert "line 5: properties.created_at_utc: is more than 3 days ago" in out
    assert "25 orders read" in out
    assert "100%" in err  # the progress bar reached the end
    assert KEY not in out + err
    assert asyncio.run(spool.depth()) == 22


def test_run_all_good_is_0_and_rerun_is_duplicates(intake: tuple[ThreadServer, MemorySpool],
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    server, _ = intake
    path = write_jsonl(tmp_path / "orders.jsonl", [make_order(f"o-{i}") for i in range(30)])
    monkeypatch.setenv("IAN_ORDERS_API_KEY", KEY)  # the key from the environment
    assert run(parse(str(path), "--url", server.url)) == 0
    assert run(parse(str(path), "--url", server.url)) == 0
    out = capsys.readouterr().out
    assert "sent: 30 accepted, 0 duplicates, 0 rejected" in out
    assert "sent: 0 accepted, 30 duplicates, 0 rejected" in out


def test_run_wrong_key_is_2(intake: tuple[ThreadServer, MemorySpool], tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    server, spool = intake
    path = write_jsonl(tmp_path / "orders.jsonl", [make_order("o-1")])
    assert run(parse(str(path), "--url", server.url, "--key", "wrong-key")) == 2
    err = capsys.readouterr().err
    assert "refused the key (401)" in err and "wrong-key" not in err
    assert asyncio.run(spool.depth()) == 0


def test_run_needs_a_key_and_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IAN_ORDERS_API_KEY", raising=False)
    path = write_jsonl(tmp_path / "orders.jsonl", [make_order("o-1")])
    assert run(parse(str(path))) == 2
    assert run(parse(str(tmp_path / "missing.jsonl"), "--key", KEY)) == 2
    err = capsys.readouterr().err
    assert "IAN_ORDERS_API_KEY" in err and "no such file" in err


@pytest.mark.parametrize("size", ["0", "501", "x"])
def test_batch_is_1_to_500(size: str) -> None:
    with pytest.raises(SystemExit):
        parse("f.jsonl", "--batch", size)


# End to end: the backfill of 10,000 orders through a real gateway to the sandbox.

BACKFILL = 10_000


@pytest.fixture
def sandbox_url() -> Iterator[str]:
    sandbox = pytest.importorskip("gateway.sandbox")
    with thread_server(sandbox.create_sandbox()) as server:
        yield server.url


def sandbox_stats(http: httpx.Client, sandbox_url: str) -> dict[str, Any]:
    answer = http.get(f"{sandbox_url}/_sandbox/stats")
    answer.raise_for_status()
    stats: dict[str, Any] = answer.json()["order_log"]
    return stats


def wait_for_orders(http: httpx.Client, sandbox_url: str, want: int, timeout: float
                    ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    stats = sandbox_stats(http, sandbox_url)
    while stats["accepted"] < want and time.monotonic() < deadline:
        time.sleep(0.25)
        stats = sandbox_stats(http, sandbox_url)
    return stats


def import_cli(path: Path, url: str, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "orders", "import", str(path), "--url", url],
        env={**os.environ, "IAN_ORDERS_API_KEY": key}, cwd=ROOT,
        capture_output=True, text=True, timeout=300, check=False,
    )


def serve_orders(spawn: Callable[..., Any], sandbox_url: str, spool: str,
                 **env: str) -> Any:
    """`ian-gateway serve` forwarding to the sandbox, taking orders with KEY."""
    return spawn(["serve", "--host", "127.0.0.1"], env={
        "IAN_UPSTREAM_URL": sandbox_url,
        "IAN_CLIENT_ID": "sandbox-client",
        "IAN_CLIENT_SECRET": "sandbox-secret",
        "IAN_SPOOL": spool,
        "IAN_ORDERS_API_KEYS": KEY,
        **env,
    })


def test_backfill_10000_orders_arrive_exactly_once(spawn: Callable[..., Any], http: httpx.Client,
                                                   sandbox_url: str, tmp_path: Path) -> None:
    gateway = serve_orders(spawn, sandbox_url, f"sqlite:///{tmp_path}/spool.db")
    orders = [make_order(f"bf-{i:05d}") for i in range(BACKFILL)]
    path = write_jsonl(tmp_path / "backfill.jsonl", orders)

    started = time.monotonic()
    done = import_cli(path, gateway.url, KEY)
    imported = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"sent: {BACKFILL} accepted, 0 duplicates, 0 rejected" in done.stdout

    stats = wait_for_orders(http, sandbox_url, BACKFILL, timeout=240)
    delivered = time.monotonic() - started
    print(f"\nbackfill of {BACKFILL} orders: import {imported:.1f} s, "
          f"at the sandbox after {delivered:.1f} s")
    assert stats["accepted"] == BACKFILL
    assert stats["distinct_ids"] == BACKFILL and stats["duplicates"] == 0

    again = import_cli(path, gateway.url, KEY)  # the same file twice: all duplicates
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"sent: 0 accepted, {BACKFILL} duplicates, 0 rejected" in again.stdout
    time.sleep(1.0)
    assert sandbox_stats(http, sandbox_url)["accepted"] == BACKFILL

    items = http.get(f"{sandbox_url}/_sandbox/received",
                     params={"kind": "order_log", "limit": "3"}).json()["items"]
    by_id = {o["properties"]["order_id"]: o for o in orders}
    for item in items:
        assert item["body"] == by_id[item["body"]["properties"]["order_id"]]


def test_backfill_with_a_wrong_key_sends_nothing(spawn: Callable[..., Any], http: httpx.Client,
                                                 sandbox_url: str, tmp_path: Path) -> None:
    gateway = serve_orders(spawn, sandbox_url, "memory:")
    path = write_jsonl(tmp_path / "orders.jsonl", [make_order("x-1")])
    done = import_cli(path, gateway.url, "not-the-key")
    assert done.returncode == 2
    assert "401" in done.stderr and "not-the-key" not in done.stdout + done.stderr
    time.sleep(0.5)
    assert sandbox_stats(http, sandbox_url)["accepted"] == 0


def test_backfill_waits_out_a_full_spool(spawn: Callable[..., Any], http: httpx.Client,
                                         sandbox_url: str, tmp_path: Path) -> None:
    # Connect is down, so the small spool fills and the gateway answers 503 with
    # Retry-After; the importer waits and retries until Connect is back.
    http.put(f"{sandbox_url}/_sandbox/faults",
             json={"outage": True, "retry_after_s": 0.2}).raise_for_status()
    gateway = serve_orders(spawn, sandbox_url, "memory:", IAN_SPOOL_MAX="40")
    orders = [make_order(f"full-{i:03d}") for i in range(200)]
    path = write_jsonl(tmp_path / "orders.jsonl", orders)
    importer = subprocess.Popen(
        [sys.executable, "-m", "gateway", "orders", "import", str(path), "--url", gateway.url,
         "--batch", "20", "--key", KEY],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(3)
        assert importer.poll() is None, "the importer should be waiting on the full spool"
        http.put(f"{sandbox_url}/_sandbox/faults", json={"outage": False}).raise_for_status()
        out, err = importer.communicate(timeout=120)
    finally:
        if importer.poll() is None:
            importer.kill()
            importer.communicate()
    assert importer.returncode == 0, out + err
    assert "sent: 200 accepted, 0 duplicates, 0 rejected" in out
    stats = wait_for_orders(http, sandbox_url, 200, timeout=60)
    assert stats["accepted"] == 200 and stats["distinct_ids"] == 200


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_redraws_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(float(t) for t in range(100))
    monkeypatch.setattr("gateway.orders.importer.time.monotonic", lambda: next(clock))
    stream = Terminal()
    progress, summary = Progress(1000, stream), Summary(read=10, accepted=10)
    progress.update(500, summary)
    progress.update(1000, summary)
    summary.rejected.append(Rejection(3, ["x"]))
    progress.finish(summary)
    text = stream.getvalue()
    assert "\n" not in text[:-1] and text.endswith("\n")
    assert text.count("\r") == 3
    assert text.rstrip().endswith("100%  10 orders: 10 accepted, 0 duplicates, 1 rejected")


def test_progress_elsewhere_prints_a_line_per_tenth() -> None:
    stream = io.StringIO()
    progress, summary = Progress(1000, stream), Summary()
    for done in range(0, 1001, 50):
        progress.update(done, summary)
    progress.finish(summary)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11  # 0%, 10%, ... 100%; finish adds nothing new
    assert lines[-1].startswith("[##############################] 100%")
    assert "\r" not in stream.getvalue()
