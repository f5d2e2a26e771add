"""Shared fixtures: real servers (threads or processes) on loopback, stopped afterwards.

The helpers they are built from live in `tests.support`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path

import httpx
import pytest
from pluggy import Result

from tests.support import Process, free_port
from tests.support.redis_server import REDIS_MISSING, redis_available, redis_server
from tests.support.upstream import Upstream, recording_upstream

LOG_TAIL = 4000  # characters of each running process's log in a failing test's report


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Result[pytest.TestReport], None]:
    """A failing test's report ends with the log of every `ian-gateway` process still
    running: the gateway's own account (a worker that failed to start, a traceback)."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for process in sorted(Process.running, key=lambda p: p.port):
            title = f"ian-gateway {' '.join(process.args)} (exit {process.proc.poll()})"
            report.sections.append((title, process.output()[-LOG_TAIL:]))


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start `ian-gateway` subcommands as real processes; all are stopped afterwards."""
    started: list[Process] = []

    def start(
        args: list[str], port: int | None = None, env: Mapping[str, str] | None = None
    ) -> Process:
        port = port or free_port()
        process = Process([*args, "--port", str(port)], port, env or {}, tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with recording_upstream() as recorder:
        yield recorder


@pytest.fixture
def gateway(spawn: Callable[..., Process], upstream: Upstream,
            tmp_path: Path) -> Callable[..., Process]:
    """`ian-gateway serve` as a real process forwarding to the `upstream` fixture."""

    def start(**env: str) -> Process:
        defaults = {
            "IAN_UPSTREAM_URL": upstream.url,
            "IAN_CLIENT_ID": "client",
            "IAN_CLIENT_SECRET": "secret",
            "IAN_SPOOL": f"sqlite:///{tmp_path}/spool.db",
            "IAN_ALLOWED_ORIGINS": "https://shop.example",
            "IAN_LOG_FORMAT": "text",
        }
        return spawn(["serve", "--host", "127.0.0.1"], env={**defaults, **env})

    return start


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real redis-server for the run; each user keeps to its own keys or flushes it."""
    if not redis_available():
        pytest.skip(REDIS_MISSING)
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server.url
