"""OAuth client credentials and bearer tokens, as Instacart Connect issues them.

Public Instacart docs (not in the reference documents): `POST /v2/oauth/token` with
JSON `{"client_id", "client_secret", "grant_type": "client_credentials",
"scope": "connect:ian"}` answers `{"access_token", "token_type": "Bearer",
"expires_in": 86400, "created_at", "scope"}`. Expiry runs on real time, because the
gateway refreshes on real time; the sandbox clock only moves order lifecycles.
"""

from __future__ import annotations

import hmac
import secrets
import time

from gateway.errors import BLANK, NOT_IN_LIST, error, invalid
from gateway.sandbox.http import (
    Request,
    Response,
    error_response,
    errors_response,
    json_body,
    json_response,
)
from gateway.types import Error

GRANT_TYPE = "client_credentials"
SCOPES = frozenset({"connect:ian"})
TOKEN_TTL = 86400.0  # public Instacart docs: tokens last 24 h

# Not in the documents: the messages of Instacart's OAuth server (Doorkeeper's own).
INVALID_CLIENT = (
    "Client authentication failed due to unknown client, no client authentication "
    "included, or unsupported authentication method."
)
INVALID_TOKEN = "The access token is invalid"
EXPIRED_TOKEN = "The access token expired"
# doc 002: the one access-token error row ("The user account was deactivated.") uses
# code 1002 with key "access_token"; the sandbox answers bad tokens in the same form.
TOKEN_CODE = 1002

_BEARER = b"bearer "


class Tokens:
    """Issued tokens and their real-time expiry; checks a request's Authorization header."""

    def __init__(self, client_id: str, client_secret: str, ttl: float = TOKEN_TTL) -> None:
        if ttl <= 0:
            raise ValueError(f"token ttl must be greater than 0, got {ttl}")
        self.client_id = client_id
        self.client_secret = client_secret
        self.ttl = ttl
        self.expiry: dict[str, float] = {}

    def issue(self) -> tuple[str, float]:
        token = secrets.token_urlsafe(32)
        self.expiry[token] = time.monotonic() + self.ttl
        return token, time.time()

    @property
    def active(self) -> int:
        """Tokens issued and not revoked (some may have expired unused)."""
        return len(self.expiry)

    def expire_all(self) -> int:
        """Revoke every token; the next Connect call with one of them gets a 401."""
        count = len(self.expiry)
        self.expiry.clear()
        return count

    def check(self, authorization: bytes | None) -> Response | None:
        """None when the header carries a valid, unexpired token, else the 401."""
        if authorization is None or authorization[:7].lower() != _BEARER:
            return unauthorized(INVALID_TOKEN)
        token = authorization[7:].strip().decode("latin-1")
        expires = self.expiry.get(token)
        if expires is None:
            return unauthorized(INVALID_TOKEN)
        if time.monotonic() >= expires:
            del self.expiry[token]
            return unauthorized(EXPIRED_TOKEN)
        return None

    def authenticates(self, client_id: object, client_secret: object) -> bool:
        if not isinstance(client_id, str) or not isinstance(client_secret, str):
            return False
        same_id = hmac.compare_digest(client_id.encode(), self.client_id.encode())
        same_secret = hmac.compare_digest(client_secret.encode(), self.client_secret.encode())
        return same_id and same_secret

    async def token_endpoint(self, request: Request) -> Response:
        """`POST /v2/oauth/token`."""
        body = json_body(request)
        if isinstance(body, Response):
            return body
        problems = grant_errors(body.get("grant_type"), body.get("scope"))
        if problems:
            return errors_response(problems)
        if not self.authenticates(body.get("client_id"), body.get("client_secret")):
            return error_response(401, error(INVALID_CLIENT, 1001, "client_id"))
        token, created_at = self.issue()
        return json_response(200, {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": seconds(self.ttl),
            "created_at": int(created_at),
            "scope": "connect:ian",
        })


def grant_errors(grant_type: object, scope: object) -> list[Error]:
    errors = []
    if grant_type in (None, ""):
        errors.append(invalid(BLANK, "grant_type"))
    elif grant_type != GRANT_TYPE:
        errors.append(invalid(NOT_IN_LIST, "grant_type"))
    # public docs: the IAN scope is "connect:ian"; a missing scope gets the client's default
    if scope not in (None, "") and scope not in SCOPES:
        errors.append(invalid(NOT_IN_LIST, "scope"))
    return errors


def unauthorized(message: str) -> Response:
    return error_response(401, error(message, TOKEN_CODE, "access_token"),
                          ((b"www-authenticate", b'Bearer realm="Instacart Connect"'),))


def seconds(ttl: float) -> int | float:
    """`expires_in` as the integer the docs show, or the exact fraction a test asked for."""
    return int(ttl) if float(ttl).is_integer() else ttl
