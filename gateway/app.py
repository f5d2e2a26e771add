"""The gateway's ASGI application: the hot endpoints in plain ASGI, the rest in Starlette.

`create_app(settings)` builds every part once; the lifespan opens the spool,
the Connect client and the forwarder, and on shutdown stops them in reverse
order so requests in flight finish and the spool is flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.connect import Connect
from gateway.dedupe import Dedupe
from gateway.enrich import ClientAddress
from gateway.errors import ISSUES_CODE, error
from gateway.forward import Forwarder
from gateway.intake import Intake
from gateway.logs import RequestId, configure_logging
from gateway.metrics import CONTENT_TYPE, Metrics
from gateway.openapi import OpenAPI
from gateway.orders.intake import OrderIntake
from gateway.ratelimit import RateLimit
from gateway.request_timeout import STATE_KEY, RequestDeadline
from gateway.settings import ConfigError, Settings
from gateway.snippet import Snippet
from gateway.spool import Spool, open_spool
from gateway.status import Status
from gateway.types import Receive, Scope, Send

log = logging.getLogger("gateway")

EVENTS_PATH = "/v1/events"
# The cyclic GC's youngest generation, collected after this many container allocations
# instead of 700: a beacon's objects are freed by reference counting, so the frequent
# collections cost intake CPU and found little (docs/performance.md, "Settings chosen by
# measurement").
GC_YOUNG_THRESHOLD = 50_000


@dataclass
class Parts:
    """Everything one gateway process runs, built once."""

    settings: Settings
    metrics: Metrics
    dedupe: Dedupe
    spool: Spool
    connect: Connect | None
    forwarder: Forwarder | None


def build_parts(settings: Settings) -> Parts:
    metrics = Metrics()
    dedupe = Dedupe(settings.dedupe_ttl, settings.dedupe_max)
    spool = open_spool(
        settings.spool, settings.spool_max, settings.dedupe_ttl, settings.spool_lease
    )
    connect = forwarder = None
    if settings.forwarder:
        settings.require_upstream()
        connect = Connect(settings)
        forwarder = Forwarder(spool, connect, settings.forward_concurrency, metrics)
    return Parts(settings, metrics, dedupe, spool, connect, forwarder)


class Gateway:
    """Dispatches `/v1/events` straight to the intake; every other path goes to Starlette."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.intake = Intake(parts.settings, parts.dedupe, parts.spool, parts.metrics)
        self.snippet = Snippet()
        self.status = Status(parts.metrics, parts.spool)
        self.starlette = Starlette(routes=self._routes(), lifespan=self._lifespan,
                                   exception_handlers={HTTPException: http_error})
        self.app = self._middleware()

    def _middleware(self) -> RequestId:
        """RequestId outermost, so even a 429 carries its id; RateLimit only when configured."""
        s = self.parts.settings
        if s.rate_limit <= 0:
            return RequestId(self._dispatch)
        address = ClientAddress(s.trusted_proxies, s.client_ip_header)
        return RequestId(RateLimit(self._dispatch, s.rate_limit, s.rate_burst, address,
                                   self.parts.metrics, allowed_origins=s.allowed_origins))

    def _routes(self) -> list[Route]:
        p = self.parts
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/ian.js", self.snippet.latest, methods=["GET", "HEAD"]),
            Route("/ian.{version}.js", self.snippet.versioned, methods=["GET", "HEAD"]),
            Route("/status", self.status.page, methods=["GET"]),
            Route("/status.json", self.status.json, methods=["GET"]),
            Route("/openapi.json", OpenAPI().document, methods=["GET"]),
            # every method: OrderIntake answers the others 405 with the error object
            Route("/v1/orders", OrderIntake(p.settings, p.dedupe, p.spool, p.metrics)),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == EVENTS_PATH:
            await self.intake(scope, receive, send)
            return
        await self.starlette(scope, receive, send)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _: Starlette) -> AsyncIterator[dict[str, Any]]:
        p = self.parts
        await p.spool.start()
        if p.connect is not None and p.forwarder is not None:
            await p.connect.start()
            p.forwarder.start()
        self.status.start()
        log.info("gateway ready (pid %s, spool %s)", os.getpid(), p.settings.spool)
        try:
            # uvicorn hands its lifespan state to every connection (gateway/request_timeout.py)
            yield {STATE_KEY: RequestDeadline(p.settings.request_timeout, p.metrics)}
        finally:
            await self.status.stop()
            if p.forwarder is not None:
                await p.forwarder.stop()
            if p.connect is not None:
                await p.connect.close()
            await p.spool.close()
            log.info("gateway stopped")

    async def healthz(self, _: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, _: Request) -> Response:
        p = self.parts
        checks = {"spool": True, "forwarder": p.forwarder is None or p.forwarder.running}
        try:
            depth = await p.spool.depth()
        except Exception:
            checks["spool"] = False
            depth = -1
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks, "spool_depth": depth},
                            status_code=200 if ready else 503)

    async def metrics(self, _: Request) -> Response:
        p = self.parts
        p.metrics.spool_depth.set(await p.spool.depth())
        p.metrics.spool_oldest.set(await p.spool.oldest_age())
        return Response(p.metrics.render(), media_type=CONTENT_TYPE)


async def http_error(_: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 (an unknown path, a GET-only route) with Instacart's
    error object instead of its plain text: every 4xx carries it (docs/contract.md, "Errors")."""
    assert isinstance(exc, HTTPException)
    body = {"errors": [error(exc.detail, ISSUES_CODE)]}
    return JSONResponse(body, exc.status_code, headers=exc.headers)


async def forward_until_stopped(settings: Settings, stop: asyncio.Event) -> None:
    """The forwarder alone, on the spool `serve` fills (`ian-gateway forward`)."""
    tune_gc()
    parts = build_parts(settings.with_(forwarder=True))
    assert parts.connect is not None and parts.forwarder is not None
    await parts.spool.start()
    await parts.connect.start()
    parts.forwarder.start()
    log.info("forwarder ready (pid %s, spool %s)", os.getpid(), settings.spool)
    try:
        await stop.wait()
    finally:
        await parts.forwarder.stop()
        await parts.connect.close()
        await parts.spool.close()
        log.info("forwarder stopped")


def create_app(settings: Settings) -> Gateway:
    return Gateway(build_parts(settings))


def tune_gc() -> None:
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def create_app_from_env() -> Gateway:
    """uvicorn's factory for `serve --workers N`: each worker reads the same environment."""
    try:
        settings = Settings.from_env(os.environ)
        configure_logging(settings)
        tune_gc()
        return create_app(settings)
    except ConfigError as exc:
        raise SystemExit(f"ian-gateway: {exc}") from None
