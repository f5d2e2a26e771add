"""`POST /v1/events` against a real gateway process: answers, limits, CORS, enrichment."""

from __future__ import annotations

import random
import socket
import time
from typing import Any

import httpx
import orjson
import pytest

from tests.support import metric
from tests.support.factories import enriched, event, event_id

BEACON = {"Content-Type": "text/plain;charset=UTF-8", "User-Agent": "Mozilla/5.0 (shopper)"}
ISSUES = {"error": {"message": "There were issues with your request", "error_code": 9999}}


@pytest.fixture
def gw(gateway: Any) -> Any:
    return gateway(IAN_SPOOL="memory:")


def post(http: httpx.Client, gw: Any, body: Any, headers: dict[str, str] | None = None
         ) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return http.post(gw.url + "/v1/events", content=content, headers=headers or BEACON)


def test_one_event_is_accepted_and_forwarded_enriched(http: httpx.Client, gw: Any,
                                                     upstream: Any) -> None:
    evt = event()
    answer = post(http, gw, evt)
    assert answer.status_code == 202
    assert answer.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    (received,) = upstream.wait_for("/v2/ian/track", 1)
    assert received.json() == enriched(evt, "Mozilla/5.0 (shopper)", "127.0.0.1")


def test_batch_with_duplicates_and_rejects(http: httpx.Client, gw: Any, upstream: Any) -> None:
    a, b = event(), event("ian.display.viewport_1px_creative", "display_banner")
    bad = event(event_id="not-a-uuid")
    answer = post(http, gw, {"events": [a, b, a, bad]})
    assert answer.status_code == 202
    assert answer.json() == {
        "accepted": 2, "duplicates": 1,
        "rejected": [{"index": 3, "errors": [{
            "error": {"message": "must be a UUID", "error_code": 1001},
            "meta": {"key": "data.sponsored_product_data.event_id"}}]}]}
    again = post(http, gw, {"events": [a, b]})
    assert again.json() == {"accepted": 0, "duplicates": 2, "rejected": []}
    received = upstream.wait_for("/v2/ian/track", 2)
    assert sorted(event_id(r.json()) for r in received) == sorted([event_id(a), event_id(b)])


def test_duplicate_event_id_differs_only_in_case(http: httpx.Client, gw: Any) -> None:
    evt = event()
    post(http, gw, evt)
    evt["data"]["sponsored_product_data"]["event_id"] = event_id(evt).upper()
    assert post(http, gw, evt).json()["duplicates"] == 1


def test_all_rejected_is_400_with_the_errors(http: httpx.Client, gw: Any, upstream: Any) -> None:
    evt = event()
    del evt["user_id"]
    answer = post(http, gw, evt)
    assert answer.status_code == 400
    assert answer.json() == {"accepted": 0, "duplicates": 0, "rejected": [{"index": 0, "errors": [
        {"error": {"message": "Couldn't find user_id in the request", "error_code": 4001}}]}]}
    assert upstream.to("/v2/ian/track") == []


@pytest.mark.parametrize("body", [
    b"not json", b"\xff\xfe\x00", b"[]", b"42", b'{"events": []}',
    orjson.dumps({"events": [event() for _ in range(101)]}), b'{"events": {"a": 1}}',
])
def test_malformed_envelope_is_400_9999(http: httpx.Client, gw: Any, body: bytes) -> None:
    answer = post(http, gw, body)
    assert answer.status_code == 400
    assert answer.json() == {"errors": [ISSUES]}


def test_non_object_items_in_a_batch_are_rejected_one_by_one(http: httpx.Client, gw: Any) -> None:
    answer = post(http, gw, {"events": [event(), 7, None]})
    assert answer.status_code == 202
    assert answer.json()["accepted"] == 1
    assert [r["index"] for r in answer.json()["rejected"]] == [1, 2]


def test_body_over_64_kib_is_413(http: httpx.Client, gw: Any) -> None:
    evt = event(padding="x" * 70_000)
    answer = post(http, gw, evt)
    assert answer.status_code == 413
    assert answer.json()["errors"][0]["error"]["error_code"] == 9999


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded",
                                          "text/html", "text/plain; charset=latin-1", None])
def test_other_content_types_are_415(http: httpx.Client, gw: Any, content_type: str | None
                                     ) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    answer = http.post(gw.url + "/v1/events", content=orjson.dumps(event()), headers=headers)
    assert answer.status_code == 415
    assert "error" in answer.json()["errors"][0]


def test_application_json_with_charset(http: httpx.Client, gw: Any) -> None:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    assert post(http, gw, event(), headers).status_code == 202


def test_get_is_405(http: httpx.Client, gw: Any) -> None:
    answer = http.get(gw.url + "/v1/events")
    assert answer.status_code == 405
    assert answer.json()["errors"][0]["error"]["error_code"] == 9999


def test_cors_preflight_for_an_allowed_origin(http: httpx.Client, gw: Any) -> None:
    answer = http.options(gw.url + "/v1/events", headers={
        "Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == "https://shop.example"
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert int(answer.headers["access-control-max-age"]) > 0


def test_cors_refuses_other_origins(http: httpx.Client, gw: Any, upstream: Any) -> None:
    preflight = http.options(gw.url + "/v1/events", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers
    beacon = post(http, gw, event(), {**BEACON, "Origin": "https://evil.example"})
    assert beacon.status_code == 403
    assert beacon.json()["errors"][0]["error"]["error_code"] == 9999
    allowed = post(http, gw, event(), {**BEACON, "Origin": "https://shop.example"})
    assert allowed.status_code == 202
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    assert allowed.headers["access-control-expose-headers"] == "Retry-After"


def test_spoofed_forwarded_for_is_ignored_without_trusted_proxies(
        http: httpx.Client, gw: Any, upstream: Any) -> None:
    evt = event()
    evt["data"]["sponsored_product_data"]["event_tracking_context"] = {"user_ip": "6.6.6.6"}
    post(http, gw, evt, {**BEACON, "X-Forwarded-For": "6.6.6.6"})
    (received,) = upstream.wait_for("/v2/ian/track", 1)
    context = received.json()["data"]["sponsored_product_data"]["event_tracking_context"]
    assert context == {"user_agent": "Mozilla/5.0 (shopper)", "user_ip": "127.0.0.1"}


def test_trusted_proxy_chain_and_cdn_header(gateway: Any, http: httpx.Client, upstream: Any
                                            ) -> None:
    gw = gateway(IAN_SPOOL="memory:", IAN_TRUSTED_PROXIES="127.0.0.0/8",
                 IAN_CLIENT_IP_HEADER="CF-Connecting-IP")
    post(http, gw, event(), {**BEACON, "X-Forwarded-For": "6.6.6.6, 203.0.113.8"})
    post(http, gw, event(), {**BEACON, "CF-Connecting-IP": "2001:db8::42"})
    received = upstream.wait_for("/v2/ian/track", 2)
    ips = sorted(r.json()["data"]["sponsored_product_data"]["event_tracking_context"]["user_ip"]
                 for r in received)
    assert ips == ["2001:db8::42", "203.0.113.8"]


def test_missing_sent_at_is_filled(http: httpx.Client, gw: Any, upstream: Any) -> None:
    evt = event()
    del evt["sent_at"]
    post(http, gw, evt)
    (received,) = upstream.wait_for("/v2/ian/track", 1)
    assert received.json()["sent_at"].endswith("+00:00")


def test_no_input_produces_a_5xx(http: httpx.Client, gw: Any) -> None:
    rng = random.Random(7)
    valid = orjson.dumps({"events": [event()]})
    bodies = [bytes(rng.randrange(256) for _ in range(rng.randrange(200))) for _ in range(100)]
    bodies += [valid[: rng.randrange(len(valid))] for _ in range(100)]
    bodies += [orjson.dumps(v) for v in (
        {"events": [{"data": {"sponsored_product_data": None}}]},
        {"events": [{"event": ["x"], "user_id": {}, "data": {"display_banner_data": []}}]},
        {"event": None, "user_id": True, "sent_at": 5, "data": {"shoppable_video_data": {
            "event_id": 1, "page_view_id": [], "record_version": {}, "event_tracking_context": 3}}},
        {"events": [[], "x", 1.5, None, True]},
        {"user_id": "u" * 10_000, "data": {"sponsored_product_data": {"product_id": 1e308}}},
        {"data": {"sponsored_product_data": {"page": float("inf") if False else "1e999"}}},
    )]
    for body in bodies:
        answer = post(http, gw, body)
        assert answer.status_code < 500, (body, answer.text)
        assert answer.status_code in (202, 400), (body, answer.text)
    assert http.get(gw.url + "/healthz").status_code == 200


def test_health_and_readiness(http: httpx.Client, gw: Any) -> None:
    assert http.get(gw.url + "/healthz").json() == {"status": "ok"}
    ready = http.get(gw.url + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"spool": True, "forwarder": True}


# Hardening (issue 16): deep nesting, bodies cut short, the error object on every 4xx.

TOO_DEEP = {"error": {"message": "is nested too deeply: at most 254 levels", "error_code": 9999}}


def nested(depth: int) -> bytes:
    """A JSON list nested `depth` levels: orjson reads up to 1,024 and writes up to 254."""
    return b"[" * depth + b"]" * depth


def with_field(evt: dict[str, Any], name: str, raw: bytes) -> bytes:
    """`evt` as JSON with one more field in its data object whose value is the raw JSON."""
    (key,) = evt["data"]
    data = orjson.dumps(evt["data"][key])[:-1] + b',"' + name.encode() + b'":' + raw + b"}"
    return orjson.dumps({**evt, "data": {key: "@@"}}).replace(b'"@@"', data)


def test_an_unknown_field_nested_too_deep_is_rejected_not_500(
        http: httpx.Client, gw: Any, upstream: Any) -> None:
    deep, shallow = event(), event()
    batch = b'{"events": [' + with_field(deep, "extra", nested(300)) + b"," + \
        with_field(shallow, "extra", nested(200)) + b"]}"
    answer = post(http, gw, batch)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"accepted": 1, "duplicates": 0,
                             "rejected": [{"index": 0, "errors": [TOO_DEEP]}]}
    (received,) = upstream.wait_for("/v2/ian/track", 1)
    assert event_id(received.json()) == event_id(shallow)
    # the rejected event's id was not remembered: sent again shallow, it is new
    deep["data"]["sponsored_product_data"] = shallow["data"]["sponsored_product_data"] | {
        "event_id": event_id(deep)}
    assert post(http, gw, deep).json()["accepted"] == 1


def test_an_event_name_nested_1000_deep_is_400_not_500(http: httpx.Client, gw: Any) -> None:
    body = orjson.dumps(event()).replace(b'"ian.sponsored_product.clicked"', nested(1000))
    answer = post(http, gw, body)
    assert answer.status_code == 400, answer.text
    [rejected] = answer.json()["rejected"]
    [err] = rejected["errors"]
    assert err["meta"] == {"key": "data"}
    assert err["error"]["error_code"] == 1001
    assert err["error"]["message"].startswith("Invalid event name [[[")
    assert len(err["error"]["message"]) < 100


def test_json_past_orjsons_read_limit_is_a_malformed_envelope(http: httpx.Client,
                                                              gw: Any) -> None:
    answer = post(http, gw, b'{"events": [' + nested(1100) + b"]}")
    assert answer.status_code == 400
    assert answer.json() == {"errors": [ISSUES]}


def raw_request(gw: Any, head: bytes, body: bytes) -> None:
    """Send a request's head and the start of its body on a socket, then close it unanswered."""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock:
        sock.sendall(head + body)
        time.sleep(0.2)  # the gateway has read what was sent




DISCONNECTED = 'ian_incomplete_requests_total{reason="disconnected"}'


def wait_for_metric(http: httpx.Client, gw: Any, sample: str, value: float) -> None:
    deadline = time.monotonic() + 10
    while metric(http, gw, sample) < value:
        assert time.monotonic() < deadline, f"{sample} never reached {value}"
        time.sleep(0.05)


def test_a_body_cut_short_is_abandoned_and_nothing_stored(http: httpx.Client, gw: Any,
                                                          upstream: Any) -> None:
    cut, later = event(), event()
    body = orjson.dumps(cut)  # valid JSON on its own: only the missing bytes tell it is cut
    head = (b"POST /v1/events HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\n"
            b"Content-Length: " + str(len(body) + 50).encode() + b"\r\n\r\n")
    raw_request(gw, head, body)
    chunked = (b"POST /v1/events HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
    raw_request(gw, chunked, b"%x\r\n%s\r\n" % (len(body), body))  # no last chunk
    wait_for_metric(http, gw, DISCONNECTED, 2)
    assert post(http, gw, later).status_code == 202
    upstream.wait_for("/v2/ian/track", 1)
    time.sleep(0.5)  # a stored cut event would have been forwarded by now
    assert [event_id(r.json()) for r in upstream.to("/v2/ian/track")] == [event_id(later)]


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/v1/orders", 405), ("PUT", "/v1/orders", 405), ("DELETE", "/v1/events", 405),
    ("POST", "/healthz", 405), ("GET", "/v1/nothing", 404), ("GET", "/", 404),
])
def test_every_4xx_carries_the_error_object(http: httpx.Client, gw: Any, method: str,
                                            path: str, status: int) -> None:
    answer = http.request(method, gw.url + path)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    [err] = answer.json()["errors"]
    assert set(err) == {"error"} and err["error"]["error_code"] == 9999
    if status == 405:
        assert "POST" in answer.headers["allow"] or path == "/healthz"
