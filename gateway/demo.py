"""`ian-gateway demo`: gateway, Connect sandbox and a demo storefront in one process.

Two uvicorn servers share one asyncio loop: the gateway on `--port` (with the
storefront's `/` and `/demo/*` in front of it, so the page, `/ian.js` and
`/v1/events` share one origin, as on a retailer's domain) and the sandbox on
`--sandbox-port` (default port + 1), always on loopback. The gateway forwards to
the sandbox with OAuth client credentials, as it would to Instacart. Embedded
defaults: nothing to configure, nothing left behind (the spool lives in a
temporary directory).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import tempfile
from collections.abc import Iterator, Mapping, MutableMapping
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.settings import Settings
from gateway.types import Receive, Scope, Send

DEMO_DIR = Path(str(resources.files("gateway").joinpath("demo")))
SANDBOX_CLIENT_ID = "sandbox-client"
SANDBOX_CLIENT_SECRET = "sandbox-secret"
DEFAULT_PORT = 8000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address of the gateway and storefront (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port of the gateway and storefront (default {DEFAULT_PORT})")
    parser.add_argument("--sandbox-port", type=int, default=None,
                        help="port of the Connect sandbox, on 127.0.0.1 (default: port + 1)")
    parser.add_argument("--log-level", default="warning",
                        choices=["critical", "error", "warning", "info", "debug"])


def demo_settings(port: int, sandbox_url: str, spool_dir: str,
                  environ: Mapping[str, str]) -> Settings:
    """The gateway's settings: IAN_* variables apply, but the upstream is the sandbox."""
    base = Settings.from_env(environ)
    origins = (f"http://127.0.0.1:{port}", f"http://localhost:{port}", *base.allowed_origins)
    spool = base.spool if "IAN_SPOOL" in environ else f"sqlite:///{spool_dir}/ian-demo-spool.db"
    return base.with_(
        upstream_url=sandbox_url,
        access_token=None,
        client_id=SANDBOX_CLIENT_ID,
        client_secret=SANDBOX_CLIENT_SECRET,
        allowed_origins=origins,
        spool=spool,
        forwarder=True,
        drop_bots=False,  # the browser tests are HeadlessChrome
    )


class Storefront:
    """`/` and `/demo/*` are the storefront; every other path goes to the gateway."""

    def __init__(self, gateway: Any, sandbox_url: str) -> None:
        self.gateway = gateway
        self.sandbox = httpx.AsyncClient(base_url=sandbox_url, timeout=5)
        self.routes = SafeHeaders(Starlette(routes=[
            Route("/", self.index, methods=["GET", "HEAD"]),
            Route("/demo/api/state", self.state, methods=["GET"]),
            Route("/demo/api/reset", self.reset, methods=["POST"]),
            Mount("/demo", StaticFiles(directory=DEMO_DIR)),
        ]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == "/" or path.startswith("/demo/")):
            await self.routes(scope, receive, send)
            return
        await self.gateway(scope, receive, send)

    async def index(self, _: Request) -> Response:
        return FileResponse(DEMO_DIR / "index.html", headers={"Cache-Control": "no-store"})

    async def state(self, request: Request) -> Response:
        """What the sandbox (standing in for Instacart) accepted since `offset`, and its counts."""
        offset = request.query_params.get("offset", "0")
        try:
            received = await self.sandbox.get("/_sandbox/received",
                                              params={"kind": "track", "offset": offset})
            stats = await self.sandbox.get("/_sandbox/stats")
        except httpx.HTTPError as exc:
            return JSONResponse({"error": f"sandbox unreachable: {exc}"}, status_code=502)
        return JSONResponse({"received": received.json(), "stats": stats.json()},
                            headers={"Cache-Control": "no-store"})

    async def reset(self, _: Request) -> Response:
        answer = await self.sandbox.post("/_sandbox/reset")
        return JSONResponse(answer.json(), status_code=answer.status_code)

    async def close(self) -> None:
        await self.sandbox.aclose()


# The storefront's pages: only their own scripts run, nothing frames them, no sniffing.
PAGE_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
     b"img-src 'self' data:; media-src 'self'; object-src 'none'; base-uri 'self'; "
     b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class SafeHeaders:
    """Adds PAGE_HEADERS to every answer of the wrapped app."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_safe(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *PAGE_HEADERS]
            await send(message)

        await self.app(scope, receive, send_safe)


class Server(uvicorn.Server):
    """A uvicorn server that leaves signals to `serve` (two servers share one process)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def server(app: Any, host: str, port: int, log_level: str) -> Server:
    return Server(uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                 lifespan="on", access_log=False, server_header=False))


async def started(srv: Server, task: asyncio.Task[None]) -> bool:
    while not srv.started:
        if task.done():
            return False
        await asyncio.sleep(0.02)
    return True


def banner(host: str, port: int, sandbox_port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = f"http://{shown}:{port}"
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    return "\n".join([
        "ian-gateway demo",
        f"  storefront  {base}/",
        f"  gateway     {base}/v1/events   snippet {base}/ian.js   health {base}/healthz",
        f"  sandbox     {sandbox}/_sandbox/received?kind=track   {sandbox}/_sandbox/stats",
        "Ctrl-C stops everything.",
    ])


async def serve(args: argparse.Namespace, spool_dir: str) -> int:
    from gateway.app import create_app
    from gateway.sandbox import create_sandbox

    sandbox_port = args.sandbox_port or args.port + 1
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    settings = demo_settings(args.port, sandbox_url, spool_dir, os.environ)  # ConfigError: cli
    gateway_app = create_app(settings)
    storefront = Storefront(gateway_app, sandbox_url)
    sandbox = server(create_sandbox(client_id=SANDBOX_CLIENT_ID,
                                    client_secret=SANDBOX_CLIENT_SECRET),
                     "127.0.0.1", sandbox_port, args.log_level)
    gateway = server(storefront, args.host, args.port, args.log_level)

    def stop() -> None:
        gateway.should_exit = True

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    # The sandbox first: the gateway's forwarder asks it for a token as soon as it starts.
    sandbox_task = asyncio.create_task(sandbox.serve())
    gateway_task: asyncio.Task[None] | None = None
    try:
        if not await started(sandbox, sandbox_task):
            return 1
        gateway_task = asyncio.create_task(gateway.serve())
        if not await started(gateway, gateway_task):
            return 1
        print(banner(args.host, args.port, sandbox_port), flush=True)
        await gateway_task
        return 0
    finally:
        # The gateway stops first so its forwarder drains into a sandbox still listening.
        gateway.should_exit = True
        if gateway_task is not None:
            await asyncio.gather(gateway_task, return_exceptions=True)
        sandbox.should_exit = True
        await asyncio.gather(sandbox_task, return_exceptions=True)
        await storefront.close()


def run(args: argparse.Namespace) -> int:
    # the live panel polls the sandbox every second: keep those requests out of the console
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="ian-demo-") as spool_dir:
        try:
            return asyncio.run(serve(args, spool_dir))
        except KeyboardInterrupt:
            return 0
