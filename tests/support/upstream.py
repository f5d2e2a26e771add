"""A recording, scriptable stand-in for Instacart Connect, for forwarder tests.

The sandbox (`gateway.sandbox`) is the faithful stand-in; this one exists to
script exact answers (503 then 200, a 401 once, a 400) and to record every
request byte for byte. `recording_upstream()` serves it over real HTTP.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.support import thread_server


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Upstream:
    token_ttl: int = 86400
    url: str = ""  # set once it is served
    received: list[Received] = field(default_factory=list)
    hits: list[str] = field(default_factory=list)  # every request's path, authorized or not
    tokens_issued: int = 0
    valid_tokens: set[str] = field(default_factory=set)
    script: dict[str, deque[tuple[int, dict[str, str], bytes]]] = field(
        default_factory=lambda: defaultdict(deque))
    stalls: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def answer_next(self, path: str, status: int, body: Any = None,
                    headers: dict[str, str] | None = None, times: int = 1) -> None:
        """The next `times` requests to `path` get this answer instead of 200 (or a token)."""
        payload = orjson.dumps(body if body is not None else {"message": f"status {status}"})
        for _ in range(times):
            self.script[path].append((status, headers or {}, payload))

    def stall_next(self, path: str, seconds: float) -> None:
        """The next request to `path` is answered only after `seconds`."""
        self.stalls[path].append(seconds)

    def revoke_tokens(self) -> None:
        self.valid_tokens.clear()

    def to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.to(path)
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"{path}: {len(self.to(path))} of {count} requests arrived")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"]
                await send({"type": kind + ".complete"})
                if kind == "lifespan.shutdown":
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        status, extra, payload = self._answer(scope["path"], headers, body)
        if self.stalls[scope["path"]]:
            await asyncio.sleep(self.stalls[scope["path"]].popleft())
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                *((k.encode(), v.encode()) for k, v in extra.items())]})
        await send({"type": "http.response.body", "body": payload})

    def _answer(self, path: str, headers: dict[str, str], body: bytes
                ) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            self.hits.append(path)
            if path == "/v2/oauth/token":
                if self.script[path]:
                    return self.script[path].popleft()
                return self._token(body)
            if headers.get("authorization", "").removeprefix("Bearer ") not in self.valid_tokens:
                return 401, {}, orjson.dumps({"error": {"message": "Unauthorized",
                                                        "error_code": 1001}})
            self.received.append(Received(path, headers, body, time.monotonic()))
            if self.script[path]:
                return self.script[path].popleft()
            return 200, {}, b'{"message": "Successfully processed"}'

    def _token(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        request = orjson.loads(body)
        if request.get("client_secret") != "secret":
            return 401, {}, b'{"error": {"message": "invalid client", "error_code": 1001}}'
        self.tokens_issued += 1
        token = f"token-{next(self._ids)}"
        self.valid_tokens.add(token)
        return 200, {}, orjson.dumps({"access_token": token, "token_type": "Bearer",
                                      "expires_in": self.token_ttl, "scope": "connect:ian",
                                      "created_at": int(time.time())})


@contextmanager
def recording_upstream(**tls: Any) -> Iterator[Upstream]:
    """An `Upstream` served on loopback, its `url` set; `tls`: thread_server's certificate
    arguments for HTTPS."""
    recorder = Upstream()
    with thread_server(recorder, **tls) as server:
        recorder.url = server.url
        yield recorder
