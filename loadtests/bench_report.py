"""The benchmark's report: ratios against same-run baselines, targets, table, JSON.

Absolute figures move with the machine and with whoever else is using it;
ratios to baselines measured in the same run are what compare across commits.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Target:
    key: str  # the figure it judges, in `figures()`
    label: str
    limit: float
    at_least: bool  # True: figure >= limit; False: figure <= limit

    def judge(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value >= self.limit if self.at_least else value <= self.limit

    def text(self) -> str:
        return f"{'>=' if self.at_least else '<='} {self.limit:g}"


# The issues' targets. Issue 13 made the field figures the ones users size a fleet by; the
# 1-event intake ratio must only not fall below the 0.35 it had then.
TARGETS = (
    Target("intake_vs_bare_asgi", "intake single-event / bare ASGI", 0.35, True),
    Target("e2e_vs_bare_aiohttp", "end-to-end / bare aiohttp forwarding", 1.0, True),
    Target("half_rate_p99_ms", "intake p99 at half max rate (ms)", 10.0, False),
    Target("half_rate_forwarder_p99_ms", "  same, forwarder in-process (ms)", 10.0, False),
    Target("field_e2e_vs_bare_aiohttp", "field: end-to-end / bare aiohttp, 512", 1.4, True),
    Target("field_e2e_vs_bare_pyreqwest", "field: end-to-end / bare pyreqwest, 512", 0.6, True),
    Target("bytes_per_event_id", "bytes per remembered event_id", 200.0, False),
)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def dig(results: Mapping[str, Any], *path: str) -> Any:
    """`results[a][b]...`, or None as soon as a step is missing."""
    node: Any = results
    for step in path:
        if not isinstance(node, Mapping) or node.get(step) is None:
            return None
        node = node[step]
    return node


def ms(microseconds: float | None) -> float | None:
    return None if microseconds is None else microseconds / 1000.0


def figures(results: Mapping[str, Any]) -> dict[str, float | None]:
    """The figures the targets judge, computed from the raw results."""
    return {
        "intake_vs_bare_asgi": ratio(dig(results, "gateway", "intake_1", "rps"),
                                     dig(results, "baselines", "bare_asgi", "rps")),
        "e2e_vs_bare_aiohttp": ratio(dig(results, "gateway", "e2e", "received_events_per_s"),
                                     dig(results, "baselines", "bare_aiohttp", "rps")),
        "half_rate_p99_ms": ms(dig(results, "gateway", "half_rate", "p99_us")),
        "half_rate_forwarder_p99_ms": ms(dig(results, "gateway", "half_rate_forwarder", "p99_us")),
        "field_e2e_vs_bare_aiohttp": ratio(dig(results, "field", "e2e", "received_events_per_s"),
                                           dig(results, "field", "bare_aiohttp", "rps")),
        "field_e2e_vs_bare_pyreqwest": ratio(
            dig(results, "field", "e2e", "received_events_per_s"),
            dig(results, "field", "bare_pyreqwest", "rps")),
        "bytes_per_event_id": dig(results, "memory", "bytes_per_key_rss"),
        # information, no target: the intake ratio if the spool cost nothing
        "intake_without_spool_vs_bare_asgi": ratio(
            dig(results, "gateway", "intake_1_without_spool", "rps"),
            dig(results, "baselines", "bare_asgi", "rps")),
        # information, no target: the field ratio by CPU per event. At 512 in flight the
        # bare loop is capped by 512 / 40 ms while its core has time to spare; on a starved
        # machine it is CPU-bound, and the field ratio then equals this one.
        "field_cpu_vs_bare_pyreqwest": field_cpu_ratio(results.get("field") or {}),
    }


def field_cpu_ratio(field: Mapping[str, Any]) -> float | None:
    """The bare pyreqwest loop's CPU per request ÷ the gateway's per event, when measured."""
    bare = field.get("bare_pyreqwest") or {}
    e2e = field.get("e2e") or {}
    return ratio(ratio(bare.get("cpu_busy"), bare.get("rps")),
                 ratio(e2e.get("cpu_busy"), e2e.get("received_events_per_s")))


def judge(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    values = figures(results)
    return [
        {"key": t.key, "label": t.label, "value": values[t.key], "target": t.text(),
         "met": t.judge(values[t.key])}
        for t in TARGETS
    ]


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _wrk_row(label: str, wrk: Mapping[str, Any] | None, unit: str = "req/s") -> list[str]:
    if not wrk:
        return [label, "-", "", "not measured"]
    note = f"p50 {_num(ms(wrk.get('p50_us')), 2)} ms, p99 {_num(ms(wrk.get('p99_us')), 2)} ms"
    if wrk.get("status") or wrk.get("timeout"):
        note += f", non-2xx {wrk.get('status', 0)}, timeouts {wrk.get('timeout', 0)}"
    return [label, _num(wrk.get("rps")), unit, note + _cpu_note(wrk, wrk.get("rps"), "req")]


def _information(row: list[str], vs_bare: float | None) -> list[str]:
    if vs_bare is not None:
        row[3] += f"; {vs_bare:.2f} of bare ASGI"
    return row


def _cpu_note(figures: Mapping[str, Any], rate: float | None, per: str) -> str:
    """The server's share of its core and its CPU time per request (or event): at half
    the maximum rate a request costs more than at the maximum (fewer per loop turn and
    per group commit), so half the rate is not half the core."""
    busy = figures.get("cpu_busy")
    if busy is None or not rate:
        return ""
    return f", cpu {busy:.0%} = {busy / rate * 1e6:,.0f} us/{per}"


def _threads_note(figures: Mapping[str, Any], rate: float | None) -> str:
    """The CPU per event by thread (bench.thread_seconds): which of intake and forwarding's
    Python, the client's Rust runtime and the spool's writer costs what."""
    threads = figures.get("cpu_threads")
    if not threads or not rate:
        return ""
    return " (" + ", ".join(f"{kind} {share / rate * 1e6:,.0f}"
                            for kind, share in sorted(threads.items())) + ")"


def rows(results: Mapping[str, Any]) -> list[list[str]]:
    """The absolute figures, one row each: label, value, unit, note."""
    base = results.get("baselines") or {}
    gw = results.get("gateway") or {}
    aio = base.get("bare_aiohttp") or {}
    e2e = gw.get("e2e") or {}
    half = gw.get("half_rate") or {}
    half_fwd = gw.get("half_rate_forwarder") or {}
    memory = results.get("memory") or {}
    beacons20 = gw.get("intake_20") or {}
    return [
        _wrk_row("nginx fixed 200, 1 worker, static body", base.get("nginx")),
        _wrk_row("bare ASGI (uvicorn+uvloop+httptools)", base.get("bare_asgi")),
        ["bare aiohttp forwarding, 64 keep-alive", _num(aio.get("rps")), "req/s",
         f"errors {aio.get('errors', '-')}"],
        _wrk_row("intake, 1-event beacons", gw.get("intake_1")),
        _information(_wrk_row("  same, a spool that stores nothing",
                              gw.get("intake_1_without_spool")),
                     figures(results)["intake_without_spool_vs_bare_asgi"]),
        _wrk_row("intake, 20-event beacons", beacons20),
        ["  = events/s at 20 per beacon", _num(beacons20.get("rps", 0) * 20 or None),
         "events/s", ""],
        [f"intake at half max ({_num(half.get('target_rps'))}/s)", _num(half.get("rps")),
         "req/s", f"p50 {_num(ms(half.get('p50_us')), 2)} ms, "
                  f"p99 {_num(ms(half.get('p99_us')), 2)} ms, forwarder off"
                  + _cpu_note(half, half.get("rps"), "req")],
        ["  same, forwarder in-process (default)", _num(half_fwd.get("rps")), "req/s",
         f"p50 {_num(ms(half_fwd.get('p50_us')), 2)} ms, "
         f"p99 {_num(ms(half_fwd.get('p99_us')), 2)} ms"],
        ["end-to-end received by the stub", _num(e2e.get("received_events_per_s")), "events/s",
         f"backlog {_num(e2e.get('backlog_start'))} -> {_num(e2e.get('backlog_end'))}, "
         f"stable {e2e.get('stable', '-')}"
         + _cpu_note(e2e, e2e.get("received_events_per_s"), "event")
         + _threads_note(e2e, e2e.get("received_events_per_s"))],
        ["  forwarder alone, draining (intake idle)", _num(e2e.get("drain_events_per_s")),
         "events/s", "the backlog left after the window"],
        ["event_id memory (dedupe + spool), 1M", _num(memory.get("bytes_per_key_rss")), "B/id",
         f"RSS delta, keys included (a UUID str is {memory.get('key_string_bytes', '-')} B)"],
        *field_rows(results.get("field") or {}),
    ]


def field_rows(field: Mapping[str, Any]) -> list[list[str]]:
    """The field section: TLS, an upstream 40 ms away, the gateway at default settings."""
    e2e = field.get("e2e") or {}
    by_cpu = field_cpu_ratio(field)
    limit = (e2e.get("metrics") or {}).get("ian_forward_concurrency_limit")
    return [
        *(_bare_row(f"field: bare {client}, TLS, 512 in flight", field.get(f"bare_{client}"))
          for client in ("aiohttp", "pyreqwest")),
        ["field: gateway end-to-end, defaults", _num(e2e.get("received_events_per_s")),
         "events/s", f"stable {e2e.get('stable', '-')}, in-flight limit at the end "
         f"{_num(limit)}" + _cpu_note(e2e, e2e.get("received_events_per_s"), "event")
         + _threads_note(e2e, e2e.get("received_events_per_s")) + _by_cpu_note(by_cpu)],
    ]


def _by_cpu_note(by_cpu: float | None) -> str:
    return "" if by_cpu is None else f"; by CPU per event {by_cpu:.2f} of bare pyreqwest"


def _bare_row(label: str, figures: Mapping[str, Any] | None) -> list[str]:
    if not figures:
        return [label, "-", "", "not measured"]
    return [label, _num(figures.get("rps")), "req/s", f"errors {figures.get('errors', '-')}"
            + _cpu_note(figures, figures.get("rps"), "req")]


def table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def profiles(results: Mapping[str, Any]) -> list[str]:
    """The py-spy summaries of a `--profile` run, as text."""
    found = [(step, dig(results, "gateway", step, "profile")) for step in ("intake_1", "e2e")]
    return [f"{step}: {render_profile(summary)}" for step, summary in found if summary]


def render_profile(summary: Mapping[str, Any]) -> str:
    lines = [f"py-spy, {summary.get('samples', 0)} samples, top by own time:"]
    lines += [f"  {share:5.1f}%  {frame}" for frame, share in summary.get("own", [])]
    return "\n".join(lines)


def render(results: Mapping[str, Any]) -> str:
    verdicts = [
        [v["label"], _num(v["value"], 2), v["target"],
         {True: "met", False: "MISSED", None: "not measured"}[v["met"]]]
        for v in judge(results)
    ]
    return "\n\n".join([
        table(["measurement", "value", "unit", "note"], rows(results)),
        table(["ratio / target", "value", "target", "verdict"], verdicts),
        *profiles(results),
        *provenance(results),
    ])


def provenance(results: Mapping[str, Any]) -> list[str]:
    changed = results.get("uncommitted") or []
    if not changed:
        return []
    return [f"measured {results.get('git_sha')} plus uncommitted changes to {', '.join(changed)}"]


def git_sha(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root,
                             capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "nogit"
    return out.stdout.strip() or "nogit"


def uncommitted(root: Path, under: str = "gateway") -> list[str]:
    """Files under `under` that differ from HEAD: the run measured those, not the sha alone."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--", under], cwd=root,
                             capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return []
    return [line[3:] for line in out.stdout.splitlines()]


def write(results: Mapping[str, Any], directory: Path = RESULTS, when: float | None = None) -> Path:
    """`<directory>/<UTC timestamp>-<git sha>.json`, with the verdicts included."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when if when is not None else time.time()))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stamp}-{results.get('git_sha', 'nogit')}.json"
    document = {**results, "ratios": figures(results), "targets": judge(results)}
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return path
