"""The sandbox's small HTTP layer over raw ASGI: one request in, one response out.

Starlette's `Request`/`Response` cost more than the track endpoint's whole job, so the
sandbox reads the body and writes precomputed header tuples itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeGuard
from urllib.parse import parse_qsl

import orjson

from gateway.asgi import JSON_TYPE
from gateway.errors import error, issues
from gateway.types import JSON, Error, Message, Receive, Scope, Send

MAX_BODY = 1 << 20  # a Connect request is a few KiB; a MiB is plenty and bounds memory

# Precomputed header tuples, added to (never changed) per answer.
Headers = tuple[tuple[bytes, bytes], ...]
JSON_HEADERS: Headers = (JSON_TYPE,)


class Dropped(Exception):
    """A fault closed the connection and the server gave no transport to close."""


@dataclass(slots=True)
class Request:
    """What a handler needs of one HTTP request; headers lower-cased."""

    method: str
    path: str
    raw_headers: list[tuple[bytes, bytes]]
    query_string: bytes = b""
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)

    def raw_header(self, name: bytes) -> bytes | None:
        for key, value in self.raw_headers:
            if key == name:
                return value
        return None

    def header(self, name: bytes) -> str | None:
        value = self.raw_header(name)
        return None if value is None else value.decode("latin-1")

    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.query_string.decode("latin-1")))

    def json(self) -> Any:
        """The body as JSON; raises `orjson.JSONDecodeError` when it is not."""
        return orjson.loads(self.body)


class Response:
    """A status, a body and its headers, content-length included, computed once."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: Headers = JSON_HEADERS) -> None:
        self.status = status
        self.body = body
        self.headers = [*headers, (b"content-length", str(len(body)).encode())]


# A handler returns DROP to close the connection without an answer.
DROP = Response(0, b"")


def json_response(status: int, payload: Any, extra: Headers = ()) -> Response:
    return Response(status, orjson.dumps(payload), JSON_HEADERS + extra)


def errors_response(errors: list[Error], status: int = 400) -> Response:
    """A 400 with every error: `{"errors": [Error, ...]}`, the documents' multiple-error form."""
    return json_response(status, {"errors": errors})


def error_response(status: int, error: Error, extra: Headers = ()) -> Response:
    """A single Instacart error object, the documents' single-error form (401, 403, 404, 5xx)."""
    return json_response(status, error, extra)


# doc 002/003: "Order not found" -> 404 "Resource not found" 4000, no meta; any unknown
# path alike.
NOT_FOUND = error_response(404, error("Resource not found", 4000))


def malformed() -> Response:
    # doc 002: "Invalid order params*" -> 9999 "There were issues with your request"
    return errors_response([issues()])


def is_int(value: Any) -> TypeGuard[int]:
    """A JSON integer: orjson reads `true` as a bool, which Python counts as an int."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> TypeGuard[int | float]:
    """A JSON number, not `true` or `false`."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_body(request: Request) -> JSON | Response:
    """The body as a JSON object, or the 400 a malformed body gets."""
    try:
        body = request.json()
    except orjson.JSONDecodeError:
        return malformed()
    return body if isinstance(body, dict) else malformed()


async def send_response(send: Send, response: Response) -> None:
    await send({"type": "http.response.start", "status": response.status,
                "headers": response.headers})
    await send({"type": "http.response.body", "body": response.body})


async def drop(scope: Scope, receive: Receive, send: Send) -> None:
    """Close the connection without a status line, as a dying upstream would.

    Raising before `http.response.start` is not enough: uvicorn then answers 500 and
    logs a traceback. Its `send` is bound to the request cycle, which holds the
    transport; closing it and waiting for `http.disconnect` makes uvicorn mark the
    cycle disconnected, so it neither answers nor logs. Other servers get `Dropped`.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    close = getattr(transport, "close", None)  # uvloop's transports are not asyncio's classes
    if not callable(close):
        raise Dropped
    close()
    message: Message = await receive()
    while message["type"] != "http.disconnect":
        message = await receive()
