"""nginx configurations for the benchmark: the upstream stub and the HTTP ceiling.

Both are Debian's nginx with one worker answering a fixed body with `return`
(nginx discards a POST body before it answers). The stub counts what it
received: each `POST /v2/ian/track` appends one line of `COUNT_LINE` bytes to
an access log, so `received = size // COUNT_LINE` is exact, cheap and real time
(unbuffered log), and counts only what really crossed the loopback.
"""

from __future__ import annotations

import os
from pathlib import Path

TRACK_ANSWER = '{"message":"Successfully processed"}'  # track doc: the 200 answer
TOKEN_ANSWER = '{"access_token":"bench","token_type":"Bearer","expires_in":86400}'
COUNT_LINE = 2  # "1\n"


def _common(workdir: Path) -> str:
    user = "user root root;\n" if os.geteuid() == 0 else ""  # workers may use the temp dirs
    temp = "".join(
        f"  {name}_temp_path {workdir / name};\n"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}worker_processes 1;\n"
        "daemon off;\n"
        "master_process on;\n"
        f"pid {workdir / 'nginx.pid'};\n"
        f"error_log {workdir / 'error.log'} warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        "  access_log off;\n"
        "  keepalive_requests 10000000;\n"
        "  keepalive_timeout 75s;\n"
        "  default_type application/json;\n"
        f"{temp}"
        "  log_format count '1';\n"
        "  log_format protocol '$server_protocol $connection';\n"
    )


def stub_conf(workdir: Path, port: int) -> str:
    """The Connect stand-in: track and order log answer 200 and are counted."""
    return _common(workdir) + (
        "  server {\n"
        f"    listen 127.0.0.1:{port} backlog=4096;\n"
        "    location = /v2/ian/track {\n"
        f"      access_log {track_log(workdir)} count;\n"
        f"      return 200 '{TRACK_ANSWER}';\n"
        "    }\n"
        "    location = /v2/ian/order/log {\n"
        f"      access_log {workdir / 'order_log.log'} count;\n"
        f"      return 200 '{TRACK_ANSWER}';\n"
        "    }\n"
        f"    location = /v2/oauth/token {{ return 200 '{TOKEN_ANSWER}'; }}\n"
        "    location / { return 404 '{\"message\":\"not found\"}'; }\n"
        "  }\n"
        "}\n"
    )


ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"  # Debian: libnginx-mod-http-echo
FIELD_DELAY = 0.04  # seconds: a distant HTTPS upstream's round trip (the field setting)


def field_conf(workdir: Path, port: int, cert: Path, key: Path, http2: bool = True,
               delay: float = FIELD_DELAY, log: str = "count") -> str:
    """The stub as the field sees Instacart: TLS (HTTP/2 offered by ALPN), answers after `delay`.

    The echo module's `echo_sleep` waits without holding the worker, so one nginx
    worker keeps thousands of requests waiting at once; nginx's default cap of
    128 concurrent HTTP/2 streams per connection stays as it is. `log="protocol"`
    logs each track request's protocol and connection number instead of counting it.
    """
    sleep = f"echo_sleep {delay:g}; echo -n '{TRACK_ANSWER}';"
    return f"load_module {ECHO_MODULE};\n" + _common(workdir) + (
        "  server {\n"
        f"    listen 127.0.0.1:{port} ssl{' http2' if http2 else ''} backlog=4096;\n"
        f"    ssl_certificate {cert};\n"
        f"    ssl_certificate_key {key};\n"
        "    ssl_session_cache shared:tls:10m;\n"
        "    location = /v2/ian/track {\n"
        f"      access_log {track_log(workdir)} {log};\n"
        f"      {sleep}\n"
        "    }\n"
        "    location = /v2/ian/order/log {\n"
        f"      access_log {workdir / 'order_log.log'} count;\n"
        f"      {sleep}\n"
        "    }\n"
        f"    location = /v2/oauth/token {{ return 200 '{TOKEN_ANSWER}'; }}\n"
        "    location / { return 404 '{\"message\":\"not found\"}'; }\n"
        "  }\n"
        "}\n"
    )


def ceiling_conf(workdir: Path, port: int) -> str:
    """The machine's HTTP ceiling: every request answers the same 200, nothing logged."""
    return _common(workdir) + (
        "  server {\n"
        f"    listen 127.0.0.1:{port} backlog=4096;\n"
        f"    location / {{ return 200 '{TRACK_ANSWER}'; }}\n"
        "  }\n"
        "}\n"
    )


def track_log(workdir: Path) -> Path:
    return workdir / "track.log"


def received(workdir: Path) -> int:
    """Track requests the stub has answered so far."""
    try:
        return track_log(workdir).stat().st_size // COUNT_LINE
    except FileNotFoundError:
        return 0


def prepare(workdir: Path, conf: str) -> Path:
    """Write `conf` and the directories it names; the path to pass to `nginx -c`."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "nginx.conf"
    path.write_text(conf)
    return path


def nginx_argv(conf: Path) -> list[str]:
    return ["nginx", "-c", str(conf), "-p", str(conf.parent)]
