"""Enrichment: the shopper's user agent and IP, and the time of receipt.

The client IP is the socket peer, unless the peer is a trusted proxy
(`IAN_TRUSTED_PROXIES`): then the CDN's client-IP header when configured, else
the right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
Entries left of that are written by the client and never believed.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from gateway.catalog import Found, ad_data
from gateway.settings import IPNetwork
from gateway.types import Scope

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Anonymization as Google Analytics does it: the IPv4 last octet, the IPv6 last 80 bits.
_V4_KEEP = int(ipaddress.IPv4Address("255.255.255.0"))
_V6_KEEP = ((1 << 48) - 1) << 80

# User agents of crawlers, headless browsers and HTTP libraries: not shoppers.
BOT_USER_AGENT = re.compile(
    r"bot\b|crawl|spider|slurp|headless|phantomjs|lighthouse|facebookexternalhit|"
    r"python-requests|python-httpx|aiohttp|curl/|wget/|go-http-client|java/|okhttp",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=4096)  # a regex over every request's UA; shoppers' UAs repeat
def is_bot(user_agent: str) -> bool:
    return not user_agent or BOT_USER_AGENT.search(user_agent) is not None


@functools.lru_cache(maxsize=16384)  # str() of an ipaddress costs more than parsing it
def render(address: IPAddress, anonymized: bool) -> str:
    return str(anonymize(address) if anonymized else address)


def anonymize(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv4Address):
        return ipaddress.IPv4Address(int(address) & _V4_KEEP)
    return ipaddress.IPv6Address(int(address) & _V6_KEEP)


@functools.lru_cache(maxsize=16384)  # ipaddress parsing is slow; peers and CDN edges repeat
def parse_ip(text: str) -> IPAddress | None:
    """An address from a header or peer entry; IPv4-mapped IPv6 becomes IPv4."""
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[::1]:443" as some proxies write it
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "1.2.3.4:5678"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientAddress:
    """Resolves the shopper's IP for a request; configuration is read once."""

    def __init__(
        self,
        trusted_proxies: Iterable[IPNetwork],
        client_ip_header: str | None,
        anonymize_ip: bool = False,
    ) -> None:
        self._trusted = tuple(trusted_proxies)
        self._anonymize = anonymize_ip
        self._header = client_ip_header.lower().encode("latin-1") if client_ip_header else None

    def is_trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self._trusted)

    def resolve(self, scope: Scope) -> str:
        """The shopper's IP as text, anonymized when configured ("" when unknown)."""
        address = self.address(scope)
        if address is None:
            return ""
        return render(address, self._anonymize)

    def address(self, scope: Scope) -> IPAddress | None:
        client = scope.get("client")
        peer = parse_ip(client[0]) if client else None
        if peer is None or not self._trusted or not self.is_trusted(peer):
            return peer
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        from_header = self._from_cdn_header(headers)
        if from_header is not None:
            return from_header
        forwarded = self._from_forwarded_for(headers)
        return forwarded if forwarded is not None else peer

    def _from_cdn_header(self, headers: list[tuple[bytes, bytes]]) -> IPAddress | None:
        if self._header is None:
            return None
        for name, value in headers:
            if name == self._header:
                return parse_ip(value.decode("latin-1"))
        return None

    def _from_forwarded_for(self, headers: list[tuple[bytes, bytes]]) -> IPAddress | None:
        hops = [
            hop
            for name, value in headers
            if name == b"x-forwarded-for"
            for hop in value.decode("latin-1").split(",")
        ]
        for hop in reversed(hops):
            address = parse_ip(hop)
            if address is None:
                return None  # a broken chain: believe nothing left of it
            if not self.is_trusted(address):
                return address
        return None


def received_at() -> str:
    """The time of receipt, ISO 8601 with offset (track doc: sent_at carries a TZD)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def enrich(event: Any, user_agent: str, user_ip: str, now: Callable[[], str]) -> Found | None:
    """Set the tracking context, always overwriting the browser's, and fill a missing sent_at
    with `now()`. Answers the event's data object for the steps after."""
    if not isinstance(event, dict):
        return None
    found = ad_data(event)
    if found is not None:
        found.data["event_tracking_context"] = {"user_agent": user_agent, "user_ip": user_ip}
    if event.get("sent_at") is None:
        event["sent_at"] = now()
    return found
