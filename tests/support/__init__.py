"""What the tests (and the load tests) share: loopback ports, real servers, child processes.

Every server here listens on 127.0.0.1 and is stopped by whoever started it. The
rest of the support lives in modules of its own: `factories` (valid events),
`upstream` (a recording Connect stand-in), `served` (a real gateway forwarding to
a real sandbox) and `redis_server`.

Import it as `tests.support` with the repository's root on the path: pytest puts
it there (`pythonpath` in pyproject.toml), `python3 -m ...` does from the root.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import httpx
import orjson
import uvicorn

ROOT = Path(__file__).resolve().parent.parent.parent

BEACON = {"Content-Type": "text/plain", "User-Agent": "Mozilla/5.0 (shopper)"}
TRACK = "/v2/ian/track"


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
    raise TimeoutError(f"port {port} did not open in {timeout:g}s")


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
    """`ian-gateway ARGS` as a real child process listening on `port`.

    Those not yet stopped are in `Process.running`: a failing test's report ends with
    their logs (tests/conftest.py), which live in a temporary directory CI never prints.
    """

    running: ClassVar[set[Process]] = set()

    def __init__(self, args: list[str], port: int, env: Mapping[str, str], cwd: Path) -> None:
        self.args = args
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        full_env = {**os.environ, **env}
        self.log = cwd / f"process-{port}.log"
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", *args], env=full_env, cwd=cwd,
            stdout=self._log_file, stderr=subprocess.STDOUT,
        )
        Process.running.add(self)
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
        Process.running.discard(self)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()
        return self.proc.returncode


def run_child(script: str, args: Sequence[str]) -> subprocess.Popen[str]:
    """`python -c script args…` in the repository, its stdout captured as text."""
    return subprocess.Popen(
        [sys.executable, "-c", script, *args], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def send(http: httpx.Client, gw: Any, *events: dict[str, Any]) -> None:
    """Posts `events` to the gateway `gw` as one beacon, which must be taken (202)."""
    answer = http.post(gw.url + "/v1/events", content=orjson.dumps({"events": list(events)}),
                       headers=BEACON)
    assert answer.status_code == 202, answer.text


def metric(http: httpx.Client, gw: Any, sample: str) -> float:
    """The value of one `/metrics` sample of the gateway `gw`, 0 while it is absent."""
    for line in http.get(gw.url + "/metrics").text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
