"""`GET /openapi.json`: the OpenAPI 3.1 document of the public endpoints.

The document is a file of the package, `gateway/static/openapi.json`, kept by
hand next to the code it describes; tests/test_openapi.py holds it to the
catalog and runs Schemathesis against a real `ian-gateway serve` with it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.assets import static_file


def load() -> bytes:
    return static_file("openapi.json")


class OpenAPI:
    def __init__(self) -> None:
        self.body = load()  # read once: the answer is the same file for the process's life

    async def document(self, _: Request) -> Response:
        return Response(self.body, media_type="application/json")
