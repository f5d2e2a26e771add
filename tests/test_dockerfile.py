"""The Dockerfile, read without a Docker engine: its command is the documented one, and runs.

No Docker runs here, so the test parses the Dockerfile, checks what the image
would do, then starts the very same command outside Docker (bound to loopback).
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.cli import build_parser
from tests.support import ROOT, Process, free_port

DOCUMENTED = ["ian-gateway", "serve", "--host", "0.0.0.0", "--port", "8080"]


@dataclass(frozen=True)
class Instruction:
    name: str
    args: str

    def exec_form(self) -> list[str]:
        """The JSON (exec) form's argv; a shell-form instruction fails the test."""
        form = self.args.split("CMD", 1)[-1].strip() if self.name == "HEALTHCHECK" else self.args
        argv = json.loads(form)
        assert isinstance(argv, list), f"{self.name} must use the exec form"
        return [str(arg) for arg in argv]


def parse(text: str) -> list[Instruction]:
    """Instructions in order; comments dropped, backslash continuations joined."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        name, _, args = line.partition(" ")
        instructions.append(Instruction(name.upper(), " ".join(args.split())))
    return instructions


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse((ROOT / "Dockerfile").read_text())


def named(instructions: list[Instruction], name: str) -> list[Instruction]:
    return [i for i in instructions if i.name == name]


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    starts = [n for n, i in enumerate(instructions) if i.name == "FROM"]
    return instructions[starts[-1]:]


def test_stages_build_the_snippet_then_the_wheel_then_install_it(
    dockerfile: list[Instruction],
) -> None:
    stages = [i.args for i in named(dockerfile, "FROM")]
    assert stages[0].startswith("node:20") and stages[0].endswith("AS snippet")
    assert stages[1].startswith("python:3.11-slim") and stages[1].endswith("AS wheels")
    assert stages[-1] == "python:3.11-slim"
    runs = " ".join(i.args for i in named(dockerfile, "RUN"))
    assert "npm ci" in runs and "npm run build" in runs
    assert "pip wheel" in runs
    copies = [i.args for i in named(dockerfile, "COPY")]
    assert "--from=snippet /src/gateway/static/ian.js gateway/static/ian.js" in copies
    final_runs = " ".join(i.args for i in named(final_stage(dockerfile), "RUN"))
    assert "from=wheels" in final_runs and "pip install --no-index" in final_runs


def test_cmd_is_the_documented_serve_command(dockerfile: list[Instruction]) -> None:
    (cmd,) = named(dockerfile, "CMD")
    assert cmd.exec_form() == DOCUMENTED
    assert "IAN_WORKERS=2" in [i.args for i in named(final_stage(dockerfile), "ENV")]
    assert "8080" in [i.args for i in named(dockerfile, "EXPOSE")]


def serve_options(argv: list[str], monkeypatch: pytest.MonkeyPatch,
                  workers_env: str | None) -> tuple[str, int, int]:
    """(host, port, workers) as `ian-gateway serve` reads them, IAN_WORKERS included."""
    if workers_env is None:
        monkeypatch.delenv("IAN_WORKERS", raising=False)
    else:
        monkeypatch.setenv("IAN_WORKERS", workers_env)
    args = build_parser().parse_args(argv[1:])
    return args.host, args.port, args.workers


def test_image_runs_what_the_readme_tells_people_to_run(
    dockerfile: list[Instruction], monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = ROOT / "README.md"
    found = re.search(r"^ian-gateway serve\b.*$", readme.read_text(), re.MULTILINE) \
        if readme.is_file() else None
    if found is None:
        pytest.skip("README.md has no `ian-gateway serve` command line yet")
    (cmd,) = named(dockerfile, "CMD")
    in_docker = serve_options(cmd.exec_form(), monkeypatch, workers_env="2")
    documented = serve_options(shlex.split(found.group(0)), monkeypatch, workers_env=None)
    assert in_docker == documented


def test_runs_as_a_user_without_privileges(dockerfile: list[Instruction]) -> None:
    users = named(final_stage(dockerfile), "USER")
    assert users, "the final stage must switch user"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0")


def test_healthcheck_asks_readyz_with_python(dockerfile: list[Instruction]) -> None:
    (check,) = named(dockerfile, "HEALTHCHECK")
    argv = check.exec_form()
    assert argv[:2] == ["python", "-c"]
    assert "http://127.0.0.1:8080/readyz" in argv[2] and "urllib" in argv[2]
    compile(argv[2], "<healthcheck>", "exec")


def test_dockerignore_keeps_host_builds_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"js/node_modules", "gateway/static/ian.js", ".git"} <= set(ignored)


def test_the_same_command_starts_outside_docker(
    dockerfile: list[Instruction], spawn: Callable[..., Process], tmp_path: Path,
    http: httpx.Client,
) -> None:
    (cmd,) = named(dockerfile, "CMD")
    argv = cmd.exec_form()[1:]
    argv[argv.index("--host") + 1] = "127.0.0.1"  # loopback only in tests
    port_at = argv.index("--port")
    del argv[port_at:port_at + 2]  # spawn picks a free port
    gateway = spawn(argv, env={
        "IAN_WORKERS": "2", "IAN_UPSTREAM_URL": f"http://127.0.0.1:{free_port()}",
        "IAN_ACCESS_TOKEN": "x"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready = http.get(f"{gateway.url}/readyz")
        if ready.status_code == 200 and gateway.output().count("gateway ready") == 2:
            break
        time.sleep(0.2)
    assert ready.status_code == 200, ready.text
    assert ready.json()["ready"] is True
    assert gateway.output().count("gateway ready") == 2, gateway.output()  # two workers
    assert (tmp_path / "ian-spool.db").exists()  # the image's default spool, in its cwd
