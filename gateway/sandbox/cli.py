"""`ian-gateway sandbox`: the factory, its flags and the server.

Credentials come from `IAN_SANDBOX_CLIENT_ID` / `IAN_SANDBOX_CLIENT_SECRET`
(README, "The sandbox"), defaults `sandbox-client` / `sandbox-secret`. Bad flags fail before
the port opens, naming the flag.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from gateway.sandbox.app import Sandbox
from gateway.sandbox.auth import TOKEN_TTL
from gateway.sandbox.faults import FaultConfig, FaultError
from gateway.sandbox.store import MAX_RECORDS

CLIENT_ID_ENV = "IAN_SANDBOX_CLIENT_ID"
CLIENT_SECRET_ENV = "IAN_SANDBOX_CLIENT_SECRET"
DEFAULT_CLIENT_ID = "sandbox-client"
DEFAULT_CLIENT_SECRET = "sandbox-secret"


def create_sandbox(client_id: str | None = None, client_secret: str | None = None,
                   token_ttl: float = TOKEN_TTL, faults: dict[str, Any] | None = None,
                   max_records: int = MAX_RECORDS) -> Sandbox:
    """A sandbox ASGI app. Credentials default to the environment, then to the defaults.

    `faults` takes the admin API's keys (`error_rate`, `status`, `latency_ms`, `outage`,
    `retry_after_s`, `drop_rate`, `seed`, `try_later_s`); the app's `store`, `tokens`, `faults`,
    `clock` and `orders` are its state, for in-process use. Past `max_records`
    accepted requests are still counted in the stats but no longer kept.
    """
    return Sandbox(
        client_id or os.environ.get(CLIENT_ID_ENV) or DEFAULT_CLIENT_ID,
        client_secret or os.environ.get(CLIENT_SECRET_ENV) or DEFAULT_CLIENT_SECRET,
        token_ttl,
        FaultConfig.from_json(faults or {}),
        max_records=max_records,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: the admin API has no token)")
    parser.add_argument("--port", type=int, default=8081, help="port (default 8081)")
    parser.add_argument("--token-ttl", type=float, default=TOKEN_TTL,
                        help="seconds a token lives (default 86400, as Instacart's)")
    parser.add_argument("--error-rate", type=float, default=0.0,
                        help="share of Connect calls answered with --fault-status")
    parser.add_argument("--fault-status", type=int, default=503,
                        help="status of injected failures (default 503)")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="latency added to every Connect call")
    parser.add_argument("--outage", action="store_true",
                        help="every Connect call fails with --fault-status")
    parser.add_argument("--retry-after", type=float, default=1.0, dest="retry_after_s",
                        help="Retry-After seconds on 429 and 503 (default 1)")
    parser.add_argument("--drop-rate", type=float, default=0.0,
                        help="share of Connect calls whose connection is closed unanswered")
    parser.add_argument("--fault-seed", type=int, default=None,
                        help="seed for the fault dice, for repeatable runs")
    parser.add_argument("--try-later", type=float, default=0.0, dest="try_later_s",
                        metavar="SECONDS",
                        help="creating a delivery order answers 400 2003 'try again later' "
                             "with this wait (document 002); 0: off")
    parser.add_argument("--max-records", type=int, default=MAX_RECORDS,
                        help="accepted requests kept for /_sandbox/received; later ones "
                             "are only counted (default 1000000)")
    parser.add_argument("--log-level", default="warning",
                        choices=["critical", "error", "warning", "info", "debug"],
                        help="log level (default warning)")


def faults_from(args: argparse.Namespace) -> dict[str, Any]:
    return {"error_rate": args.error_rate, "status": args.fault_status,
            "latency_ms": args.latency_ms, "outage": args.outage,
            "retry_after_s": args.retry_after_s, "drop_rate": args.drop_rate,
            "seed": args.fault_seed, "try_later_s": args.try_later_s}


def run(args: argparse.Namespace) -> int:
    """Serve the sandbox with uvicorn until interrupted; 2 on bad flags."""
    import uvicorn

    try:
        app = create_sandbox(token_ttl=args.token_ttl, faults=faults_from(args),
                             max_records=args.max_records)
    except (FaultError, ValueError) as exc:
        print(f"ian-gateway sandbox: {exc}", file=sys.stderr)
        return 2
    print(f"Instacart Connect sandbox on http://{args.host}:{args.port} "
          f"(admin API: http://{args.host}:{args.port}/_sandbox/stats)", file=sys.stderr,
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                access_log=False, lifespan="on")
    return 0
