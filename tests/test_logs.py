"""Structured logs: JSON lines, request ids, and secrets that never reach a log."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from gateway.asgi import respond
from gateway.logs import (
    JsonFormatter,
    Redactor,
    RequestId,
    TextFormatter,
    configure_logging,
    request_id,
)
from gateway.settings import Settings
from gateway.types import Receive, Scope, Send
from tests.support import Process, thread_server
from tests.support.factories import event

TOKEN = "tok-7c1e0f9a-upstream-secret"
ORDERS_KEY = "ok-42b9d1-orders-api-key"
HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide loggers: put them back afterwards."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate,
                 logging.getLogger(n).level) for n in names}
    for name in names[1:]:  # an earlier in-thread uvicorn may have set log_level="warning"
        logging.getLogger(name).setLevel(logging.NOTSET)
    yield
    for name, (handlers, propagate, level) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.setLevel(level)


def record(message: str, *args: Any, extra: dict[str, Any] | None = None,
           exc: bool = False) -> logging.LogRecord:
    rec = logging.LogRecord("gateway.test", logging.WARNING, __file__, 1, message, args,
                            None)
    if exc:
        try:
            raise RuntimeError(f"boom with Bearer {TOKEN}")
        except RuntimeError:
            rec.exc_info = sys.exc_info()
    for key, value in (extra or {}).items():
        setattr(rec, key, value)
    return rec


def test_json_line_has_the_fields_and_extras() -> None:
    formatter = JsonFormatter(Redactor([]))
    line = json.loads(formatter.format(record("spool %s", "full", extra={"depth": 12})))
    assert line["level"] == "WARNING"
    assert line["logger"] == "gateway.test"
    assert line["message"] == "spool full"
    assert line["depth"] == 12
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["ts"])
    assert "request_id" not in line


def test_json_line_carries_the_request_id_inside_a_request() -> None:
    token = request_id.set("req-1")
    try:
        line = json.loads(JsonFormatter(Redactor([])).format(record("hello")))
    finally:
        request_id.reset(token)
    assert line["request_id"] == "req-1"


def test_text_format_is_one_readable_line() -> None:
    token = request_id.set("req-2")
    try:
        text = TextFormatter(Redactor([])).format(record("hello %s", "you", extra={"n": 1}))
    finally:
        request_id.reset(token)
    assert text.endswith("WARNING gateway.test [req-2] hello you n=1")


def test_secrets_and_bearer_credentials_are_redacted_everywhere() -> None:
    formatter = JsonFormatter(Redactor([TOKEN, ORDERS_KEY, "ab"]))
    text = formatter.format(record("key %s header %s", ORDERS_KEY, "Bearer other-cred",
                                   extra={"answer": f"token {TOKEN}"}, exc=True))
    for secret in (TOKEN, ORDERS_KEY, "other-cred"):
        assert secret not in text
    line = json.loads(text)
    assert line["message"] == "key *** header Bearer ***"
    assert "RuntimeError: boom with Bearer ***" in line["exc"]


async def app_that_logs(scope: Scope, receive: Receive, send: Send) -> None:
    logging.getLogger("gateway.test").warning("inside")
    await respond(send, 200, {"ok": True})


async def test_request_id_is_taken_when_sane_and_made_otherwise(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging(Settings(log_format="json"), stream=stream)
    transport = httpx.ASGITransport(app=RequestId(app_that_logs))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        kept = await http.get("/", headers={"X-Request-Id": "edge-42.a_b"})
        made = await http.get("/")
        too_long = await http.get("/", headers={"X-Request-Id": "a" * 65})
        odd = await http.get("/", headers={"X-Request-Id": "x\"; drop"})
    assert kept.headers["x-request-id"] == "edge-42.a_b"
    for answer in (made, too_long, odd):
        assert HEX_ID.fullmatch(answer.headers["x-request-id"])
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    ids = [line.get("request_id") for line in lines if line["logger"] == "gateway.test"]
    assert ids == [kept.headers["x-request-id"], made.headers["x-request-id"],
                   too_long.headers["x-request-id"], odd.headers["x-request-id"]]
    assert request_id.get() is None


def test_uvicorn_loggers_write_through_ours_but_a_disabled_access_log_stays_off(
    restore_logging: None,
) -> None:
    logging.getLogger("uvicorn").handlers[:] = [logging.StreamHandler(io.StringIO())]
    logging.getLogger("uvicorn").propagate = False
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False
    stream = io.StringIO()
    configure_logging(Settings(log_format="json"), stream=stream)
    logging.getLogger("uvicorn.error").info("Started server process")
    logging.getLogger("uvicorn.access").info("GET / 200")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["Started server process"]


async def echo_upstream(scope: Scope, receive: Receive, send: Send) -> None:
    """A Connect stand-in that refuses everything and echoes the credential it got.

    Its answer lands in the forwarder's dead-letter log line: the worst case for a leak.
    """
    if scope["type"] != "http":
        return
    auth = dict(scope["headers"]).get(b"authorization", b"").decode()
    await respond(send, 400, {"errors": [{"error": {
        "message": f"refused credential {auth}", "error_code": 1001}}]})


def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_serve_never_logs_the_token_or_the_orders_key(
    spawn: Callable[..., Process], http: httpx.Client
) -> None:
    with thread_server(echo_upstream) as upstream:
        gateway = spawn(["serve", "--host", "127.0.0.1", "--log-level", "debug"], env={
            "IAN_UPSTREAM_URL": upstream.url, "IAN_ACCESS_TOKEN": TOKEN,
            "IAN_ORDERS_API_KEYS": f"{ORDERS_KEY},second-key-1234", "IAN_SPOOL": "memory:",
            "IAN_LOG_FORMAT": "json"})
        posted = http.post(f"{gateway.url}/v1/events", json=event(),
                           headers={"Authorization": f"Bearer {TOKEN}"})
        assert posted.status_code == 202
        for key in (ORDERS_KEY, "wrong-key-5678"):
            http.post(f"{gateway.url}/v1/orders", json={"order_id": "o-1"},
                      headers={"Authorization": f"Bearer {key}"})
        wait_for(lambda: "dead letter" in gateway.output())
        gateway.stop()
    output = gateway.output()
    assert TOKEN not in output
    assert ORDERS_KEY not in output
    assert "refused credential Bearer ***" in output  # the line was written, redacted
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(line["message"].startswith("dead letter") for line in lines)
    assert all({"ts", "level", "logger", "message"} <= line.keys() for line in lines)
