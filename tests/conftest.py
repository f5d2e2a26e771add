"""Shared fixtures: free loopback ports and real servers (threads or processes).

Every server here listens on 127.0.0.1 and is stopped by the fixture that started it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open in {timeout}s")


class ThreadServer:
    """A uvicorn server for an ASGI app, in a thread of this process."""

    def __init__(self, app: Any, port: int | None = None, **tls: Any) -> None:
        """`tls`: uvicorn's `ssl_certfile` and `ssl_keyfile`, to serve HTTPS."""
        self.port = port or free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on", **tls)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@contextmanager
def thread_server(app: Any, port: int | None = None, **tls: Any) -> Iterator[ThreadServer]:
    server = ThreadServer(app, port, **tls).start()
    try:
        yield server
    finally:
        server.stop()


class Process:
    """`ian-gateway ARGS` as a real child process listening on `port`."""

    def __init__(self, args: list[str], port: int, env: Mapping[str, str], cwd: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        full_env = {**os.environ, **env}
        self.log = cwd / f"process-{port}.log"
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", *args], env=full_env, cwd=cwd,
            stdout=self._log_file, stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, proc=self.proc)
        except Exception:
            self.stop()
            raise RuntimeError(self.output()) from None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()
        return self.proc.returncode


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


@contextmanager
def recording_upstream(**tls: Any) -> Iterator[Any]:
    """A recording, scriptable Connect stand-in over real HTTP (tests/upstream.py), its
    `url` set; `tls`: thread_server's certificate arguments for HTTPS."""
    from upstream import Upstream

    recorder = Upstream()
    with thread_server(recorder, **tls) as server:
        recorder.url = server.url
        yield recorder


@pytest.fixture
def upstream() -> Iterator[Any]:
    with recording_upstream() as recorder:
        yield recorder


@pytest.fixture
def gateway(spawn: Callable[..., Process], upstream: Any, tmp_path: Path) -> Callable[..., Process]:
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
