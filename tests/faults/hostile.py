"""A hostile upstream: a front for the real sandbox that misbehaves on purpose.

`HostileUpstream` is a raw HTTP/1.1 server on loopback (asyncio, in a thread of the
test process) that the gateway takes for Instacart (`IAN_UPSTREAM_URL`). The first
time it sees an event_id on `POST /v2/ian/track` it answers with its `behaviour`:

- `redirect_301`, `redirect_307`: a redirect to `Elsewhere`, another local server
  that answers 200 to anything and records it (a host nobody configured);
- `garbage`: in turn, bytes that are not HTTP, a 502 whose body is noise, a 400
  whose body is noise and not UTF-8 (not retryable: a dead letter);
- `huge`: a 503 with a 16 MiB body;
- `reset`: reads the request, then resets the connection (RST);
- `stall`: reads the request and answers nothing for `STALL_S` seconds.

Every behaviour but `garbage` (whose 400s break a run of failures) is an episode:
only the first `EPISODE` events meet it, enough retryable failures in a row (a 3xx
is one) for the forwarder to take the upstream as down and probe it one record at a
time (gateway/forward.py, TRIP). Were every new event to fail once, each probe would
pick a new one and fail, and the test would wait out one probe per event (up to
10 s each) instead of checking what it is for: nothing lost, nothing sent elsewhere.

Every other request (that event_id again, the OAuth token) is relayed to the
real sandbox and its answer relayed back, so what the gateway takes as delivered
was delivered. Bounded: nothing it does lasts longer than `STALL_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import orjson

BEHAVIOURS = ("redirect_301", "redirect_307", "garbage", "huge", "reset", "stall")
TRACK = "/v2/ian/track"
STALL_S = 8.0  # longer than the tests' IAN_UPSTREAM_TIMEOUT: the gateway gives up first
EPISODE = 15  # more than forward.TRIP (10) failures in a row
EPISODES = frozenset(BEHAVIOURS) - {"garbage"}
HUGE = 16 * 1024 * 1024


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """One HTTP/1.1 request with a Content-Length body; None when the client closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(method, path, headers, body)


def answer(status: int, body: bytes, *headers: str, reason: str = "X") -> bytes:
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def event_id_of(body: bytes) -> str | None:
    try:
        (data,) = orjson.loads(body)["data"].values()
        return str(data["event_id"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


class Server:
    """A raw asyncio HTTP server on its own event loop, in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self.closing = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._connection, "127.0.0.1", 0), self.loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _close(self) -> None:
        """Ends every connection: stalls wake up, readers see the end of their stream."""
        assert self._server is not None
        self._server.close()
        self.closing.set()
        for writer in self._connections.values():
            writer.close()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=STALL_S)

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while (request := await read_request(reader)) is not None:
                if not await self.handle(request, writer):
                    break
        writer.close()
        del self._connections[task]

    async def handle(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is done."""
        raise NotImplementedError


class Elsewhere(Server):
    """A host nobody configured: answers 200 to anything, records what reached it."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Request] = []

    async def handle(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        self.received.append(request)
        writer.write(answer(200, b'{"message": "Successfully processed"}', reason="OK"))
        await writer.drain()
        return True


@dataclass
class Tally:
    hostile: Counter[str] = field(default_factory=Counter)  # answers given, by behaviour
    relayed: int = 0  # requests relayed to the sandbox
    seen: set[str] = field(default_factory=set)  # event_ids answered with hostility


class HostileUpstream(Server):
    def __init__(self, behaviour: str, sandbox_url: str, elsewhere_url: str) -> None:
        assert behaviour in BEHAVIOURS, behaviour
        super().__init__()
        self.behaviour = behaviour
        self.sandbox_url = sandbox_url
        self.elsewhere_url = elsewhere_url
        self.tally = Tally()
        self.episode = EPISODE if behaviour in EPISODES else None  # hostile answers, at most
        self._rng = random.Random(16)
        self._relay: httpx.AsyncClient | None = None

    async def handle(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        event_id = event_id_of(request.body) if request.path == TRACK else None
        if event_id is None or event_id in self.tally.seen or self._episode_over():
            writer.write(await self._relayed(request))
            await writer.drain()
            return True
        self.tally.seen.add(event_id)
        self.tally.hostile[self.behaviour] += 1
        behave: Callable[[Request, asyncio.StreamWriter], Awaitable[bool]] = \
            getattr(self, self.behaviour)
        return await behave(request, writer)

    def _episode_over(self) -> bool:
        return self.episode is not None and len(self.tally.seen) >= self.episode

    async def _close(self) -> None:
        if self._relay is not None:
            await self._relay.aclose()
        await super()._close()

    async def _relayed(self, request: Request) -> bytes:
        if self._relay is None:
            self._relay = httpx.AsyncClient(base_url=self.sandbox_url, timeout=10)
        headers = {k: v for k, v in request.headers.items()
                   if k in ("authorization", "content-type", "accept", "user-agent")}
        got = await self._relay.request(request.method, request.path, content=request.body,
                                        headers=headers)
        self.tally.relayed += 1
        return answer(got.status_code, got.content,
                      f"Content-Type: {got.headers.get('content-type', 'application/json')}")

    async def redirect_301(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        return await self._redirect(301, writer)

    async def redirect_307(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        return await self._redirect(307, writer)

    async def _redirect(self, status: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(status, b"", f"Location: {self.elsewhere_url}{TRACK}"))
        await writer.drain()
        return True

    async def garbage(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        noise = self._rng.randbytes(self._rng.randrange(1, 4096))
        kind = self.tally.hostile["garbage"] % 3
        if kind == 0:
            writer.write(noise)  # not HTTP at all
        else:
            status = 502 if kind == 1 else 400  # a 400 is not retried: a dead letter
            writer.write(answer(status, b"\xff\xfe" + noise, "Content-Type: application/json"))
        await writer.drain()
        return False

    async def huge(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(503, b"x" * HUGE, "Content-Type: text/plain"))
        await writer.drain()
        return True

    async def reset(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        sock: socket.socket = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return False

    async def stall(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closing.wait(), STALL_S)
        return False
