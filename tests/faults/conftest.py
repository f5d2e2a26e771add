"""The fault tests' measurements: recorded per test and printed in pytest's final summary.

`measured(**numbers)` records each number as a JUnit property (`record_property`),
prints it (seen with `-s`) and keeps it for the "fault tests: measured" section
that pytest prints at the end of the run, so the durability numbers of docs/durability.md
come from a plain `pytest -m fault` run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

MEASURED = pytest.StashKey[list[str]]()


@pytest.fixture
def measured(request: pytest.FixtureRequest,
             record_property: Callable[[str, object], None]) -> Callable[..., None]:
    def record(**numbers: Any) -> None:
        for name, value in numbers.items():
            record_property(name, value)
        line = f"{request.node.name}: {json.dumps(numbers, sort_keys=True)}"
        print(line)
        request.config.stash.setdefault(MEASURED, []).append(line)

    return record


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    lines = config.stash.get(MEASURED, [])
    if not lines:
        return
    terminalreporter.section("fault tests: measured")
    for line in lines:
        terminalreporter.write_line(line)
