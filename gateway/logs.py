"""Logging: JSON lines (or plain text), a request id per request, secrets never written.

`configure_logging(settings)` is called once per process, after uvicorn set up
its own loggers: every record, uvicorn's included, then goes through one
handler on stderr. `RequestId` (plain ASGI) gives each request an id, from a
sane incoming `X-Request-Id` or a new one, that every log line written while
the request runs carries, and returns it on the answer.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from gateway.settings import Settings
from gateway.types import ASGIApp, Message, Receive, Scope, Send

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None)

HEADER = b"x-request-id"
# An incoming id is echoed in headers and logs: only short, plain ids are believed.
SANE_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
# Anything that looks like a credential in a message: "Bearer <token>", "Basic <creds>".
CREDENTIALS = re.compile(r"\b(Bearer|Basic)\s+[^\s\"'\\,;]+", re.IGNORECASE)
REDACTED = "***"
# Secrets shorter than this are not searched for: "***" in place of every "a" helps nobody.
MIN_SECRET = 4
PLAIN = (str, int, float, bool, type(None))
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")

# The attributes every LogRecord has; anything else was passed as `extra=` and is logged.
# uvicorn's color_message repeats the message with terminal colour codes.
STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "request_id", "color_message"}


class Redactor:
    """Replaces the configured secrets and any bearer credential in a finished log line."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(sorted({s for s in secrets if len(s) >= MIN_SECRET},
                                     key=len, reverse=True))

    def __call__(self, line: str) -> str:
        for secret in self._secrets:
            if secret in line:
                line = line.replace(secret, REDACTED)
        return CREDENTIALS.sub(lambda m: f"{m.group(1)} {REDACTED}", line)


def secrets_of(settings: Settings) -> list[str]:
    """Every value in the settings that must never reach a log."""
    found = [settings.access_token, settings.client_secret, *settings.orders_api_keys]
    return [secret for secret in found if secret]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, extra fields."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            line["request_id"] = rid
        for key, value in vars(record).items():
            if key not in STANDARD:
                line[key] = value if isinstance(value, PLAIN) else str(value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # Redacted value by value, before encoding: a cut inside an escaped quote breaks JSON.
        redacted = {k: self._redact(v) if isinstance(v, str) else v for k, v in line.items()}
        return orjson.dumps(redacted).decode()


class TextFormatter(logging.Formatter):
    """`ts LEVEL logger [request id] message key=value ...` for a person at a terminal."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(rid)s %(message)s%(extras)s")
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        rid = request_id.get()
        record.rid = f" [{rid}]" if rid is not None else ""
        extras = [f" {k}={v!r}" for k, v in vars(record).items()
                  if k not in STANDARD and k not in ("rid", "extras")]
        record.extras = "".join(extras)
        return self._redact(super().format(record))


def formatter_for(settings: Settings) -> logging.Formatter:
    redact = Redactor(secrets_of(settings))
    if settings.log_format == "json":
        return JsonFormatter(redact)
    return TextFormatter(redact)


def configure_logging(settings: Settings, stream: TextIO | None = None,
                      level: int = logging.INFO) -> logging.Handler:
    """One stderr handler on the root logger; uvicorn's loggers write through it too."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter_for(settings))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        # uvicorn's own plain-text handlers give way to ours (which redacts); a logger
        # without handlers is left alone: `serve` turns the access log off that way.
        if logger.handlers:
            logger.handlers.clear()
            logger.propagate = True
    return handler


# Ids are a random per-process prefix and a counter: unique across workers and restarts,
# and several times cheaper per request than uuid4 (docs/performance.md).
_PREFIX = os.urandom(8).hex()
_COUNTER = itertools.count(1)


def _new_prefix() -> None:
    """A forked child must not repeat its parent's ids (uvicorn spawns, others may fork)."""
    global _PREFIX
    _PREFIX = os.urandom(8).hex()


os.register_at_fork(after_in_child=_new_prefix)


def new_request_id() -> str:
    """32 hex characters, like a uuid4 without dashes."""
    return f"{_PREFIX}{next(_COUNTER) & 0xFFFFFFFFFFFFFFFF:016x}"


class RequestId:
    """Gives every HTTP request an id: in the log lines it causes, and as `X-Request-Id`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = incoming_id(scope) or new_request_id()
        value = rid.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (HEADER, value)]
            await send(message)

        token = request_id.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


def incoming_id(scope: Scope) -> str | None:
    """The client's `X-Request-Id` when it is sane (<= 64 of [A-Za-z0-9._-]), else None."""
    for name, value in scope["headers"]:
        if name == HEADER:
            return value.decode() if SANE_ID.fullmatch(value) else None
    return None
