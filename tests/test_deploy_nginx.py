"""deploy/nginx: the README's CDN guide carried out by Debian's nginx in front of a real gateway.

nginx (its own prefix, configuration and cache in a temporary directory, loopback,
a free port) includes deploy/nginx/ian-gateway.locations.conf verbatim and proxies
to `ian-gateway serve`, which forwards to the sandbox. The shopper connects from
127.0.0.2, nginx from 127.0.0.1 (the gateway's only trusted proxy), so the address
the sandbox receives says whose it is.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.snippet import Snippet
from tests.support import ROOT, free_port, wait_for_port
from tests.support.factories import event, event_id
from tests.support.served import ORIGIN, Served, served

LOCATIONS = ROOT / "deploy" / "nginx" / "ian-gateway.locations.conf"
SITE = ROOT / "deploy" / "nginx" / "ian-gateway.conf"
# The example site's own paths, pointed at temporary ones by the syntax check.
SITE_PATHS = ("/etc/ssl/certs/shop.example.pem", "/etc/ssl/private/shop.example.key",
              "/var/cache/nginx/ian-gateway")
SHOPPER = "127.0.0.2"  # the shopper's own address: any of 127/8 reaches loopback
SPOOFED = "203.0.113.66"  # what a client claims to be, from outside
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) nginx-test/1"
# The guide's two ways to tell the gateway the client IP, behind one trusted proxy.
CLIENT_IP = {
    "X-Forwarded-For": {"IAN_TRUSTED_PROXIES": "127.0.0.1/32"},
    "True-Client-IP": {"IAN_TRUSTED_PROXIES": "127.0.0.1/32",
                       "IAN_CLIENT_IP_HEADER": "True-Client-IP"},
}


def nginx_conf(prefix: Path, port: int, upstream: int) -> str:
    temp = " ".join(f"{name}_temp_path {prefix / name};"
                    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""
daemon off;
master_process off;
pid {prefix / 'nginx.pid'};
error_log {prefix / 'error.log'} warn;
events {{ worker_connections 64; }}
http {{
    access_log {prefix / 'access.log'};
    {temp}
    proxy_cache_path {prefix / 'cache'} keys_zone=ian_gateway:1m use_temp_path=off;
    upstream ian_gateway {{ server 127.0.0.1:{upstream}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{port};
        include {LOCATIONS};
    }}
}}
"""


class Nginx:
    def __init__(self, prefix: Path, upstream: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = prefix / "nginx.conf"
        config.write_text(nginx_conf(prefix, self.port, upstream))
        self.log = (prefix / "nginx.out").open("wb")
        self.proc = subprocess.Popen(["nginx", "-p", str(prefix), "-c", str(config)],
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)
        self.log.close()


@pytest.fixture(scope="module", params=sorted(CLIENT_IP))
def proxied(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Nginx]]:
    directory = tmp_path_factory.mktemp("nginx")
    with served(directory, **CLIENT_IP[request.param]) as running:
        nginx = Nginx(directory, running.gateway.port)
        try:
            wait_for_port(nginx.port, proc=nginx.proc)  # type: ignore[arg-type]
            yield running, nginx
        finally:
            nginx.stop()


@pytest.fixture
def shopper() -> Iterator[httpx.Client]:
    """A client whose connections come from SHOPPER, as a browser's would from its own IP."""
    transport = httpx.HTTPTransport(local_address=SHOPPER)
    with httpx.Client(transport=transport, timeout=10) as client:
        yield client


def beacon(client: httpx.Client, url: str, **headers: str) -> str:
    """One event posted as sendBeacon posts it; its event_id once accepted."""
    evt = event()
    answer = client.post(f"{url}/v1/events", json=evt, headers={
        "Content-Type": "text/plain;charset=UTF-8", "Origin": ORIGIN, "User-Agent": USER_AGENT,
        **headers})
    assert answer.status_code == 202, answer.text
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert answer.headers["cache-control"] == "no-store"
    assert "x-cache-status" not in answer.headers
    return event_id(evt)


def arrived(gateway: Served, key: str) -> dict[str, str]:
    """The event_tracking_context the sandbox received for `key`, once forwarded."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for received in gateway.received():
            (data,) = received["data"].values()
            if data["event_id"] == key:
                context: dict[str, str] = data["event_tracking_context"]
                return context
        time.sleep(0.2)
    raise AssertionError(f"{key} never reached the sandbox")


def test_the_shoppers_ip_and_user_agent_reach_the_upstream(
        proxied: tuple[Served, Nginx], shopper: httpx.Client) -> None:
    gateway, nginx = proxied
    key = beacon(shopper, nginx.url)
    assert arrived(gateway, key) == {"user_agent": USER_AGENT, "user_ip": SHOPPER}


def test_a_spoofed_client_ip_from_outside_is_not_believed(
        proxied: tuple[Served, Nginx], shopper: httpx.Client) -> None:
    gateway, nginx = proxied
    key = beacon(shopper, nginx.url, **{"X-Forwarded-For": SPOOFED, "True-Client-IP": SPOOFED,
                                        "CF-Connecting-IP": SPOOFED})
    assert arrived(gateway, key)["user_ip"] == SHOPPER


def test_the_preflight_passes(proxied: tuple[Served, Nginx], shopper: httpx.Client) -> None:
    _, nginx = proxied
    answer = shopper.options(f"{nginx.url}/v1/events", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == ORIGIN


def test_the_versioned_snippet_is_cached_and_beacons_never(
        proxied: tuple[Served, Nginx], shopper: httpx.Client) -> None:
    _, nginx = proxied
    path = Snippet().path
    statuses = [shopper.get(f"{nginx.url}{path}").headers["x-cache-status"] for _ in range(2)]
    assert statuses[1] == "HIT"
    latest = [shopper.get(f"{nginx.url}/ian.js").headers["x-cache-status"] for _ in range(2)]
    assert latest[1] == "HIT"
    for _ in range(2):
        beacon(shopper, nginx.url)  # asserts no X-Cache-Status: nginx's cache never saw it


def test_operations_endpoints_are_not_proxied(
        proxied: tuple[Served, Nginx], shopper: httpx.Client) -> None:
    _, nginx = proxied
    for path in ("/metrics", "/status", "/healthz"):
        assert shopper.get(f"{nginx.url}{path}").status_code == 404


def test_the_example_site_passes_nginx_t(tmp_path: Path) -> None:
    """deploy/nginx/ian-gateway.conf as shipped, but for its certificate and cache paths."""
    cert, key, cache = (tmp_path / name for name in ("cert.pem", "key.pem", "cache"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=shop.example", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    site = SITE.read_text()
    for shipped, local in zip(SITE_PATHS, (cert, key, cache), strict=True):
        assert shipped in site
        site = site.replace(shipped, str(local))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / LOCATIONS.name).symlink_to(LOCATIONS)  # included relative to the conf directory
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path / 'nginx.pid'}; error_log {tmp_path / 'error.log'};\n"
        f"events {{}}\nhttp {{ include {tmp_path / 'site.conf'}; }}\n")
    done = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "test is successful" in done.stderr, done.stderr
