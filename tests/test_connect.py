"""The upstream client: request headers, tokens, and on a real network TLS verified, an
egress proxy, redirects never followed.

Real gateway processes forward over real HTTP(S) to recording upstreams
(tests/support/upstream.py) on loopback; the proxy is a real tinyproxy process and the
certificates come from a throwaway CA made for the run (loadtests/throwaway_ca.py).
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.connect import STREAMS_PER_CONNECTION
from loadtests import bench_stub, throwaway_ca
from tests.support import TRACK, free_port, metric, send, wait_for_port
from tests.support.factories import event, event_id
from tests.support.upstream import Upstream, recording_upstream

TOKEN = "/v2/oauth/token"


def test_upstream_request_shape(gateway: Any, http: httpx.Client, upstream: Any) -> None:
    gw = gateway(IAN_RETAILER_ID="acme-banner")
    send(http, gw, event())
    (received,) = upstream.wait_for(TRACK, 1)
    headers = received.headers
    assert headers["authorization"] == "Bearer token-1"
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"
    assert headers["x-retailer-id"] == "acme-banner"
    assert headers["user-agent"] == "Mozilla/5.0 (shopper)"


def test_no_retailer_header_unless_configured(gateway: Any, http: httpx.Client,
                                              upstream: Any) -> None:
    send(http, gateway(), event())
    (received,) = upstream.wait_for(TRACK, 1)
    assert "x-retailer-id" not in received.headers


def test_static_token(gateway: Any, http: httpx.Client, upstream: Any) -> None:
    upstream.valid_tokens.add("static-token")
    gw = gateway(IAN_ACCESS_TOKEN="static-token", IAN_CLIENT_ID="", IAN_CLIENT_SECRET="")
    send(http, gw, event())
    (received,) = upstream.wait_for(TRACK, 1)
    assert received.headers["authorization"] == "Bearer static-token"
    assert upstream.tokens_issued == 0


def test_one_token_is_reused(gateway: Any, http: httpx.Client, upstream: Any) -> None:
    gw = gateway()
    send(http, gw, *(event() for _ in range(20)))
    upstream.wait_for(TRACK, 20)
    assert upstream.tokens_issued == 1


def test_401_refreshes_the_token_once_and_retries(gateway: Any, http: httpx.Client,
                                                  upstream: Any) -> None:
    gw = gateway()
    send(http, gw, event())
    upstream.wait_for(TRACK, 1)
    upstream.revoke_tokens()
    send(http, gw, (evt := event()))
    received = upstream.wait_for(TRACK, 2)
    assert upstream.tokens_issued == 2
    assert received[1].headers["authorization"] == "Bearer token-2"
    assert event_id(received[1].json()) == event_id(evt)


def test_token_is_refreshed_before_expiry(gateway: Any, http: httpx.Client, upstream: Any) -> None:
    upstream.token_ttl = 2  # refreshed at 90% of its lifetime
    gw = gateway()
    send(http, gw, event())
    upstream.wait_for(TRACK, 1)
    time.sleep(2.0)
    send(http, gw, event())
    received = upstream.wait_for(TRACK, 2)
    assert received[1].headers["authorization"] == "Bearer token-2"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> throwaway_ca.Tls:
    return throwaway_ca.make(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_upstream(tls: throwaway_ca.Tls) -> Iterator[Upstream]:
    """The recording upstream over HTTPS, with a certificate of the throwaway CA."""
    with recording_upstream(ssl_certfile=str(tls.cert), ssl_keyfile=str(tls.key)) as recorder:
        yield recorder


@pytest.fixture
def elsewhere() -> Iterator[Upstream]:
    """Another server, where a redirect points: nothing may ever reach it."""
    with recording_upstream() as recorder:
        yield recorder


@dataclass
class Proxy:
    url: str
    log: Path

    def connects(self) -> list[str]:
        return [line.split("Request (file descriptor", 1)[1].split(": ", 1)[1]
                for line in self.log.read_text().splitlines() if "Request (file" in line]


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Proxy]:
    """A real tinyproxy on loopback that logs every request it relays."""
    port, log = free_port(), tmp_path / "tinyproxy.log"
    conf = tmp_path / "tinyproxy.conf"
    # No ConnectPort line: CONNECT to any port (the upstream's is a free one).
    conf.write_text(f'Port {port}\nListen 127.0.0.1\nAllow 127.0.0.1\nLogFile "{log}"\n'
                    "LogLevel Connect\nMaxClients 50\nTimeout 30\n")
    process = subprocess.Popen(["tinyproxy", "-d", "-c", str(conf)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc=process)  # type: ignore[arg-type]
        yield Proxy(f"http://127.0.0.1:{port}", log)
    finally:
        process.terminate()
        process.wait(10)


@dataclass
class Nginx:
    url: str
    log: Path
    http2: bool  # offered by ALPN

    def requests(self) -> list[tuple[str, str]]:
        """(protocol, connection number) of each track request so far."""
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [(protocol, connection) for protocol, connection in map(str.split, lines)]


@pytest.fixture(params=[True, False], ids=["h2-offered", "http1-only"])
def nginx(request: pytest.FixtureRequest, tmp_path: Path, tls: throwaway_ca.Tls
          ) -> Iterator[Nginx]:
    """Debian's nginx over TLS, HTTP/2 offered by ALPN or not, answering after 0.2 s."""
    port, workdir = free_port(), tmp_path / "nginx"
    conf = bench_stub.field_conf(workdir, port, tls.cert, tls.key, http2=request.param,
                                 delay=0.2, log="protocol")
    process = subprocess.Popen(bench_stub.nginx_argv(bench_stub.prepare(workdir, conf)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc=process)  # type: ignore[arg-type]
        yield Nginx(f"https://127.0.0.1:{port}", bench_stub.track_log(workdir), request.param)
    finally:
        process.terminate()
        process.wait(10)


def test_http2_when_offered_spread_over_connections_else_http1(
        gateway: Any, http: httpx.Client, nginx: Nginx, tls: throwaway_ca.Tls) -> None:
    gw = gateway(IAN_UPSTREAM_URL=nginx.url, IAN_UPSTREAM_CA=str(tls.ca),
                 IAN_ACCESS_TOKEN="bench", IAN_FORWARD_CONCURRENCY="300")
    for _ in range(3):
        send(http, gw, *(event() for _ in range(100)))
    deadline = time.monotonic() + 30
    while len(nginx.requests()) < 300 and time.monotonic() < deadline:
        time.sleep(0.1)
    seen = nginx.requests()
    assert len(seen) == 300
    assert {protocol for protocol, _ in seen} == {"HTTP/2.0" if nginx.http2 else "HTTP/1.1"}
    if nginx.http2:  # one HTTP/2 connection per client, never more streams than the cap
        connections = {connection for _, connection in seen}
        assert len(connections) == math.ceil(300 / STREAMS_PER_CONNECTION)


def spool_depth(http: httpx.Client, gw: Any) -> int:
    return int(http.get(gw.url + "/readyz").json()["spool_depth"])




def test_https_upstream_trusted_through_ian_upstream_ca(
        gateway: Any, http: httpx.Client, tls_upstream: Upstream, tls: throwaway_ca.Tls) -> None:
    gw = gateway(IAN_UPSTREAM_URL=tls_upstream.url, IAN_UPSTREAM_CA=str(tls.ca))
    send(http, gw, (evt := event()))
    (received,) = tls_upstream.wait_for(TRACK, 1)
    assert event_id(received.json()) == event_id(evt)
    assert tls_upstream.tokens_issued == 1  # the token came over the same verified TLS


def test_an_untrusted_certificate_is_refused_and_the_event_kept(
        gateway: Any, http: httpx.Client, tls_upstream: Upstream) -> None:
    gw = gateway(IAN_UPSTREAM_URL=tls_upstream.url)  # the throwaway CA is not trusted
    send(http, gw, event())
    time.sleep(1.5)
    assert tls_upstream.hits == []  # not one request crossed an unverified connection
    assert spool_depth(http, gw) == 1
    assert metric(http, gw, 'ian_upstream_responses_total{kind="track",status="0"}') >= 1


def test_https_proxy_carries_the_upstream_traffic(
        gateway: Any, http: httpx.Client, tls_upstream: Upstream, tls: throwaway_ca.Tls,
        proxy: Proxy) -> None:
    gw = gateway(IAN_UPSTREAM_URL=tls_upstream.url, IAN_UPSTREAM_CA=str(tls.ca),
                 HTTPS_PROXY=proxy.url)
    send(http, gw, event(), event())
    tls_upstream.wait_for(TRACK, 2)
    host = tls_upstream.url.removeprefix("https://")
    assert proxy.connects() and all(c.startswith(f"CONNECT {host} ") for c in proxy.connects())


def test_no_proxy_bypasses_it(gateway: Any, http: httpx.Client, tls_upstream: Upstream,
                              tls: throwaway_ca.Tls, proxy: Proxy) -> None:
    gw = gateway(IAN_UPSTREAM_URL=tls_upstream.url, IAN_UPSTREAM_CA=str(tls.ca),
                 HTTPS_PROXY=proxy.url, NO_PROXY="localhost,127.0.0.1")
    send(http, gw, event())
    tls_upstream.wait_for(TRACK, 1)
    assert proxy.connects() == []


def test_a_dead_proxy_keeps_the_events(gateway: Any, http: httpx.Client, tls_upstream: Upstream,
                                       tls: throwaway_ca.Tls) -> None:
    gw = gateway(IAN_UPSTREAM_URL=tls_upstream.url, IAN_UPSTREAM_CA=str(tls.ca),
                 HTTPS_PROXY=f"http://127.0.0.1:{free_port()}")  # nothing listens
    send(http, gw, event())
    time.sleep(1.5)
    assert tls_upstream.hits == [] and spool_depth(http, gw) == 1


def test_a_redirect_is_never_followed_and_the_record_kept(
        gateway: Any, http: httpx.Client, upstream: Upstream, elsewhere: Upstream) -> None:
    moved = {"Location": elsewhere.url + TRACK}
    upstream.answer_next(TRACK, 301, headers=moved)
    upstream.answer_next(TRACK, 307, headers=moved, times=1000)
    gw = gateway()
    send(http, gw, event())
    upstream.wait_for(TRACK, 3)  # tried again, with backoff
    assert elsewhere.hits == []
    assert spool_depth(http, gw) == 1
    assert metric(http, gw, 'ian_upstream_redirects_total{kind="track"}') >= 3
    assert gw.output().count(moved["Location"]) == 1  # logged once, not per request
    assert http.get(gw.url + "/status.json").json()["forwarder"]["redirects"] >= 3


def test_a_redirected_token_request_is_not_followed_either(
        gateway: Any, http: httpx.Client, upstream: Upstream, elsewhere: Upstream) -> None:
    upstream.answer_next(TOKEN, 307, headers={"Location": elsewhere.url + TOKEN}, times=2)
    gw = gateway()
    send(http, gw, (evt := event()))
    (received,) = upstream.wait_for(TRACK, 1)  # delivered once the token endpoint answers
    assert event_id(received.json()) == event_id(evt)
    assert elsewhere.hits == []  # the client secret never went anywhere else
    assert metric(http, gw, 'ian_upstream_redirects_total{kind="track"}') == 2
