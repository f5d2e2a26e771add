"""The admin API under `/_sandbox/`: seed, received, stats, clock, reset, routing."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from gateway.sandbox import Sandbox

from .bodies import CREDENTIALS, order_created, track_event


async def test_seed_lists_users_stores_catalog_and_holds(client: httpx.AsyncClient) -> None:
    seed = (await client.get("/_sandbox/seed")).json()
    users = {user["id"]: user for user in seed["users"]}
    assert any(user["phone_number"] is None for user in users.values())
    assert any(not user["active"] for user in users.values())
    assert all(store["location_code"] for store in seed["stores"])
    assert {item["quantity_type"] for item in seed["catalog"]} == {"count", "weight"}
    assert all(item["upc"] and item["rrc"] for item in seed["catalog"])
    assert any(hold.get("expired") for hold in seed["holds"])
    assert any(not hold.get("expired") for hold in seed["holds"])


async def test_received_per_kind_and_all_in_order(client: httpx.AsyncClient) -> None:
    event, order = track_event(), order_created()
    await client.post("/v2/ian/track", json=event)
    await client.post("/v2/ian/order/log", json=order)
    everything = (await client.get("/_sandbox/received")).json()
    assert [(item["kind"], item["body"]) for item in everything["items"]] == [
        ("track", event), ("order_log", order)]
    orders = (await client.get("/_sandbox/received?kind=order_log")).json()
    assert orders["count"] == 1
    assert orders["items"][0]["body"] == order
    assert (await client.get("/_sandbox/received?kind=delivery")).json()["items"] == []


async def test_received_pages_with_offset_and_limit(client: httpx.AsyncClient) -> None:
    events = [track_event() for _ in range(5)]
    for event in events:
        await client.post("/v2/ian/track", json=event)
    page = (await client.get("/_sandbox/received?kind=track&offset=1&limit=2")).json()
    assert [item["body"] for item in page["items"]] == events[1:3]


@pytest.mark.parametrize(("query", "key"), [
    ("kind=clicks", "kind"), ("offset=-1", "offset"), ("limit=many", "limit")])
async def test_received_rejects_bad_queries(client: httpx.AsyncClient, query: str,
                                            key: str) -> None:
    answer = await client.get(f"/_sandbox/received?{query}")
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["meta"] == {"key": key}


async def test_stats_start_at_zero(client: httpx.AsyncClient) -> None:
    stats = (await client.get("/_sandbox/stats")).json()
    zero = {"accepted": 0, "rejected": 0, "distinct_ids": 0, "duplicates": 0}
    assert stats["track"] == stats["order_log"] == stats["delivery"] == zero
    assert stats["orders"] == 0
    assert stats["tokens"] == 1  # the client fixture's


async def test_clock_moves_forward_only(client: httpx.AsyncClient) -> None:
    moved = (await client.post("/_sandbox/clock", json={"advance_s": 600})).json()
    assert moved["offset_s"] == 600
    assert (await client.get("/_sandbox/clock")).json()["offset_s"] == 600
    back = await client.post("/_sandbox/clock", json={"advance_s": -5})
    assert back.status_code == 400
    assert back.json()["errors"][0]["meta"] == {"key": "advance_s"}


async def test_reset_forgets_records_orders_and_clock_but_keeps_tokens(
        client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    await client.post("/v2/ian/track", json=track_event())
    await client.post("/_sandbox/clock", json={"advance_s": 60})
    assert (await client.post("/_sandbox/reset")).json() == {"reset": True}
    stats = (await client.get("/_sandbox/stats")).json()
    assert stats["track"]["accepted"] == 0
    assert (await client.get("/_sandbox/clock")).json()["offset_s"] == 0
    assert (await client.post("/v2/ian/track", json=track_event())).status_code == 200


async def test_unknown_paths_and_methods(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v2/nothing")
    assert missing.status_code == 404
    assert missing.json() == {"error": {"message": "Resource not found", "error_code": 4000}}
    wrong = await client.get("/v2/ian/track")
    assert wrong.status_code == 405


async def test_a_huge_body_is_413(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v2/ian/track", content=b"x" * (2 << 20))
    assert answer.status_code == 413


async def test_token_lifetime_can_change_at_run_time(client: httpx.AsyncClient) -> None:
    assert (await client.get("/_sandbox/tokens")).json() == {"ttl": 86400.0, "active": 1}
    assert (await client.put("/_sandbox/tokens", json={"ttl": 2})).json()["ttl"] == 2
    answer = await client.post("/v2/oauth/token", json=CREDENTIALS)
    assert answer.json()["expires_in"] == 2
    bad = await client.put("/_sandbox/tokens", json={"ttl": 0})
    assert bad.json()["errors"][0]["meta"] == {"key": "ttl"}


async def test_past_max_records_requests_are_counted_not_kept(
        make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(max_records=2)
    transport = httpx.ASGITransport(app=sandbox)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        bearer = (await client.post("/v2/oauth/token", json=CREDENTIALS)).json()["access_token"]
        event = track_event()
        for body in (track_event(), event, event):
            await client.post("/v2/ian/track", json=body,
                              headers={"Authorization": f"Bearer {bearer}"})
        stats = (await client.get("/_sandbox/stats")).json()
        received = (await client.get("/_sandbox/received")).json()
    assert received["count"] == 2
    assert stats["unrecorded"] == 1
    assert stats["track"] == {"accepted": 3, "rejected": 0, "distinct_ids": 2, "duplicates": 1}
