"""A local Instacart Connect: OAuth tokens, `/v2/ian/track`, `/v2/ian/order/log`,
delivery orders (documents 002-004), fault injection and an admin API, in memory.

The rest of the project calls three things: `create_sandbox` (an ASGI app whose state
is public for in-process tests), and `add_arguments` / `run` for `ian-gateway sandbox`.
"""

from __future__ import annotations

from gateway.sandbox.app import Sandbox
from gateway.sandbox.cli import add_arguments, create_sandbox, run

__all__ = ["Sandbox", "add_arguments", "create_sandbox", "run"]
