"""The wrk Lua scripts of the benchmark, generated from one body template.

A beacon body is valid per `gateway.catalog` and its event_ids are holes that
wrk fills per request with a UUID no other request of the run carries
(`<run>-<thread>-4000-8000-<counter>`), so dedupe never short-circuits and the
whole pipeline (enrich, validate, dedupe, spool) runs for every event. Python
fills the same holes with uuid4s for its own clients (`fill`).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loadtests.traffic import ad_event, ad_fields, beacon_body

HOLE = "@EVENT_ID@"
PATH = "/v1/events"
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
HEADERS = {"Content-Type": "text/plain;charset=UTF-8", "User-Agent": USER_AGENT}
# A page view renders sponsored products first, then most reach 1 px and many become viewable.
BATCH_EVENTS = (
    "ian.sponsored_product.begin_to_render_viewport",
    "ian.sponsored_product.1px_in_viewport",
    "ian.sponsored_product.viewable_in_viewport",
)


def sponsored_product(event: str, position: int, page_view_id: str) -> dict[str, Any]:
    """One sponsored-product event of the traffic model; event_id is a hole."""
    ad = ad_fields("sponsored_product", f"bench-tracking-{position}", str(1000 + position),
                   position, organic_position=position + 3, block_number=1)
    return ad_event(event, "sponsored_product", ad, user_id="bench-user-42",
                    sent_at="2026-11-22T17:15:30+00:00", page_view_id=page_view_id,
                    record_version="999",  # track doc: 999 for testing events
                    event_id=HOLE)


def body_template(events: int) -> list[str]:
    """The beacon's JSON split at its event_id holes: `events + 1` fragments."""
    page_view_id = "3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
    items = [
        sponsored_product(BATCH_EVENTS[i % len(BATCH_EVENTS)], i + 1, page_view_id)
        for i in range(events)
    ]
    return beacon_body(items).decode().split(HOLE)


def fill(fragments: Sequence[str]) -> bytes:
    """A body with fresh uuid4 event_ids in its holes."""
    parts = [fragments[0]]
    for fragment in fragments[1:]:
        parts.append(str(uuid.uuid4()))
        parts.append(fragment)
    return "".join(parts).encode()


def lua_string(text: str) -> str:
    """A Lua long-bracket-free string literal (JSON has no control characters here)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


@dataclass(frozen=True)
class Script:
    """What one wrk run sends and how."""

    events: int = 1  # events per beacon
    # mean wait after each answer before the next request (0: as fast as possible); see THINK
    delay_ms: int = 0
    verify: bool = False  # count answers by status and `accepted` (slower: per-answer Lua)
    run_id: str = ""  # 8 hex digits, unique per run; random when empty
    static: bool = False  # one fixed body, built once by wrk: the cheapest load wrk can make


DONE = """
function done(summary, latency, requests)
  local ok, accepted, other = 0, 0, 0
  for _, t in ipairs(threads) do
    ok = ok + (t:get("n_ok") or 0)
    accepted = accepted + (t:get("n_accepted") or 0)
    other = other + (t:get("n_other") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,'
    .. '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
    .. '"max_us":%d,"mean_us":%.1f,"verified_202":%d,"verified_accepted":%d,'
    .. '"verified_other":%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, ok, accepted, other))
end
"""

THREADS = """
threads = {}
local next_tid = 1
function setup(thread)
  thread:set("bench_tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end
"""

STATIC = """
wrk.method, wrk.path, wrk.headers = "POST", PATH, HEADERS
wrk.body = table.concat(PARTS, "00000000-0000-4000-8000-000000000000")
"""

UNIQUE = """
local counter = 0
local function event_id()
  counter = counter + 1
  return string.format("%s-%04x-4000-8000-%012x", RUN, bench_tid % 65536, counter)
end

function request()
  local out = { PARTS[1] }
  for i = 2, #PARTS do
    out[#out + 1] = event_id()
    out[#out + 1] = PARTS[i]
  end
  return wrk.format("POST", PATH, HEADERS, table.concat(out))
end
"""

# The wait after each answer is drawn from an exponential distribution (a shopper's
# think time), so each connection's requests are a Poisson stream. A fixed wait
# would lock the connections in step: every answer of one group commit would
# come back together and, one wait later, arrive together again as a burst.
THINK = """
math.randomseed(os.time() + (bench_tid or 0))
function delay()
  return math.floor(-MEAN_DELAY_MS * math.log(1 - math.random()) + 0.5)
end
"""

VERIFY = """
n_ok, n_accepted, n_other = 0, 0, 0
function response(status, headers, body)
  if status == 202 then
    n_ok = n_ok + 1
    local a = tonumber(string.match(body, '"accepted":%s*(%d+)'))
    if a and a > 0 then n_accepted = n_accepted + 1 end
  else
    n_other = n_other + 1
  end
end
"""


def lua_script(script: Script) -> str:
    run_id = script.run_id or secrets.token_hex(4)
    parts = ", ".join(lua_string(part) for part in body_template(script.events))
    headers = ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in HEADERS.items())
    lines = [
        "-- generated by loadtests/bench_lua.py: POST unique event_ids as text/plain beacons",
        f"RUN = {lua_string(run_id)}",
        f"PATH = {lua_string(PATH)}",
        f"HEADERS = {{ {headers} }}",
        f"PARTS = {{ {parts} }}",
        THREADS,
        STATIC if script.static else UNIQUE,
    ]
    if script.delay_ms > 0:
        lines += [f"MEAN_DELAY_MS = {script.delay_ms}", THINK]
    if script.verify:
        lines.append(VERIFY)
    lines.append(DONE)
    return "\n".join(lines)


def parse_wrk(output: str) -> dict[str, float]:
    """The figures `done` printed, with requests/s added."""
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            figures: dict[str, float] = json.loads(line.removeprefix("BENCH_JSON "))
            seconds = figures["duration_us"] / 1e6
            figures["rps"] = figures["requests"] / seconds if seconds else 0.0
            return figures
    raise ValueError(f"wrk printed no BENCH_JSON line:\n{output[-2000:]}")
