"""Browser intake: `POST /v1/events` and its CORS preflight.

Plain ASGI: a Starlette middleware would spawn a task per request on the hot path
(docs/architecture.md, "How the code is written"). One request:
read the bounded body, parse it with orjson, then for each event enrich ->
validate -> dedupe, and put the new ones in the spool in one call. The answer
is sent only once the spool has them (202), and never waits on the upstream.
"""

from __future__ import annotations

from typing import Any

from gateway.asgi import (
    BodyTooLarge,
    Disconnected,
    cors_headers,
    headers_of,
    media_type,
    read_body,
    respond,
    respond_error,
    respond_errors,
)
from gateway.batch import Batch, Malformed, items_of
from gateway.dedupe import Dedupe
from gateway.enrich import ClientAddress, enrich, is_bot, received_at
from gateway.errors import ISSUES_CODE, invalid, issues
from gateway.metrics import Metrics
from gateway.settings import Settings
from gateway.spool import Spool, SpoolFull
from gateway.types import Receive, Scope, Send
from gateway.validate import validate_found

MAX_BODY = 64 * 1024  # docs/contract.md, "POST /v1/events": body over 64 KiB -> 413
MAX_BATCH = 100  # docs/contract.md, "POST /v1/events": {"events": [...]} with 1-100 events
CONTENT_TYPES = frozenset({"text/plain", "application/json"})  # text/plain: sendBeacon
PREFLIGHT_MAX_AGE = b"7200"  # Chromium caps Access-Control-Max-Age at 2 hours
# The request headers intake reads, picked in one pass.
WANTED = frozenset({b"origin", b"content-type", b"content-length", b"user-agent"})
# IAN_DROP_BOTS: a bot's event is rejected in the answer, never dropped silently.
BOT_DROPPED = invalid("is a bot user agent; not forwarded (IAN_DROP_BOTS)", "user_agent")


class Intake:
    def __init__(self, settings: Settings, dedupe: Dedupe, spool: Spool, metrics: Metrics) -> None:
        self._dedupe = dedupe
        self._spool = spool
        self._metrics = metrics
        self._address = ClientAddress(
            settings.trusted_proxies, settings.client_ip_header, settings.anonymize_ip
        )
        self._drop_bots = settings.drop_bots
        self._origins = frozenset(o.encode("latin-1") for o in settings.allowed_origins)
        self._preflight_headers = [
            (b"access-control-allow-methods", b"POST, OPTIONS"),
            (b"access-control-allow-headers", b"Content-Type"),
            (b"access-control-max-age", PREFLIGHT_MAX_AGE),
            (b"vary", b"Origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = headers_of(scope, WANTED)
        origin = headers.get(b"origin")
        if origin is not None and origin not in self._origins:
            message = f"origin {origin.decode('latin-1')} is not allowed (IAN_ALLOWED_ORIGINS)"
            return await self._answer_error(send, 403, message)
        cors = cors_headers(origin) if origin else []
        if scope["method"] == "OPTIONS":
            return await self._preflight(send, cors)
        if scope["method"] != "POST":
            return await self._answer_error(send, 405, "use POST", [(b"allow", b"POST, OPTIONS")])
        await self._post(scope, headers, receive, send, cors)

    async def _preflight(self, send: Send, cors: list[tuple[bytes, bytes]]) -> None:
        await send({"type": "http.response.start", "status": 204,
                    "headers": [*cors[:1], *self._preflight_headers]})
        await send({"type": "http.response.body", "body": b""})

    async def _post(self, scope: Scope, headers: dict[bytes, bytes], receive: Receive,
                    send: Send, cors: list[Any]) -> None:
        kind, charset = media_type(headers.get(b"content-type"))
        if kind not in CONTENT_TYPES or charset not in (None, "utf-8", "utf8"):
            message = "Content-Type must be text/plain or application/json (UTF-8)"
            return await self._answer_error(send, 415, message, cors)
        try:
            body = await read_body(receive, MAX_BODY, headers.get(b"content-length"))
            events = items_of(body, "events", MAX_BATCH)
        except Disconnected:
            return  # no one is left to answer; counted by the server (request_timeout.py)
        except BodyTooLarge:
            return await self._answer_error(send, 413, f"body over {MAX_BODY} bytes", cors)
        except Malformed:
            self._count_request(400)
            return await respond_errors(send, 400, [issues()], cors)
        try:
            user_agent = headers.get(b"user-agent", b"").decode("latin-1")
            batch = await self.accept(scope, user_agent, events)
        except SpoolFull as full:
            retry = [(b"retry-after", str(full.retry_after).encode())]
            message = "the gateway cannot take more events now; retry later"
            return await self._answer_error(send, 503, message, [*cors, *retry])
        self._count_request(batch.status)
        await respond(send, batch.status, batch.answer(), cors)

    async def accept(self, scope: Scope, user_agent: str, events: list[Any]) -> Batch:
        """enrich -> validate -> dedupe each event, then spool the new ones together."""
        user_ip = self._address.resolve(scope)
        bot = is_bot(user_agent)
        if bot:
            action = "dropped" if self._drop_bots else "forwarded"
            self._metrics.child(self._metrics.bots, action).inc(len(events))
        batch = Batch("track", self._dedupe, user_agent)
        for index, event in enumerate(events):
            found = enrich(event, user_agent, user_ip, received_at)
            errors = validate_found(event, found)
            if not errors and bot and self._drop_bots:
                errors = [BOT_DROPPED]
            if errors:
                batch.reject(index, errors)
                continue
            assert found is not None, "a valid event has exactly one *_data object"
            # validation proved the event_id a UUID; UUIDs compare case-insensitively
            batch.add(index, event, str(found.data["event_id"]).lower())
        await batch.store(self._spool)
        batch.count(self._metrics)
        return batch

    def _count_request(self, status: int) -> None:
        self._metrics.child(self._metrics.requests, "events", str(status)).inc()

    async def _answer_error(
        self, send: Send, status: int, message: str, headers: list[Any] | None = None
    ) -> None:
        self._count_request(status)
        await respond_error(send, status, message, ISSUES_CODE, headers or [])

