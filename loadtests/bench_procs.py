"""The benchmark's child processes: started pinned, logged, always stopped.

Each child gets its own session (process group), so stopping it also stops its
workers (nginx) and a Ctrl-C in the terminal reaches only the harness, which
then stops them all in order from its `finally`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from tests.support import wait_for_port


def pinned(argv: Sequence[str], cpu: str | None) -> list[str]:
    """`argv` run on the CPUs `cpu` ("1", "0-1") with taskset, or as is."""
    return ["taskset", "-c", cpu, *argv] if cpu else list(argv)


class Procs:
    """Every process the harness started; `close` stops those still running."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self._running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: Sequence[str], cpu: str | None = None,
              env: Mapping[str, str] | None = None, port: int | None = None,
              cwd: Path | None = None) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            pinned(argv, cpu), env={**os.environ, **(env or {})}, cwd=cwd,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self._running.append(proc)
        if port is not None:
            try:
                wait_for_port(port, timeout=20.0, proc=proc)
            except (RuntimeError, TimeoutError) as exc:
                self.stop(proc)
                raise RuntimeError(f"{name}: {exc}\n{self.tail(name)}") from None
        return proc

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
        if proc in self._running:
            self._running.remove(proc)
        if proc.poll() is not None:
            return
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()

    def close(self) -> None:
        for proc in reversed(list(self._running)):
            self.stop(proc)

    def __enter__(self) -> Procs:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signum)
