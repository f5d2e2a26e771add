"""Enrichment: the tracking context from the request, the client IP through trusted proxies."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from gateway.enrich import ClientAddress, anonymize, enrich, is_bot, parse_ip, received_at
from gateway.validate import has_offset
from tests.support.factories import event

CDN = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32"))


def scope(peer: str, *headers: tuple[str, str]) -> dict[str, Any]:
    return {"client": (peer, 5555),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers]}


def test_context_is_always_overwritten_and_sent_at_filled() -> None:
    evt = event()
    del evt["sent_at"]
    evt["data"]["sponsored_product_data"]["event_tracking_context"] = {
        "user_agent": "spoofed", "user_ip": "1.1.1.1", "extra": 1}
    enrich(evt, "Mozilla/5.0", "203.0.113.7", lambda: "2026-11-22T10:00:00.000+00:00")
    assert evt["data"]["sponsored_product_data"]["event_tracking_context"] == {
        "user_agent": "Mozilla/5.0", "user_ip": "203.0.113.7"}
    assert evt["sent_at"] == "2026-11-22T10:00:00.000+00:00"


def test_sent_at_from_the_browser_is_kept() -> None:
    evt = event()
    enrich(evt, "ua", "ip", received_at)
    assert evt["sent_at"] == "2026-11-22T10:15:30+08:00"


def test_received_at_is_iso_8601_with_offset() -> None:
    assert has_offset(received_at())


@pytest.mark.parametrize("broken", [None, [], "x", {"data": 1}, {"data": {"a": 1, "b": 2}}])
def test_enrich_leaves_broken_events_to_validation(broken: Any) -> None:
    enrich(broken, "ua", "ip", received_at)  # never raises


def test_untrusted_peer_is_the_client_whatever_it_claims() -> None:
    address = ClientAddress(CDN, "CF-Connecting-IP")
    s = scope("198.51.100.1", ("X-Forwarded-For", "1.2.3.4"), ("CF-Connecting-IP", "5.6.7.8"))
    assert address.resolve(s) == "198.51.100.1"


def test_no_trusted_proxies_means_the_peer() -> None:
    assert ClientAddress((), None).resolve(scope("10.1.1.1", ("X-Forwarded-For", "1.2.3.4"))) == (
        "10.1.1.1")


def test_right_most_untrusted_forwarded_for_entry() -> None:
    address = ClientAddress(CDN, None)
    s = scope("10.0.0.2", ("X-Forwarded-For", "6.6.6.6, 203.0.113.5, 10.0.0.9"))
    assert address.resolve(s) == "203.0.113.5"  # 6.6.6.6 is what the client wrote


def test_forwarded_for_across_several_headers() -> None:
    address = ClientAddress(CDN, None)
    s = scope("10.0.0.2", ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.5"))
    assert address.resolve(s) == "203.0.113.5"


def test_all_trusted_chain_falls_back_to_the_peer() -> None:
    assert ClientAddress(CDN, None).resolve(scope("10.0.0.2", ("X-Forwarded-For", "10.0.0.3"))) == (
        "10.0.0.2")


def test_garbage_in_the_chain_believes_nothing_left_of_it() -> None:
    s = scope("10.0.0.2", ("X-Forwarded-For", "1.2.3.4, not-an-ip, 10.0.0.3"))
    assert ClientAddress(CDN, None).resolve(s) == "10.0.0.2"


def test_cdn_header_from_a_trusted_peer() -> None:
    address = ClientAddress(CDN, "True-Client-IP")
    s = scope("10.0.0.2", ("True-Client-IP", "2001:db9::5"), ("X-Forwarded-For", "9.9.9.9"))
    assert address.resolve(s) == "2001:db9::5"


def test_invalid_cdn_header_falls_back_to_forwarded_for() -> None:
    address = ClientAddress(CDN, "CF-Connecting-IP")
    s = scope("10.0.0.2", ("CF-Connecting-IP", "junk"), ("X-Forwarded-For", "203.0.113.5"))
    assert address.resolve(s) == "203.0.113.5"


def test_ipv6_trusted_peer_and_mapped_addresses() -> None:
    address = ClientAddress(CDN, None)
    assert address.resolve(scope("2001:db8::1", ("X-Forwarded-For", "[2001:db9::7]:443"))) == (
        "2001:db9::7")
    assert address.resolve(scope("::ffff:203.0.113.4")) == "203.0.113.4"


def test_anonymization() -> None:
    assert str(anonymize(ipaddress.ip_address("203.0.113.77"))) == "203.0.113.0"
    assert str(anonymize(ipaddress.ip_address("2001:db8:1234:5678::1"))) == "2001:db8:1234::"
    address = ClientAddress((), None, anonymize_ip=True)
    assert address.resolve(scope("198.51.100.200")) == "198.51.100.0"


def test_parse_ip_forms() -> None:
    assert str(parse_ip(" 1.2.3.4:80 ")) == "1.2.3.4"
    assert parse_ip("") is None
    assert parse_ip("300.1.1.1") is None


@pytest.mark.parametrize(("ua", "bot"), [
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0 Safari/537.36",
     True),
    ("Googlebot/2.1 (+http://www.google.com/bot.html)", True),
    ("python-httpx/0.28.1", True),
    ("", True),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
     False),
])
def test_bots(ua: str, bot: bool) -> None:
    assert is_bot(ua) is bot
