"""Every setting of the gateway, defined once.

Each field of `Settings` names its environment variable, how it is read, its
default (written as the variable would be, and parsed once for the field) and
what it means; `Settings.from_env` reads them all and fails loudly, naming the
variable, before a port opens. The README's configuration table is generated
from `SETTINGS` (`ian-gateway config --markdown`) and a test holds the two together.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

T = TypeVar("T")

CLIENT_IP_HEADERS = ("CF-Connecting-IP", "True-Client-IP", "Fastly-Client-IP")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


def _text(value: str) -> str | None:
    return value.strip() or None


def _list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _networks(value: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in _list(value))


def _positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise ValueError("must be greater than 0")
    return number


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be greater than 0")
    return number


def _non_negative_float(value: str) -> float:
    number = float(value)
    if number < 0:
        raise ValueError("must be 0 or more")
    return number


def _log_format(value: str) -> str:
    if value not in ("json", "text"):
        raise ValueError("must be json or text")
    return value


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("", "0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _client_ip_header(value: str) -> str | None:
    header = value.strip()
    if not header:
        return None
    allowed = {name.lower(): name for name in CLIENT_IP_HEADERS}
    if header.lower() not in allowed:
        raise ValueError(f"must be one of {', '.join(CLIENT_IP_HEADERS)}")
    return allowed[header.lower()]


def _pem_file(value: str) -> str | None:
    """A readable PEM bundle holding at least one certificate, or unset."""
    path = value.strip()
    if not path:
        return None
    try:
        with open(path, "rb") as bundle:
            pem = bundle.read()
    except OSError as exc:
        raise ValueError(f"cannot read it: {exc.strerror}") from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise ValueError("holds no PEM certificate")
    return path


def _proxy_url(value: str) -> str | None:
    """An egress proxy as curl and most tools take it: http(s)://[user:pass@]host:port."""
    url = value.strip()
    if not url:
        return None
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError("has a port that is not a number") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be http://host:port or https://host:port")
    return url


def _spool(value: str) -> str:
    if not value.startswith(("sqlite://", "redis://", "rediss://", "memory:")):
        raise ValueError("must be sqlite:///path, redis://host:port/db or memory:")
    return value


@dataclass(frozen=True)
class Setting:
    """One environment variable: the attribute it fills, how it is read, what it means."""

    env: str
    attr: str
    parse: Callable[[str], Any]
    default: str  # as the variable would be written; `Settings` holds it parsed
    doc: str


def setting(env: str, parse: Callable[[str], T], default: str, doc: str) -> T:
    """A field of `Settings` read from `env`; its default is `parse(default)`."""
    return field(default=parse(default),
                 metadata={"env": env, "parse": parse, "default": default, "doc": doc})


@dataclass(frozen=True)
class Settings:
    upstream_url: str | None = setting(
        "IAN_UPSTREAM_URL", _text, "",
        "Base URL of Instacart Connect (the IAN host). Required by `serve`; "
        "`demo` uses its embedded sandbox.")
    access_token: str | None = setting(
        "IAN_ACCESS_TOKEN", _text, "", "A static bearer token for the upstream.")
    client_id: str | None = setting(
        "IAN_CLIENT_ID", _text, "",
        "OAuth client id; with the secret, the gateway fetches `POST /v2/oauth/token`, "
        "caches the token, refreshes it before expiry and once on a 401.")
    client_secret: str | None = setting(
        "IAN_CLIENT_SECRET", _text, "", "OAuth client secret.")
    retailer_id: str | None = setting(
        "IAN_RETAILER_ID", _text, "",
        "Sent upstream as `X-Retailer-Id`; unset, the header is not sent.")
    allowed_origins: tuple[str, ...] = setting(
        "IAN_ALLOWED_ORIGINS", _list, "",
        "Comma list of storefront origins allowed by CORS; none: browsers are refused.")
    trusted_proxies: tuple[IPNetwork, ...] = setting(
        "IAN_TRUSTED_PROXIES", _networks, "",
        "Comma list of CIDRs whose `X-Forwarded-For` is believed; none: the socket "
        "peer is the client.")
    client_ip_header: str | None = setting(
        "IAN_CLIENT_IP_HEADER", _client_ip_header, "",
        "CDN header to take the client IP from (`CF-Connecting-IP`, `True-Client-IP`, "
        "`Fastly-Client-IP`), only when the peer is a trusted proxy.")
    spool: str = setting(
        "IAN_SPOOL", _spool, "sqlite:///./ian-spool.db",
        "`sqlite:///path` (embedded), `redis://…` (scale-out) or `memory:` "
        "(tests only: loses events on exit).")
    spool_max: int = setting(
        "IAN_SPOOL_MAX", _positive_int, "1000000",
        "Events the spool may hold before intake answers 503 with Retry-After.")
    spool_lease: float = setting(
        "IAN_SPOOL_LEASE", _positive_float, "30",
        "Seconds a record claimed by a forwarder stays hidden from the others; a dead "
        "forwarder's records are sent again after it. Must exceed `IAN_UPSTREAM_TIMEOUT`.")
    dedupe_ttl: float = setting(
        "IAN_DEDUPE_TTL", _positive_float, "900",
        "Seconds an `event_id` is remembered for dedupe; an order's key is kept for three "
        "days, the order log's window.")
    dedupe_max: int = setting(
        "IAN_DEDUPE_MAX", _positive_int, "1000000",
        "Most event_ids the in-process dedupe cache holds.")
    orders_api_keys: tuple[str, ...] = setting(
        "IAN_ORDERS_API_KEYS", _list, "",
        "Comma list of bearer keys accepted by `POST /v1/orders`; none: orders are refused.")
    forward_concurrency: int = setting(
        "IAN_FORWARD_CONCURRENCY", _positive_int, "1024",
        "Most upstream requests in flight. The forwarder adapts how many it keeps in "
        "flight to the upstream's latency and throttling (429, 503, timeouts), up to this.")
    forwarder: bool = setting(
        "IAN_FORWARDER", _flag, "true",
        "Run the forwarder inside `serve`; false when `ian-gateway forward` runs it alone.")
    upstream_timeout: float = setting(
        "IAN_UPSTREAM_TIMEOUT", _positive_float, "10",
        "Seconds one upstream request may take before it is retried.")
    request_timeout: float = setting(
        "IAN_REQUEST_TIMEOUT", _positive_float, "10",
        "Seconds a request may take to arrive whole (headers and body), from the "
        "connection's opening or the request's first byte; past it the gateway answers "
        "408 or closes the connection (slow clients). An 8 MiB order batch needs ~1 MB/s.")
    upstream_ca: str | None = setting(
        "IAN_UPSTREAM_CA", _pem_file, "",
        "A PEM bundle of CAs trusted for the upstream besides the system's (TLS "
        "inspection, tests). The upstream's certificate is always verified.")
    https_proxy: str | None = setting(
        "HTTPS_PROXY", _proxy_url, "",
        "Egress proxy for the upstream (`http://host:port`; HTTPS goes through it with "
        "CONNECT). Only the upper-case name is read.")
    no_proxy: str | None = setting(
        "NO_PROXY", _text, "",
        "Comma list of hosts, domains (`.example.com`) or CIDRs reached without the proxy.")
    rate_limit: float = setting(
        "IAN_RATE_LIMIT", _non_negative_float, "0",
        "Requests per second one client IP may make to `/v1/*` (token bucket); 0: no limit. "
        "Off by default: until `IAN_TRUSTED_PROXIES` is set behind a CDN, every request "
        "seems to come from a few edge IPs.")
    rate_burst: int = setting(
        "IAN_RATE_BURST", _positive_int, "100",
        "Requests one client IP may make at once before the rate applies.")
    anonymize_ip: bool = setting(
        "IAN_ANONYMIZE_IP", _flag, "false",
        "Zero the IPv4 last octet / IPv6 last 80 bits before the IP is stored, "
        "forwarded or logged.")
    drop_bots: bool = setting(
        "IAN_DROP_BOTS", _flag, "false",
        "Reject events whose user agent is a bot (HeadlessChrome included); they are "
        "counted in metrics either way.")
    log_format: str = setting(
        "IAN_LOG_FORMAT", _log_format, "json",
        "`json` (one object per line, with a request id) or `text`.")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = environ.get(setting.env, setting.default)
            try:
                values[setting.attr] = setting.parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{setting.env}={raw!r}: {exc}") from None
        if values["spool_lease"] <= values["upstream_timeout"]:
            # a live forwarder still waiting on the upstream would lose its records to another
            raise ConfigError("IAN_SPOOL_LEASE must be greater than IAN_UPSTREAM_TIMEOUT")
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def require_upstream(self) -> None:
        """`serve` refuses to start without an upstream and credentials for it."""
        if not self.upstream_url:
            raise ConfigError("IAN_UPSTREAM_URL is required: the base URL of Instacart Connect")
        if self.access_token:
            return
        if not self.client_id or not self.client_secret:
            raise ConfigError(
                "IAN_ACCESS_TOKEN, or IAN_CLIENT_ID and IAN_CLIENT_SECRET, is required "
                "to authenticate to the upstream"
            )


# Every field of `Settings`, in order: `from_env`, `config` and the README's table read these.
SETTINGS: tuple[Setting, ...] = tuple(
    Setting(attr=f.name, **f.metadata) for f in fields(Settings)
)


def markdown_table() -> str:
    """The README's configuration table."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for setting in SETTINGS:
        default = f"`{setting.default}`" if setting.default else "—"
        rows.append(f"| `{setting.env}` | {default} | {setting.doc} |")
    return "\n".join(rows)
