"""The benchmark harness: the gateway against same-run baselines, in one command.

`loadtests/bench` (or `python3 loadtests/bench`) starts, on 127.0.0.1 only:
an nginx upstream stub that counts what it receives, the baselines (nginx's
fixed 200, a bare uvicorn ASGI app, a bare aiohttp forwarding loop) and
`ian-gateway serve --workers 1` fresh for each gateway measurement, drives
them with wrk for fixed durations, prints absolute figures with the ratios
next to the issue's targets, and writes `loadtests/results/<time>-<sha>.json`.
Every process it starts is stopped at the end, on Ctrl-C and on errors too.

CPU pinning (default on 2+ CPUs): the server under test (nginx ceiling, bare
ASGI, bare forwarder, gateway) runs alone on the second CPU; wrk, this
harness's own client and the upstream stub share the first. Load generator and
server then do not steal each other's core, so runs are steadier and a ratio
compares servers that had the same single core. `--no-pin` lets the kernel place them.

The field section (`--only field` runs it alone) measures what a retailer's
server sees: an nginx stub over TLS, with a throwaway CA made for the run, that
answers after 40 ms (`bench_stub.field_conf`), the bare aiohttp and bare
pyreqwest loops at 512 in flight against it, and the gateway at its default
settings (only the upstream, a token and `IAN_UPSTREAM_CA` set).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from loadtests import bench_profile, bench_report, bench_stub, throwaway_ca
from loadtests.bench_e2e import Driver
from loadtests.bench_lua import PATH, Script, lua_script, parse_wrk
from loadtests.bench_procs import Procs
from tests.support import free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TOOLS = {"nginx": "nginx", "wrk": "wrk"}  # command -> Debian package
ECHO_PACKAGE = "libnginx-mod-http-echo"  # the field stub's echo_sleep
SECTIONS = ("loopback", "field")
FIELD_IN_FLIGHT = 512  # the bare loops' requests in flight against the field stub


@dataclass(frozen=True)
class Options:
    duration: float
    warmup: float
    connections: int
    pin: bool
    gateway: bool
    env: Mapping[str, str]
    profile: bool = False
    sections: tuple[str, ...] = SECTIONS


@dataclass(frozen=True)
class Step:
    section: str  # where in the results: baselines, gateway, memory
    key: str
    label: str
    run: Callable[[], Any]


@dataclass(frozen=True)
class Cpus:
    load: str | None  # wrk, this harness, the upstream stub
    server: str | None  # the server under test

    @classmethod
    def plan(cls, pin: bool) -> Cpus:
        available = sorted(os.sched_getaffinity(0))
        if not pin or len(available) < 2:
            return cls(None, None)
        return cls(str(available[0]), str(available[1]))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ensure_tools() -> None:
    """nginx and wrk from Debian, installed with apt-get when missing."""
    missing = [package for command, package in TOOLS.items() if shutil.which(command) is None]
    if not Path(bench_stub.ECHO_MODULE).exists():
        missing.append(ECHO_PACKAGE)
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"bench: install {' '.join(missing)} (apt-get install -y ...)")
    log(f"installing {' '.join(missing)} with apt-get")
    quiet = {"DEBIAN_FRONTEND": "noninteractive", **os.environ}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=quiet)
    subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, env=quiet)


def gateway_available() -> bool:
    probe = subprocess.run([sys.executable, "-m", "gateway", "serve", "--help"], cwd=ROOT,
                           capture_output=True)
    return probe.returncode == 0


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


class Bench:
    """One run: the processes, the measurements, the raw results."""

    def __init__(self, options: Options, procs: Procs, workdir: Path, cpus: Cpus) -> None:
        self.options = options
        self.procs = procs
        self.workdir = workdir
        self.cpus = cpus
        self.stub_dir = workdir / "stub"
        self.stub_url = ""
        self.field_dir = workdir / "field-stub"
        self.field_url = ""
        self.tls: throwaway_ca.Tls | None = None
        self._serial = 0
        self.gateway_pid: int | None = None
        self.intake_max = 0.0  # 1-event requests/s, once measured

    # -- wrk ---------------------------------------------------------------------------------

    def wrk(self, url: str, script: Script, connections: int, seconds: float) -> dict[str, float]:
        self._serial += 1
        path = self.workdir / f"wrk-{self._serial}.lua"
        path.write_text(lua_script(script))
        argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                "--timeout", "5s", "-s", str(path), url]
        if self.cpus.load:
            argv = ["taskset", "-c", self.cpus.load, *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        return parse_wrk(done.stdout + done.stderr)

    def measure(self, url: str, script: Script, connections: int | None = None,
                profile_as: str | None = None) -> dict[str, Any]:
        """A warm-up run, thrown away, then the measured run (sampled by py-spy if asked)."""
        connections = connections or self.options.connections
        if self.options.warmup > 0:
            self.wrk(url, script, connections, self.options.warmup)
        recording = self.record(profile_as, self.options.duration - 1)
        figures: dict[str, Any] = self.wrk(url, script, connections, self.options.duration)
        if recording is not None:
            figures["profile"] = recording.finish()
        return figures

    def record(self, name: str | None, seconds: float) -> bench_profile.Recording | None:
        if not (name and self.options.profile and self.gateway_pid):
            return None
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        out = bench_report.RESULTS / "profiles" / f"{stamp}-{name}.pyspy.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        return bench_profile.Recording(self.gateway_pid, seconds, out)

    # -- the upstream stub and the baselines --------------------------------------------------

    def start_stub(self) -> None:
        port = free_port()
        conf = bench_stub.prepare(self.stub_dir, bench_stub.stub_conf(self.stub_dir, port))
        self.procs.start("stub", bench_stub.nginx_argv(conf), self.cpus.load, port=port)
        self.stub_url = f"http://127.0.0.1:{port}"

    def start_field_stub(self) -> None:
        self.tls = throwaway_ca.make(self.workdir / "tls", "ian-bench")
        port = free_port()
        conf = bench_stub.field_conf(self.field_dir, port, self.tls.cert, self.tls.key)
        self.procs.start("field-stub", bench_stub.nginx_argv(
            bench_stub.prepare(self.field_dir, conf)), self.cpus.load, port=port)
        self.field_url = f"https://127.0.0.1:{port}"

    def nginx_ceiling(self) -> dict[str, float]:
        port, workdir = free_port(), self.workdir / "ceiling"
        conf = bench_stub.prepare(workdir, bench_stub.ceiling_conf(workdir, port))
        proc = self.procs.start("ceiling", bench_stub.nginx_argv(conf), self.cpus.server,
                                port=port)
        try:
            # wrk's cheapest load (one fixed body): the ceiling is nginx's, not wrk's Lua
            return self.measure(f"http://127.0.0.1:{port}{PATH}", Script(events=1, static=True))
        finally:
            self.procs.stop(proc)

    def bare_asgi(self) -> dict[str, float]:
        return self.uvicorn_app("bare-asgi", "bare_asgi:app", lifespan="off")

    def intake_without_spool(self) -> dict[str, float]:
        """For information: the gateway's intake with a spool that stores nothing."""
        return self.uvicorn_app("intake-without-spool", "intake_without_spool:app",
                                lifespan="on")

    def uvicorn_app(self, name: str, app: str, lifespan: str) -> dict[str, float]:
        """1-event beacons against `app` (in loadtests/) under uvicorn as `serve` runs it."""
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", app, "--app-dir", str(HERE),
                "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
                "--http", "httptools", "--workers", "1", "--no-access-log",
                "--log-level", "warning", "--lifespan", lifespan]
        proc = self.procs.start(name, argv, self.cpus.server, port=port, cwd=ROOT)
        try:
            return busy(proc.pid, lambda: self.measure(f"http://127.0.0.1:{port}{PATH}",
                                                       Script(events=1)))
        finally:
            self.procs.stop(proc)

    def bare_aiohttp(self) -> dict[str, float]:
        return self.bare_loop("bare-aiohttp", f"{self.stub_url}/v2/ian/track")

    def field_bare(self, client: str) -> dict[str, float]:
        assert self.tls is not None, "start_field_stub() first"
        # pyreqwest's loop over HTTP/1.1, one connection per request in flight: over HTTP/2
        # it would share one connection, capped by the stub's 128 streams at 3,200/s (40 ms),
        # a ceiling of the stub's, not of the client.
        http1 = ("--http1",) if client == "pyreqwest" else ()
        return self.bare_loop(f"field-bare-{client}", f"{self.field_url}/v2/ian/track",
                              "--client", client, "--ca", str(self.tls.ca), *http1,
                              concurrency=FIELD_IN_FLIGHT)

    def bare_loop(self, name: str, url: str, *extra: str, concurrency: int = 64
                  ) -> dict[str, float]:
        """`bare_forward.py` on the server's core; its JSON line, with its share of the core."""
        argv = [sys.executable, "-m", "loadtests.bare_forward", url,
                "--concurrency", str(concurrency), "--warmup", str(self.options.warmup),
                "--duration", str(self.options.duration), *extra]
        proc = self.procs.start(name, argv, self.cpus.server, cwd=ROOT)
        try:
            proc.wait(self.options.warmup + self.options.duration + 60)
        finally:
            self.procs.stop(proc)
        last = self.procs.tail(name, 1)
        try:
            result: dict[str, float] = json.loads(last)
        except ValueError:
            raise RuntimeError(f"{name} failed:\n{last}") from None
        if result.get("seconds") and "cpu_s" in result:
            result["cpu_busy"] = result["cpu_s"] / result["seconds"]
        return result

    # -- the gateway ---------------------------------------------------------------------------

    def start_gateway(self, name: str, forwarder: bool, field: bool = False
                      ) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        upstream: dict[str, str] = {"IAN_UPSTREAM_URL": self.stub_url}
        if field:
            assert self.tls is not None, "start_field_stub() first"
            upstream = {"IAN_UPSTREAM_URL": self.field_url, "IAN_UPSTREAM_CA": str(self.tls.ca)}
        env = {
            **upstream,
            "IAN_ACCESS_TOKEN": "bench",
            "IAN_SPOOL": f"sqlite:///{self.workdir / name}.db",
            "IAN_SPOOL_MAX": "100000000",  # the bench measures speed, not back-pressure
            "IAN_FORWARDER": "true" if forwarder else "false",
            "IAN_RATE_LIMIT": "0",  # one loopback client would be rate limited
            **self.options.env,
        }
        argv = [sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1",
                "--port", str(port), "--workers", "1"]
        proc = self.procs.start(name, argv, self.cpus.server, env=env, port=port, cwd=ROOT)
        self.gateway_pid = proc.pid
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        return proc, url

    def with_gateway(self, name: str, forwarder: bool, step: Callable[[str], Any],
                     field: bool = False) -> Any:
        """`step(url)` against a fresh gateway (empty spool, empty dedupe), stopped after."""
        proc, url = self.start_gateway(name, forwarder, field)
        try:
            result = busy(proc.pid, lambda: step(url))
            if isinstance(result, dict):
                result["metrics"] = scrape(url)
            return result
        finally:
            self.procs.stop(proc)

    def verify(self, url: str) -> dict[str, Any]:
        """A sample of both beacon shapes must answer 202 with accepted > 0."""
        checks = {}
        for events in (1, 20):
            figures = self.wrk(url + PATH, Script(events=events, verify=True), 2, 1)
            ok = figures["requests"] > 0 and figures["verified_accepted"] == figures["requests"]
            checks[f"events_{events}"] = {**figures, "ok": ok}
            if not ok:
                log(f"  WARNING: {events}-event beacons not all 202 with accepted>0: {figures}")
        return checks

    def intake_1(self, url: str) -> dict[str, Any]:
        verified = self.verify(url)
        figures = self.measure(url + PATH, Script(events=1), profile_as="intake-1")
        return {**figures, "verify": verified}

    def intake_20(self, url: str) -> dict[str, float]:
        return self.measure(url + PATH, Script(events=20))

    def end_to_end(self, url: str) -> dict[str, Any]:
        return self.drive(url, self.stub_dir, "e2e")

    def field_end_to_end(self, url: str) -> dict[str, Any]:
        return self.drive(url, self.field_dir, "field-e2e")

    def drive(self, url: str, stub_dir: Path, name: str) -> dict[str, Any]:
        driver = Driver(url, lambda: bench_stub.received(stub_dir))
        settle = max(5.0, self.options.warmup)
        recording = self.record(name, settle + self.options.duration - 1)
        result = asyncio.run(driver.run(settle=settle, duration=self.options.duration))
        if recording is not None:
            result["profile"] = recording.finish()
        return result

    def steps(self, gateway: bool) -> list[Step]:
        """Every measurement in order. Each ratio's baseline runs right before its gateway
        figure, so a neighbour's load that comes and goes hits both alike."""
        steps: list[Step] = []
        if "loopback" in self.options.sections:
            steps += self.loopback_steps(gateway)
        if "field" in self.options.sections:
            steps += self.field_steps(gateway)
        return steps

    def field_steps(self, gateway: bool) -> list[Step]:
        steps = [
            Step("field", "bare_aiohttp", f"field: bare aiohttp, TLS, {FIELD_IN_FLIGHT} in flight",
                 lambda: self.field_bare("aiohttp")),
            Step("field", "bare_pyreqwest",
                 f"field: bare pyreqwest, TLS, {FIELD_IN_FLIGHT} in flight",
                 lambda: self.field_bare("pyreqwest")),
        ]
        if gateway:
            steps.append(Step("field", "e2e", "field: gateway end-to-end, default settings",
                              lambda: self.with_gateway("gw-field", True, self.field_end_to_end,
                                                        field=True)))
        return steps

    def loopback_steps(self, gateway: bool) -> list[Step]:
        half = self.half_rate
        steps = [
            Step("baselines", "nginx", "nginx fixed 200 (ceiling)", self.nginx_ceiling),
            Step("baselines", "bare_asgi", "bare ASGI", self.bare_asgi),
        ]
        if gateway:
            steps += [
                Step("gateway", "intake_1", "gateway intake, 1-event beacons (forwarder off)",
                     lambda: self.with_gateway("gw-intake-1", False, self.intake_1)),
                Step("gateway", "intake_1_without_spool",
                     "the same, a spool that stores nothing (information)",
                     self.intake_without_spool),
                Step("gateway", "intake_20", "gateway intake, 20-event beacons (forwarder off)",
                     lambda: self.with_gateway("gw-intake-20", False, self.intake_20)),
                Step("gateway", "half_rate", "gateway intake at half max (forwarder off)",
                     lambda: self.with_gateway("gw-half", False, half)),
                Step("gateway", "half_rate_forwarder", "gateway intake at half max (forwarder on)",
                     lambda: self.with_gateway("gw-half-fwd", True, half)),
            ]
        steps.append(Step("baselines", "bare_aiohttp", "bare aiohttp forwarding to the stub",
                          self.bare_aiohttp))
        if gateway:
            steps.append(Step("gateway", "e2e", "gateway end-to-end, spool depth held still",
                              lambda: self.with_gateway("gw-e2e", True, self.end_to_end)))
        steps.append(Step("memory", "", "event_id memory (dedupe + spool), 1M ids", self.memory))
        return steps

    def half_rate(self, url: str) -> dict[str, float]:
        """wrk has no constant rate; see `paced`."""
        return paced(self, url + PATH, self.intake_max / 2)

    def run_steps(self, results: dict[str, Any], gateway: bool) -> None:
        for step in self.steps(gateway):
            log(f"{step.label} ...")
            try:
                figures = step.run()
            except Exception as exc:  # one failed step must not cost the others' figures
                log(f"  FAILED: {exc}")
                figures = {"error": str(exc)}
            if step.key:
                results[step.section] = {**(results.get(step.section) or {}), step.key: figures}
            else:
                results[step.section] = figures
            if step.key == "intake_1":
                self.intake_max = figures.get("rps", 0.0)
            log(f"  {headline(figures)}")

    def memory(self) -> dict[str, Any]:
        done = subprocess.run([sys.executable, str(HERE / "bench_memory.py")], cwd=ROOT,
                              capture_output=True, text=True, timeout=600, check=True)
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result


def busy(pid: int, step: Callable[[], Any]) -> Any:
    """`step()`, with `cpu_busy` added to its figures: the share of its core process `pid`
    used over the step (warm-up included), and `cpu_threads`, that share by thread."""
    started, cpu, threads = time.monotonic(), cpu_seconds(pid), thread_seconds(pid)
    result = step()
    if isinstance(result, dict):
        elapsed = time.monotonic() - started
        result["cpu_busy"] = (cpu_seconds(pid) - cpu) / elapsed
        result["cpu_threads"] = {kind: (seconds - threads.get(kind, 0.0)) / elapsed
                                 for kind, seconds in thread_seconds(pid).items()}
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (proc(5): stat fields 14, 15)."""
    return _stat_seconds(Path(f"/proc/{pid}/stat").read_text())


def thread_seconds(pid: int) -> dict[str, float]:
    """CPU time by thread: the event loop's (`main`), pyreqwest's Rust runtime (`pyreqwest`,
    its TLS and HTTP/2), and the `other` threads (the SQLite spool's writer, executors)."""
    seconds: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread has ended
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        kind = "main" if task.name == str(pid) else "pyreqwest" if name == "pyreqwest" else "other"
        seconds[kind] = seconds.get(kind, 0.0) + _stat_seconds(stat)
    return seconds


def _stat_seconds(stat: str) -> float:
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def paced(bench: Bench, url: str, target_rps: float) -> dict[str, float]:
    """Intake latency at about `target_rps`, with wrk's `delay()`.

    wrk (unlike wrk2) has no constant-rate mode, but its Lua `delay()` makes
    each connection wait after every answer: c connections with a mean wait d
    give c / (d + L) requests/s, L the time a request takes. The wait is drawn
    from an exponential distribution (bench_lua.THINK), so arrivals are close
    to a Poisson stream, as from many independent shoppers; a fixed wait would
    march the connections in step and measure bursts of c requests instead. A
    3 s calibration run (also the warm-up) measures L at about the target rate;
    the measured run then uses c = target * (d + L) connections, d about 20 ms.
    Below saturation wrk's latency is not queueing behind its own backlog; the
    achieved rate is reported.
    """
    if target_rps <= 0:
        raise ValueError("no maximum rate to take half of: the 1-event intake run failed")
    connections = pace_connections(target_rps, DELAY_MS, 0.0)
    calibration = bench.wrk(url, Script(events=1, delay_ms=DELAY_MS), connections, 3)
    took = request_time(connections, calibration["rps"], DELAY_MS)
    connections = pace_connections(target_rps, DELAY_MS, took)
    delay = max(1, round(connections * 1000 / target_rps - took * 1000))
    figures = bench.wrk(url, Script(events=1, delay_ms=delay), connections,
                        bench.options.duration)
    return {**figures, "target_rps": target_rps, "connections": connections, "delay_ms": delay,
            "calibrated_request_s": took}


DELAY_MS = 20


def request_time(connections: int, rps: float, delay_ms: int) -> float:
    """Seconds one request took beyond the delay, from a paced run's rate."""
    return max(0.0, connections / max(rps, 1.0) - delay_ms / 1000)


def pace_connections(target_rps: float, delay_ms: int, request_s: float) -> int:
    """Connections that reach `target_rps` when each waits `delay_ms` and a request takes
    `request_s`."""
    return max(4, min(1024, math.ceil(target_rps * (delay_ms / 1000 + request_s))))


def headline(figures: Mapping[str, Any]) -> str:
    """One line for the progress log."""
    if "error" in figures:
        return f"error: {figures['error']}"
    busy = f", gateway cpu {figures['cpu_busy']:.0%}" if "cpu_busy" in figures else ""
    if "received_events_per_s" in figures:
        return (f"{figures['received_events_per_s']:,.0f} events/s, stable {figures['stable']}"
                f"{busy}")
    if "bytes_per_key_rss" in figures:
        return f"{figures['bytes_per_key_rss']:,.0f} bytes per event_id"
    rps = f"{figures.get('rps', 0):,.0f} req/s, p99 {figures.get('p99_us', 0) / 1000:,.2f} ms"
    return rps + busy


def wait_ready(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _ = http_get(url + "/readyz")
        if status == 200:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url}/readyz did not answer 200 in {timeout:g}s")


def scrape(url: str) -> dict[str, float]:
    """The gateway's own counters after a step: proof the events went where they should."""
    status, text = http_get(url + "/metrics")
    if status != 200:
        return {}
    wanted = ("ian_intake_events_total", "ian_spool_depth", "ian_upstream_responses_total",
              "ian_dead_letters_total", "ian_forward_retries_total", "ian_forward_")
    found: dict[str, float] = {}
    for line in text.decode(errors="replace").splitlines():
        if line.startswith(wanted):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def machine(cpus: Cpus) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "loadavg_before": os.getloadavg(),
        "pinning": {"load_generator_and_stub": cpus.load, "server_under_test": cpus.server},
        "python": sys.version.split()[0],
    }


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="loadtests/bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections at max rate")
    parser.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    parser.add_argument("--baselines-only", action="store_true", help="skip the gateway")
    parser.add_argument("--profile", action="store_true",
                        help="sample the gateway with py-spy (intake and end-to-end runs)")
    parser.add_argument("--only", choices=SECTIONS, help="run one section: loopback or field")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the gateway (repeatable)")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    if args.profile and not bench_profile.available():
        parser.error("--profile needs py-spy: pip install py-spy")
    sections = (args.only,) if args.only else SECTIONS
    return Options(args.duration, args.warmup, args.connections, not args.no_pin,
                   not args.baselines_only, env, args.profile, sections)


def _terminate(signum: int, _: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every `finally`: children are stopped


def run(options: Options) -> dict[str, Any]:
    cpus = Cpus.plan(options.pin)
    if cpus.load is not None:
        os.sched_setaffinity(0, {int(cpus.load)})  # this harness's own client shares wrk's CPU
    results: dict[str, Any] = {
        "git_sha": bench_report.git_sha(ROOT),
        "uncommitted": bench_report.uncommitted(ROOT),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(cpus),
        "options": {"duration": options.duration, "warmup": options.warmup,
                    "connections": options.connections, "env": dict(options.env),
                    "sections": list(options.sections)},
    }
    with tempfile.TemporaryDirectory(prefix="ian-bench-") as tmp, Procs(Path(tmp)) as procs:
        bench = Bench(options, procs, Path(tmp), cpus)
        bench.start_stub()
        if "field" in options.sections:
            bench.start_field_stub()
        gateway = options.gateway and gateway_available()
        if options.gateway and not gateway:
            log("`python -m gateway serve --help` fails: gateway not measured")
        results["gateway"] = None
        bench.run_steps(results, gateway)
    results["machine"]["loadavg_after"] = os.getloadavg()
    return results


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    # Ctrl-C too, even when started in the background of a script (where SIGINT is ignored)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _terminate)
    ensure_tools()
    started = time.monotonic()
    results = run(options)
    results["seconds"] = round(time.monotonic() - started, 1)
    print(bench_report.render(results))
    path = bench_report.write(results)
    print(f"\n{results['seconds']:.0f} s; results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
