"""Fixtures for the sandbox's tests: the app and an in-process client holding a token."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from gateway.sandbox import Sandbox, create_sandbox

from .bodies import CREDENTIALS


@pytest.fixture
def make_sandbox() -> Callable[..., Sandbox]:
    """`create_sandbox` with the default credentials, whatever the environment says."""

    def make(**options: Any) -> Sandbox:
        options.setdefault("client_id", "sandbox-client")
        options.setdefault("client_secret", "sandbox-secret")
        return create_sandbox(**options)

    return make


@pytest.fixture
def sandbox(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    return make_sandbox()


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to the sandbox in process, already holding a token."""
    transport = httpx.ASGITransport(app=sandbox)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        answer = await client.post("/v2/oauth/token", json=CREDENTIALS)
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        yield client


@pytest.fixture
def caplog_errors(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level("WARNING"):
        yield caplog
