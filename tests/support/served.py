"""A real `ian-gateway serve` with a real `ian-gateway sandbox` as its upstream, for a module.

The deployment tests (OpenAPI, Prometheus, nginx, Grafana) each need the gateway as
a platform runs it: a process of its own on loopback, forwarding over real HTTP to
the local Connect sandbox. `served(...)` starts both, waits for the gateway to be
ready, and stops both (SIGTERM) when the block ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support import Process, free_port

ORDERS_KEY = "deploy-test-orders-key"
ORIGIN = "https://shop.example"


@dataclass
class Served:
    gateway: Process
    sandbox: Process

    def received(self, kind: str = "track") -> list[dict[str, Any]]:
        """The bodies the sandbox accepted, in order (`GET /_sandbox/received`)."""
        answer = httpx.get(f"{self.sandbox.url}/_sandbox/received", params={"kind": kind},
                           timeout=10)
        answer.raise_for_status()
        return [item["body"] for item in answer.json()["items"]]


def start(args: list[str], cwd: Path, env: dict[str, str]) -> Process:
    port = free_port()
    return Process([*args, "--port", str(port)], port, env, cwd)


def wait_ready(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{url}/readyz not ready in {timeout}s")


@contextmanager
def served(cwd: Path, workers: int = 1, **env: str) -> Iterator[Served]:
    """`ian-gateway serve --workers N` forwarding to a sandbox; `env` adds IAN_* settings."""
    with ExitStack() as stack:
        sandbox = start(["sandbox", "--log-level", "warning"], cwd, {})
        stack.callback(sandbox.stop)
        settings = {
            "IAN_UPSTREAM_URL": sandbox.url,
            "IAN_CLIENT_ID": "sandbox-client",
            "IAN_CLIENT_SECRET": "sandbox-secret",
            "IAN_SPOOL": f"sqlite:///{cwd}/spool.db",
            "IAN_ALLOWED_ORIGINS": ORIGIN,
            "IAN_ORDERS_API_KEYS": ORDERS_KEY,
            "IAN_LOG_FORMAT": "text",
            **env,
        }
        args = ["serve", "--host", "127.0.0.1", "--workers", str(workers), "--log-level", "warning"]
        gateway = start(args, cwd, settings)
        stack.callback(gateway.stop)
        wait_ready(gateway.url)
        yield Served(gateway, sandbox)
