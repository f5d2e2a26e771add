"""Type aliases shared by the pipeline's modules."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

# A JSON object as parsed by orjson: an event, an order, an answer.
JSON = dict[str, Any]

# Instacart's error object: {"error": {"message", "error_code"}, "meta": {"key"}}.
Error = dict[str, Any]

# An ASGI application's three arguments.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
