"""`loadtests/bench --profile`: py-spy samples the gateway during a measured run.

py-spy (`pip install py-spy`) records collapsed stacks (`--format raw`) of
the thread holding the GIL only (`--gil`): the gateway is CPU-bound on its one
core, so that is where its CPU goes (waits with the GIL released, such as
SQLite's fsync, do not show). `summarize` turns them into the top functions by
own time and by time including callees, per cent of all samples. py-spy pauses
the process at each sample: profiled runs are slower, compare their figures
with each other, not with unprofiled runs.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any


def available() -> bool:
    return shutil.which("py-spy") is not None


def record_argv(pid: int, seconds: float, out: Path) -> list[str]:
    return ["py-spy", "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
            "--format", "raw", "--gil", "--rate", "200", "--output", str(out)]


def summarize(raw: str, top: int = 15) -> dict[str, Any]:
    """Top frames by own samples and by inclusive samples, in per cent."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples, frames = int(count), stack.split(";")
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples

    def percent(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(frame, round(100 * n / total, 1)) for frame, n in counter.most_common(top)]

    return {"samples": total, "own": percent(own) if total else [],
            "inclusive": percent(inclusive) if total else []}


class Recording:
    """One py-spy run in the background; `finish` waits for it and summarizes."""

    def __init__(self, pid: int, seconds: float, out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen(record_argv(pid, seconds, out), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)

    def finish(self, timeout: float = 30.0) -> dict[str, Any]:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if not self.out.exists():
            return {"samples": 0, "own": [], "inclusive": [], "error": "py-spy wrote nothing"}
        return {**summarize(self.out.read_text()), "raw": str(self.out)}
