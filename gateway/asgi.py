"""Small raw-ASGI helpers for the hot endpoints: headers, bounded bodies, JSON answers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from gateway.errors import error
from gateway.types import Error, Receive, Scope, Send

JSON_TYPE = (b"content-type", b"application/json")
NO_STORE = (b"cache-control", b"no-store")
# A cross-origin storefront reads Retry-After only when it is exposed (Fetch standard,
# CORS-safelisted response headers): the snippet waits as told on 429 and 503 (js/README.md).
EXPOSE_RETRY_AFTER = (b"access-control-expose-headers", b"Retry-After")


class BodyTooLarge(Exception):
    """The request body is over the endpoint's limit."""


class Disconnected(Exception):
    """The client went away before its whole body arrived (fewer bytes than its
    Content-Length, or a chunked body without its last chunk): nothing of it is used,
    since the client never sees an answer and will send it again."""


def cors_headers(origin: bytes) -> list[tuple[bytes, bytes]]:
    """What an answer to an allowed storefront origin carries."""
    return [(b"access-control-allow-origin", origin), (b"vary", b"Origin"), EXPOSE_RETRY_AFTER]


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a (lower-case) request header."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def headers_of(scope: Scope, names: frozenset[bytes]) -> dict[bytes, bytes]:
    """The first value of each of `names` (lower-case) in one pass over the headers."""
    found: dict[bytes, bytes] = {}
    for key, value in scope["headers"]:
        if key in names and key not in found:
            found[key] = bytes(value)
    return found


async def read_body(receive: Receive, limit: int, declared: bytes | None) -> bytes:
    """The whole request body; raises BodyTooLarge past `limit` bytes, before reading them,
    and Disconnected when the client leaves before the body's end.

    `declared`: the request's Content-Length, if it sent one.
    """
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def media_type(value: bytes | None) -> tuple[str, str | None]:
    """`text/plain;charset=UTF-8` -> ("text/plain", "utf-8")."""
    if value is None:
        return "", None
    parts = value.decode("latin-1").split(";")
    charset = None
    for param in parts[1:]:
        name, _, param_value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = param_value.strip().strip('"').lower()
    return parts[0].strip().lower(), charset


async def respond(
    send: Send, status: int, payload: Any, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    body = orjson.dumps(payload)
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [JSON_TYPE, NO_STORE, (b"content-length", str(len(body)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": body})


async def respond_errors(
    send: Send, status: int, errors: list[Error], headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """A 4xx/5xx with Instacart's error objects: `{"errors": [...]}`."""
    await respond(send, status, {"errors": errors}, headers)


async def respond_error(
    send: Send, status: int, message: str, code: int,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    await respond_errors(send, status, [error(message, code)], headers)
