"""OAuth tokens and the 401 every Connect endpoint answers without one, over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from gateway.sandbox import Sandbox, create_sandbox
from tests.support import thread_server

from .bodies import CREDENTIALS, order_created, token, track_event

CONNECT_CALLS = [
    ("POST", "/v2/ian/track"),
    ("POST", "/v2/ian/order/log"),
    ("POST", "/v2/fulfillment/users/user-1/orders/delivery"),
    ("GET", "/v2/fulfillment/users/user-1/orders/o-1"),
]


def test_token_answers_the_public_docs_shape(sandbox: Sandbox, http: httpx.Client) -> None:
    with thread_server(sandbox) as server:
        answer = http.post(f"{server.url}/v2/oauth/token", json=CREDENTIALS)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "created_at", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400  # public Instacart docs: 24 h
    assert body["scope"] == "connect:ian"
    assert abs(body["created_at"] - time.time()) < 60


@pytest.mark.parametrize("change", [
    {"client_secret": "wrong"}, {"client_id": "someone-else"}, {"client_secret": None},
])
def test_wrong_credentials_are_401_with_an_error_object(
        sandbox: Sandbox, http: httpx.Client, change: dict[str, Any]) -> None:
    with thread_server(sandbox) as server:
        answer = http.post(f"{server.url}/v2/oauth/token", json={**CREDENTIALS, **change})
    assert answer.status_code == 401
    assert answer.json()["error"]["message"].startswith("Client authentication failed")
    assert "access_token" not in answer.json()


@pytest.mark.parametrize(("change", "key"), [
    ({"grant_type": "password"}, "grant_type"),
    ({"scope": "connect:fulfillment"}, "scope"),
])
def test_wrong_grant_or_scope_is_400(
        sandbox: Sandbox, http: httpx.Client, change: dict[str, str], key: str) -> None:
    with thread_server(sandbox) as server:
        answer = http.post(f"{server.url}/v2/oauth/token", json={**CREDENTIALS, **change})
    assert answer.status_code == 400
    assert answer.json() == {"errors": [{
        "error": {"message": "is not included in the list", "error_code": 1001},
        "meta": {"key": key}}]}


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[Sandbox, str]]:
    """One real server for the read-only 401 matrix."""
    sandbox = create_sandbox("sandbox-client", "sandbox-secret")
    with thread_server(sandbox) as server:
        yield sandbox, server.url


@pytest.mark.parametrize(("method", "path"), CONNECT_CALLS)
@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic c2FuZGJveA=="])
def test_every_connect_endpoint_needs_a_valid_token(
        live: tuple[Sandbox, str], http: httpx.Client, method: str, path: str,
        authorization: str | None) -> None:
    sandbox, url = live
    headers = {"Authorization": authorization} if authorization else {}
    answer = http.request(method, url + path, json=track_event(), headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {"error": {"message": "The access token is invalid",
                                       "error_code": 1002}, "meta": {"key": "access_token"}}
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert sandbox.store.stats["track"].accepted == 0


def test_a_token_expires_on_real_time(
        make_sandbox: Callable[..., Sandbox], http: httpx.Client) -> None:
    with thread_server(make_sandbox(token_ttl=1.5)) as server:
        answer = http.post(f"{server.url}/v2/oauth/token", json=CREDENTIALS)
        assert answer.json()["expires_in"] == 1.5
        headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        first = http.post(f"{server.url}/v2/ian/track", json=track_event(), headers=headers)
        time.sleep(1.6)  # token expiry runs on real time, like the gateway's refresh
        second = http.post(f"{server.url}/v2/ian/track", json=track_event(), headers=headers)
    assert first.status_code == 200
    assert second.status_code == 401
    assert second.json()["error"]["message"] == "The access token expired"


def test_admin_expiry_forces_a_refresh(sandbox: Sandbox, http: httpx.Client) -> None:
    with thread_server(sandbox) as server:
        headers = {"Authorization": f"Bearer {token(http, server.url)}"}
        expired = http.post(f"{server.url}/_sandbox/tokens/expire")
        refused = http.post(f"{server.url}/v2/ian/order/log", json=order_created(),
                            headers=headers)
        headers = {"Authorization": f"Bearer {token(http, server.url)}"}
        accepted = http.post(f"{server.url}/v2/ian/order/log", json=order_created(),
                             headers=headers)
    assert expired.json() == {"expired": 1}
    assert refused.status_code == 401
    assert accepted.status_code == 200


def test_credentials_come_from_the_environment(
        monkeypatch: pytest.MonkeyPatch, http: httpx.Client) -> None:
    monkeypatch.setenv("IAN_SANDBOX_CLIENT_ID", "shop-id")
    monkeypatch.setenv("IAN_SANDBOX_CLIENT_SECRET", "shop-secret")
    with thread_server(create_sandbox()) as server:
        default = http.post(f"{server.url}/v2/oauth/token", json=CREDENTIALS)
        own = http.post(f"{server.url}/v2/oauth/token", json={
            **CREDENTIALS, "client_id": "shop-id", "client_secret": "shop-secret"})
    assert default.status_code == 401
    assert own.status_code == 200


def test_the_token_endpoint_takes_no_token_and_admin_needs_none(
        sandbox: Sandbox, http: httpx.Client) -> None:
    with thread_server(sandbox) as server:
        assert http.get(f"{server.url}/_sandbox/stats").status_code == 200
        assert http.post(f"{server.url}/v2/oauth/token", json=CREDENTIALS).status_code == 200


def test_a_short_token_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError, match="token ttl"):
        create_sandbox(token_ttl=0)
