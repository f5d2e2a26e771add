"""Type aliases shared by the pipeline's modules, the ASGI ones included.

The ASGI aliases follow the ASGI specification's names (as Starlette's `types.py`
does); the helpers that use them live in `gateway/asgi.py`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

# A JSON object as parsed by orjson: an event, an order, an answer.
JSON = dict[str, Any]

# Instacart's error object: {"error": {"message", "error_code"}, "meta": {"key"}}.
Error = dict[str, Any]

# An ASGI application, its three arguments, and a message's headers.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
