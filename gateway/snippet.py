"""`GET /ian.js`: the built browser snippet, served from the package.

Two URLs: `/ian.js` (revalidated daily, with an ETag) for a quick start, and
`/ian.<version>.js` whose name is the content hash, cached for a year as
immutable and meant to be loaded with Subresource Integrity
(`ian-gateway snippet` prints the tag).
"""

from __future__ import annotations

import argparse
import base64
import hashlib

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.assets import static_file
from gateway.errors import ISSUES_CODE, error

SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # the storefront may load the script from the gateway's own host name
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Access-Control-Allow-Origin": "*",  # public script: lets `crossorigin` + SRI work
}


def load() -> bytes:
    try:
        return static_file("ian.js")
    except FileNotFoundError:  # not built: the answers say how to build it
        return b""


class Snippet:
    def __init__(self, body: bytes | None = None) -> None:
        self.body = load() if body is None else body
        digest = hashlib.sha256(self.body).hexdigest()
        self.version = digest[:16]
        self.path = f"/ian.{self.version}.js"
        self.etag = f'"{digest[:32]}"'
        self.integrity = "sha384-" + base64.b64encode(hashlib.sha384(self.body).digest()).decode()
        common = {**SAFE_HEADERS, "ETag": self.etag}
        self._latest = {**common, "Cache-Control": "public, max-age=86400"}
        self._versioned = {**common, "Cache-Control": "public, max-age=31536000, immutable"}

    async def latest(self, request: Request) -> Response:
        return self._answer(request, self._latest)

    async def versioned(self, request: Request) -> Response:
        if request.path_params.get("version") != self.version:
            return not_found("no snippet of that version; see `ian-gateway snippet`")
        return self._answer(request, self._versioned)

    def _answer(self, request: Request, headers: dict[str, str]) -> Response:
        if not self.body:
            return not_found("the snippet is not built (npm --prefix js run build)")
        if request.headers.get("if-none-match") == self.etag:
            return Response(status_code=304, headers=headers)
        return Response(self.body, media_type="text/javascript; charset=utf-8", headers=headers)

    def tag(self, origin: str) -> str:
        return (f'<script src="{origin.rstrip("/")}{self.path}" integrity="{self.integrity}" '
                f'crossorigin="anonymous" data-ian-endpoint="/v1/events" '
                f'data-ian-user-id="SHOPPER-ID" async></script>')


def not_found(message: str) -> Response:
    return Response(orjson.dumps({"errors": [error(message, ISSUES_CODE)]}), status_code=404,
                    media_type="application/json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--origin", default="https://shop.example",
                        help="the storefront origin the gateway is served on "
                             "(default https://shop.example)")


def run(args: argparse.Namespace) -> int:
    """Print the versioned, integrity-checked script tag for this build."""
    snippet = Snippet()
    if not snippet.body:
        print("ian-gateway: the snippet is not built (npm --prefix js run build)")
        return 1
    print(snippet.tag(args.origin))
    return 0
