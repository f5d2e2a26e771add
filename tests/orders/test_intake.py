"""gateway/orders/intake.py: `POST /v1/orders` as a client sees it.

In process through httpx's ASGI transport for the answers, and end to end: a real
`ian-gateway serve` forwarding to a real sandbox, asserting what the sandbox received.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.dedupe import Dedupe
from gateway.metrics import Metrics
from gateway.orders.intake import MAX_BATCH, MAX_BODY, UNAUTHORIZED, OrderIntake
from gateway.settings import Settings
from gateway.spool import Record, SpoolFull
from gateway.spool.memory import MemorySpool
from tests.support.factories import order as make_order

KEY = "k-orders-test-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
ISSUES = {"error": {"message": "There were issues with your request", "error_code": 9999}}


class FullSpool(MemorySpool):
    """A spool that refuses everything, as a full one does."""

    async def put(self, records: Sequence[Record]) -> list[bool]:
        raise SpoolFull(retry_after=7)


Factory = Callable[..., OrderIntake]


@pytest.fixture
def spool() -> MemorySpool:
    return MemorySpool(max_records=100_000, dedupe_ttl=900)


@pytest.fixture
def dedupe() -> Dedupe:
    return Dedupe(ttl=900, maxsize=100_000)


@pytest.fixture
async def client(spool: MemorySpool, dedupe: Dedupe) -> AsyncIterator[httpx.AsyncClient]:
    intake = OrderIntake(Settings(orders_api_keys=("other-key", KEY)), dedupe, spool, Metrics())
    transport = httpx.ASGITransport(app=intake)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        yield http


async def post(client: httpx.AsyncClient, body: Any, headers: dict[str, str] | None = None
               ) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.post("/v1/orders", content=content,
                              headers={"Content-Type": "application/json", **AUTH,
                                       **(headers or {})})


async def test_one_order_is_accepted_and_spooled(client: httpx.AsyncClient,
                                                 spool: MemorySpool) -> None:
    order = make_order("o-1")
    answer = await post(client, order)
    assert answer.status_code == 202
    assert answer.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    [claimed] = await spool.claim(10, 0)
    assert claimed.record.kind == "order_log"
    assert claimed.record.key.startswith("order:o-1@")
    assert orjson.loads(claimed.record.body) == order


async def test_same_order_twice_is_a_duplicate(client: httpx.AsyncClient) -> None:
    order = make_order("o-1")
    await post(client, order)
    answer = await post(client, order)
    assert answer.status_code == 202
    assert answer.json() == {"accepted": 0, "duplicates": 1, "rejected": []}


async def test_a_newer_update_goes_through(client: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    first = make_order("o-1", updated_at_utc=(now - timedelta(minutes=5)).isoformat())
    later = make_order("o-1", updated_at_utc=now.isoformat())
    assert (await post(client, first)).json()["accepted"] == 1
    assert (await post(client, later)).json()["accepted"] == 1
    assert (await post(client, later)).json()["duplicates"] == 1


async def test_batch_answer(client: httpx.AsyncClient, spool: MemorySpool) -> None:
    bad = make_order("o-3")
    bad["event"] = "order.placed"
    first = make_order("o-1")
    batch = {"orders": [first, make_order("o-2"), bad, first]}
    answer = await post(client, batch)
    assert answer.status_code == 202
    assert answer.json() == {
        "accepted": 2,
        "duplicates": 1,
        "rejected": [{"index": 2, "errors": [
            {"error": {"message": "is not included in the list", "error_code": 1001},
             "meta": {"key": "event"}}]}],
    }
    assert await spool.depth() == 2


async def test_all_rejected_is_400(client: httpx.AsyncClient) -> None:
    order = make_order(order_items=[])
    answer = await post(client, {"orders": [order]})
    assert answer.status_code == 400
    # order-log doc 400 table: "order.created with empty order items"
    assert answer.json() == {"accepted": 0, "duplicates": 0, "rejected": [{"index": 0, "errors": [
        {"error": {"message": "can't be blank", "error_code": 1001},
         "meta": {"key": "properties.order_items"}}]}]}


async def test_an_order_older_than_three_days_is_rejected(client: httpx.AsyncClient) -> None:
    old = (datetime.now(UTC) - timedelta(days=3, minutes=1)).isoformat()
    answer = await post(client, make_order(created_at_utc=old))
    assert answer.status_code == 400
    [rejected] = answer.json()["rejected"]
    assert rejected["errors"][0]["meta"] == {"key": "properties.created_at_utc"}
    assert "3 days" in rejected["errors"][0]["error"]["message"]


async def test_a_full_batch_of_500(client: httpx.AsyncClient, spool: MemorySpool) -> None:
    batch = {"orders": [make_order(f"o-{i}") for i in range(MAX_BATCH)]}
    answer = await post(client, batch)
    assert answer.status_code == 202
    assert answer.json()["accepted"] == MAX_BATCH
    assert await spool.depth() == MAX_BATCH


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'"order"',
        b"null",
        b'{"orders": []}',
        b'{"orders": {}}',
        b'{"orders": "x"}',
        orjson.dumps({"orders": [make_order(f"o-{i}") for i in range(MAX_BATCH + 1)]}),
        b"",
        b'{"a": 1e400}',
    ],
)
async def test_malformed_envelope(client: httpx.AsyncClient, body: bytes) -> None:
    answer = await post(client, body)
    assert answer.status_code == 400
    assert answer.json() == {"errors": [ISSUES]}


@pytest.mark.parametrize("item", [None, 1, "x", [], {}])
async def test_odd_batch_members_are_rejected_not_500(client: httpx.AsyncClient,
                                                      item: Any) -> None:
    answer = await post(client, {"orders": [item, make_order()]})
    assert answer.status_code == 202
    assert answer.json()["accepted"] == 1
    assert answer.json()["rejected"][0]["index"] == 0


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Bearer wrong", f"Basic {KEY}", f"Bearer {KEY}x",
     f"Bearer {KEY[:-1]}", "Bearer \u00e9t\u00e9".encode()],
)
async def test_missing_or_wrong_key_is_401(client: httpx.AsyncClient,
                                           authorization: str | bytes | None) -> None:
    headers = {b"content-type": b"application/json"}
    if authorization is not None:
        raw = authorization.encode() if isinstance(authorization, str) else authorization
        headers[b"authorization"] = raw
    answer = await client.post("/v1/orders", content=orjson.dumps(make_order()),
                               headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    # the same words for every case: nothing of what was sent is echoed
    assert answer.json() == {"errors": [{"error": {"message": UNAUTHORIZED, "error_code": 9999}}]}


async def test_any_configured_key_and_scheme_case(client: httpx.AsyncClient) -> None:
    answer = await post(client, make_order(), {"Authorization": "bearer other-key"})
    assert answer.status_code == 202


async def test_no_keys_configured_refuses_everyone(spool: MemorySpool, dedupe: Dedupe) -> None:
    intake = OrderIntake(Settings(orders_api_keys=()), dedupe, spool, Metrics())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=intake),
                                 base_url="http://gw") as http:
        answer = await post(http, make_order(), {"Authorization": "Bearer "})
        assert answer.status_code == 401


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", ""],
)
async def test_json_only(client: httpx.AsyncClient, content_type: str) -> None:
    answer = await post(client, make_order(), {"Content-Type": content_type})
    assert answer.status_code == 415
    assert answer.json()["errors"][0]["error"]["error_code"] == 9999


async def test_json_with_charset(client: httpx.AsyncClient) -> None:
    answer = await post(client, make_order(), {"Content-Type": "application/json; charset=UTF-8"})
    assert answer.status_code == 202


async def test_no_cors(client: httpx.AsyncClient) -> None:
    answer = await post(client, make_order(), {"Origin": "https://shop.example"})
    assert answer.status_code == 202
    assert not any(name.startswith("access-control-") for name in answer.headers)


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    body = b'{"orders": [' + b" " * MAX_BODY + b"]}"
    answer = await post(client, body)
    assert answer.status_code == 413


async def test_other_methods_405(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/orders", headers=AUTH)
    assert answer.status_code == 405


async def test_spool_full_is_503_and_forgets(dedupe: Dedupe) -> None:
    intake = OrderIntake(Settings(orders_api_keys=(KEY,)), dedupe,
                         FullSpool(max_records=10, dedupe_ttl=900), Metrics())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=intake),
                                 base_url="http://gw") as http:
        answer = await post(http, make_order())
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "7"
    assert len(dedupe) == 0  # a retry of the same order is new, not a duplicate


ODD_VALUES: list[Any] = [None, "", " ", 0, -1, 1.5, 1e308, True, [], {}, [None], {"a": {}},
                         "x" * 10_000, "\u0000", "2026-13-45T99:99:99+25:00", "9" * 400,
                         "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


def mutate(value: Any, rng: random.Random) -> Any:
    """A valid order with one field, somewhere in it, replaced, dropped or given a sibling."""
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(list(value))
        choice = rng.random()
        if choice < 0.2:
            return {k: v for k, v in value.items() if k != key}
        if choice < 0.5:
            return {**value, key: rng.choice(ODD_VALUES)}
        return {**value, key: mutate(value[key], rng)}
    if isinstance(value, list) and value and rng.random() < 0.7:
        index = rng.randrange(len(value))
        return [*value[:index], mutate(value[index], rng), *value[index + 1:]]
    return rng.choice(ODD_VALUES)


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
async def test_extreme_updated_at_is_not_a_500(client: httpx.AsyncClient, stamp: str) -> None:
    answer = await post(client, make_order(updated_at_utc=stamp))
    assert answer.status_code == 202


async def test_no_input_produces_a_500(client: httpx.AsyncClient) -> None:
    rng = random.Random(7)
    for round_ in range(40):
        orders = [mutate(make_order(f"f-{round_}-{i}"), rng) for i in range(25)]
        answer = await post(client, {"orders": orders})
        assert answer.status_code in (202, 400), answer.text
        body = answer.json()
        assert body["accepted"] + body["duplicates"] + len(body["rejected"]) == len(orders)


# End to end: a real gateway process forwarding to a real sandbox.

Spawn = Callable[..., Any]


def gateway_env(sandbox_url: str, spool: str) -> dict[str, str]:
    return {
        "IAN_UPSTREAM_URL": sandbox_url,
        "IAN_CLIENT_ID": "sandbox-client",
        "IAN_CLIENT_SECRET": "sandbox-secret",
        "IAN_SPOOL": spool,
        "IAN_ORDERS_API_KEYS": f"first-key,{KEY}",
    }


def received(http: httpx.Client, sandbox_url: str, want: int, timeout: float = 60) -> list[Any]:
    """The order_log bodies the sandbox accepted, once there are `want` of them."""
    deadline = time.monotonic() + timeout
    while True:
        answer = http.get(f"{sandbox_url}/_sandbox/received", params={"kind": "order_log"})
        answer.raise_for_status()
        bodies = bodies_of(answer.json())
        if len(bodies) >= want or time.monotonic() > deadline:
            return bodies
        time.sleep(0.1)


def bodies_of(payload: Any) -> list[Any]:
    """`GET /_sandbox/received`: {"kind", "count", "items": [{"seq", "body", ...}]}."""
    return [item["body"] for item in payload["items"]]


@pytest.fixture
def sandbox_url() -> Any:
    sandbox = pytest.importorskip("gateway.sandbox")
    create_sandbox = getattr(sandbox, "create_sandbox", None)
    if create_sandbox is None:
        pytest.skip("gateway.sandbox.create_sandbox is not there yet")
    from tests.support import thread_server

    with thread_server(create_sandbox()) as server:
        yield server.url


def test_e2e_orders_reach_the_sandbox_once(spawn: Spawn, http: httpx.Client, sandbox_url: str,
                                           tmp_path: Path) -> None:
    env = gateway_env(sandbox_url, f"sqlite:///{tmp_path}/spool.db")
    gateway = spawn(["serve", "--host", "127.0.0.1"], env=env)
    url = f"{gateway.url}/v1/orders"
    orders = [make_order(f"e2e-{i}") for i in range(3)]
    answer = http.post(url, json={"orders": orders}, headers=AUTH)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    again = http.post(url, json=orders[0], headers=AUTH)
    assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    bodies = received(http, sandbox_url, 3)
    time.sleep(0.5)  # anything doubled would arrive by now
    bodies = received(http, sandbox_url, 3)
    assert sorted(b["properties"]["order_id"] for b in bodies) == ["e2e-0", "e2e-1", "e2e-2"]
    assert bodies_by_id(bodies)["e2e-1"] == orders[1]


def bodies_by_id(bodies: list[Any]) -> dict[str, Any]:
    return {b["properties"]["order_id"]: b for b in bodies}


def test_e2e_wrong_key_is_401_and_nothing_arrives(spawn: Spawn, http: httpx.Client,
                                                  sandbox_url: str) -> None:
    gateway = spawn(["serve", "--host", "127.0.0.1"], env=gateway_env(sandbox_url, "memory:"))
    url = f"{gateway.url}/v1/orders"
    for headers in ({"Authorization": "Bearer wrong-key"}, {}):
        answer = http.post(url, json=make_order("nope"), headers=headers)
        assert answer.status_code == 401
        assert "errors" in answer.json()
    answer = http.post(url, json=make_order("yes"), headers=AUTH)
    assert answer.status_code == 202
    bodies = received(http, sandbox_url, 1)
    assert [b["properties"]["order_id"] for b in bodies] == ["yes"]
    assert KEY not in gateway.output() and "wrong-key" not in gateway.output()


async def test_orders_are_counted_in_the_metrics(spool: MemorySpool, dedupe: Dedupe) -> None:
    metrics = Metrics()
    intake = OrderIntake(Settings(orders_api_keys=(KEY,)), dedupe, spool, metrics)
    bad = make_order("o-2")
    del bad["properties"]["order_items"][0]["ordered_quantity"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=intake),
                                 base_url="http://gw") as http:
        order = make_order("o-1")
        await post(http, {"orders": [order, order, bad]})
    text = metrics.render().decode()
    assert 'ian_intake_events_total{kind="order_log",outcome="accepted"} 1.0' in text
    assert 'ian_intake_events_total{kind="order_log",outcome="duplicate"} 1.0' in text
    assert ('ian_intake_rejects_total{code="1001",'
            'key="properties.order_items[].ordered_quantity"} 1.0') in text
    assert 'ian_intake_requests_total{endpoint="orders",status="202"} 1.0' in text


# Hardening (issue 16): deep nesting and bodies cut short.


async def test_an_order_nested_too_deep_is_rejected_not_500(client: httpx.AsyncClient,
                                                            spool: MemorySpool) -> None:
    deep = orjson.dumps(make_order("o-deep"))[:-1] + b',"extra":' + b"[" * 300 + b"]" * 300 + b"}"
    body = b'{"orders": [' + deep + b"," + orjson.dumps(make_order("o-ok")) + b"]}"
    answer = await post(client, body)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"accepted": 1, "duplicates": 0, "rejected": [{"index": 0, "errors": [
        {"error": {"message": "is nested too deeply: at most 254 levels", "error_code": 9999}}]}]}
    assert await spool.depth() == 1


async def test_a_body_cut_short_is_abandoned(spool: MemorySpool, dedupe: Dedupe) -> None:
    intake = OrderIntake(Settings(orders_api_keys=(KEY,)), dedupe, spool, Metrics())
    body = orjson.dumps(make_order("o-cut"))  # valid JSON: only the missing end tells
    messages = [{"type": "http.request", "body": body, "more_body": True},
                {"type": "http.disconnect"}]
    sent: list[Any] = []

    async def receive() -> Any:
        return messages.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/orders", "headers": [
        (b"authorization", f"Bearer {KEY}".encode()), (b"content-type", b"application/json"),
        (b"content-length", str(len(body) + 10).encode())]}
    await intake(scope, receive, send)
    assert sent == []
    assert await spool.depth() == 0 and len(dedupe) == 0


def test_e2e_other_methods_are_405_with_the_error_object(
        spawn: Spawn, http: httpx.Client, sandbox_url: str) -> None:
    gateway = spawn(["serve", "--host", "127.0.0.1"], env=gateway_env(sandbox_url, "memory:"))
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        answer = http.request(method, f"{gateway.url}/v1/orders", headers=AUTH)
        assert answer.status_code == 405
        assert answer.headers["allow"] == "POST"
        assert answer.json() == {"errors": [{"error": {"message": "use POST",
                                                        "error_code": 9999}}]}
