"""Every setting of the gateway, defined once.

Each `Setting` names its environment variable, its default and what it means;
`Settings.from_env` reads them all and fails loudly, naming the variable, before
a port opens. The README's configuration table is generated from `SETTINGS`
(`ian-gateway config --markdown`) and a test holds the two together.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

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
    default: str
    doc: str


SETTINGS: tuple[Setting, ...] = (
    Setting("IAN_UPSTREAM_URL", "upstream_url", _text, "",
            "Base URL of Instacart Connect (the IAN host). Required by `serve`; "
            "`demo` uses its embedded sandbox."),
    Setting("IAN_ACCESS_TOKEN", "access_token", _text, "",
            "A static bearer token for the upstream."),
    Setting("IAN_CLIENT_ID", "client_id", _text, "",
            "OAuth client id; with the secret, the gateway fetches `POST /v2/oauth/token`, "
            "caches the token, refreshes it before expiry and once on a 401."),
    Setting("IAN_CLIENT_SECRET", "client_secret", _text, "", "OAuth client secret."),
    Setting("IAN_RETAILER_ID", "retailer_id", _text, "",
            "Sent upstream as `X-Retailer-Id`; unset, the header is not sent."),
    Setting("IAN_ALLOWED_ORIGINS", "allowed_origins", _list, "",
            "Comma list of storefront origins allowed by CORS; none: browsers are refused."),
    Setting("IAN_TRUSTED_PROXIES", "trusted_proxies", _networks, "",
            "Comma list of CIDRs whose `X-Forwarded-For` is believed; none: the socket "
            "peer is the client."),
    Setting("IAN_CLIENT_IP_HEADER", "client_ip_header", _client_ip_header, "",
            "CDN header to take the client IP from (`CF-Connecting-IP`, `True-Client-IP`, "
            "`Fastly-Client-IP`), only when the peer is a trusted proxy."),
    Setting("IAN_SPOOL", "spool", _spool, "sqlite:///./ian-spool.db",
            "`sqlite:///path` (embedded), `redis://…` (scale-out) or `memory:` "
            "(tests only: loses events on exit)."),
    Setting("IAN_SPOOL_MAX", "spool_max", _positive_int, "1000000",
            "Events the spool may hold before intake answers 503 with Retry-After."),
    Setting("IAN_SPOOL_LEASE", "spool_lease", _positive_float, "30",
            "Seconds a record claimed by a forwarder stays hidden from the others; a dead "
            "forwarder's records are sent again after it. Must exceed `IAN_UPSTREAM_TIMEOUT`."),
    Setting("IAN_DEDUPE_TTL", "dedupe_ttl", _positive_float, "900",
            "Seconds an `event_id` is remembered for dedupe; an order's key is kept for three "
            "days, the order log's window."),
    Setting("IAN_DEDUPE_MAX", "dedupe_max", _positive_int, "1000000",
            "Most event_ids the in-process dedupe cache holds."),
    Setting("IAN_ORDERS_API_KEYS", "orders_api_keys", _list, "",
            "Comma list of bearer keys accepted by `POST /v1/orders`; none: orders are refused."),
    Setting("IAN_FORWARD_CONCURRENCY", "forward_concurrency", _positive_int, "64",
            "Upstream requests the forwarder keeps in flight."),
    Setting("IAN_FORWARDER", "forwarder", _flag, "true",
            "Run the forwarder inside `serve`; false when `ian-gateway forward` runs it alone."),
    Setting("IAN_UPSTREAM_TIMEOUT", "upstream_timeout", _positive_float, "10",
            "Seconds one upstream request may take before it is retried."),
    Setting("IAN_REQUEST_TIMEOUT", "request_timeout", _positive_float, "10",
            "Seconds a request may take to arrive whole (headers and body), from the "
            "connection's opening or the request's first byte; past it the gateway answers "
            "408 or closes the connection (slow clients). An 8 MiB order batch needs ~1 MB/s."),
    Setting("IAN_RATE_LIMIT", "rate_limit", _non_negative_float, "0",
            "Requests per second one client IP may make to `/v1/*` (token bucket); 0: no limit. "
            "Off by default: until `IAN_TRUSTED_PROXIES` is set behind a CDN, every request "
            "seems to come from a few edge IPs."),
    Setting("IAN_RATE_BURST", "rate_burst", _positive_int, "100",
            "Requests one client IP may make at once before the rate applies."),
    Setting("IAN_ANONYMIZE_IP", "anonymize_ip", _flag, "false",
            "Zero the IPv4 last octet / IPv6 last 80 bits before the IP is stored, "
            "forwarded or logged."),
    Setting("IAN_DROP_BOTS", "drop_bots", _flag, "false",
            "Reject events whose user agent is a bot (HeadlessChrome included); they are "
            "counted in metrics either way."),
    Setting("IAN_LOG_FORMAT", "log_format", _log_format, "json",
            "`json` (one object per line, with a request id) or `text`."),
)


@dataclass(frozen=True)
class Settings:
    upstream_url: str | None = None
    access_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    retailer_id: str | None = None
    allowed_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[IPNetwork, ...] = ()
    client_ip_header: str | None = None
    spool: str = "sqlite:///./ian-spool.db"
    spool_max: int = 1_000_000
    spool_lease: float = 30.0
    dedupe_ttl: float = 900.0
    dedupe_max: int = 1_000_000
    orders_api_keys: tuple[str, ...] = ()
    forward_concurrency: int = 64
    forwarder: bool = True
    upstream_timeout: float = 10.0
    request_timeout: float = 10.0
    rate_limit: float = 0.0
    rate_burst: int = 100
    anonymize_ip: bool = False
    drop_bots: bool = False
    log_format: str = "json"

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


def markdown_table() -> str:
    """The README's configuration table."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for setting in SETTINGS:
        default = f"`{setting.default}`" if setting.default else "—"
        rows.append(f"| `{setting.env}` | {default} | {setting.doc} |")
    return "\n".join(rows)


assert {s.attr for s in SETTINGS} <= {f.name for f in fields(Settings)}
