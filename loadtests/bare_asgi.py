"""The bare ASGI baseline: uvicorn (uvloop + httptools) and nothing else.

Reads the request body (any real intake must) and answers 202 with a body
shaped like the gateway's. `intake ÷ this` is what the gateway's own code costs.
Run: `uvicorn bare_asgi:app --app-dir loadtests --loop uvloop --http httptools`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BODY = b'{"accepted":1,"duplicates":0,"rejected":[]}'
START: Message = {
    "type": "http.response.start",
    "status": 202,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))],
}
ANSWER: Message = {"type": "http.response.body", "body": BODY}


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(START)
    await send(ANSWER)
