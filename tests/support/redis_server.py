"""A real redis-server on loopback, for the spool and fault tests.

The server runs without persistence in its own temporary directory and is
stopped by whoever started it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support import free_port, wait_for_port

REDIS_MISSING = (
    "redis-server is not on PATH (apt-get install redis-server): redis spool tests skipped"
)


@dataclass(frozen=True)
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


@contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    """`redis-server` on a free loopback port, no RDB, no AOF; stopped on exit."""
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    log = (directory / "redis.log").open("wb")
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(directory)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc=proc)
        yield RedisServer(port, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()

