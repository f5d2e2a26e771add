"""The `ian-gateway` command line.

`commands()` is the table of subcommands. `sandbox`, `demo`, `deadletters`, `orders import`
and `snippet` live in their own modules, which add their arguments and run them; `serve`,
`forward` and `config` are run here: each reads the settings and starts uvicorn, the
forwarder alone, or a print. Bad configuration fails here, naming the variable, before a
port opens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator

from gateway import __version__, deadletters, demo, sandbox, snippet
from gateway.logs import configure_logging
from gateway.metrics import MULTIPROCESS_DIR
from gateway.orders import importer as order_import
from gateway.settings import ConfigError, Settings, markdown_table


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("IAN_WORKERS", "1")),
                        help="worker processes sharing the spool (default $IAN_WORKERS or 1)")
    parser.add_argument("--log-level", default="info", help="uvicorn log level (default info)")


def run_serve(args: argparse.Namespace) -> int:
    """The gateway: checks configuration, then uvicorn with uvloop and httptools (with the
    IAN_REQUEST_TIMEOUT deadline: gateway/request_timeout.py)."""
    import uvicorn

    from gateway.request_timeout import DeadlineProtocol

    settings = Settings.from_env(os.environ)
    settings.require_upstream()
    configure_logging(settings)  # the parent process's lines too, in the same format
    # uvicorn re-raises the SIGTERM it handled once the graceful shutdown is done; a
    # shutdown asked for and finished is a success (exit 0), not a death by signal.
    signal.signal(signal.SIGTERM, exit_cleanly)
    with shared_metrics(args.workers):
        uvicorn.run(
            "gateway.app:create_app_from_env", factory=True, host=args.host, port=args.port,
            workers=args.workers, log_level=args.log_level, loop="uvloop", http=DeadlineProtocol,
            timeout_graceful_shutdown=20, proxy_headers=False, server_header=False,
            access_log=False, log_config=None,
        )
    return 0


@contextlib.contextmanager
def shared_metrics(workers: int) -> Iterator[None]:
    """With several workers, a fresh directory for their metrics (gateway.metrics), removed
    after; one set by the operator is theirs to keep."""
    if workers <= 1 or os.environ.get(MULTIPROCESS_DIR):
        yield
        return
    directory = tempfile.mkdtemp(prefix="ian-gateway-metrics-")
    os.environ[MULTIPROCESS_DIR] = directory  # the workers inherit it
    try:
        yield
    finally:
        del os.environ[MULTIPROCESS_DIR]
        shutil.rmtree(directory, ignore_errors=True)


def add_forward_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", default="info", help="log level (default info)")


def run_forward(args: argparse.Namespace) -> int:
    """The forwarder in a process of its own; `serve` then runs with IAN_FORWARDER=false."""
    import uvloop

    from gateway.app import forward_until_stopped

    settings = Settings.from_env(os.environ)
    settings.require_upstream()
    configure_logging(settings, level=logging.getLevelName(args.log_level.upper()))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await forward_until_stopped(settings, stop)

    uvloop.run(main())  # the loop `serve` runs on (uvicorn[standard] brings it)
    return 0


def exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--markdown", action="store_true",
                        help="print the configuration table of the README")


def run_config(args: argparse.Namespace) -> int:
    """Print every setting (or the README table); fails naming a malformed variable."""
    if args.markdown:
        print(markdown_table())
        return 0
    settings = Settings.from_env(os.environ)
    for name, value in vars(settings).items():
        print(f"{name} = {shown(name, value)}")
    return 0


SECRETS = frozenset({"access_token", "client_secret", "orders_api_keys"})


def shown(name: str, value: object) -> str:
    """A setting as `config` prints it: secrets, and the password of a URL
    (`redis://:pw@host`, `http://user:pw@proxy:3128`), as ***."""
    if value and name in SECRETS:
        return "'***'"
    if isinstance(value, str) and "@" in value:
        parts = urllib.parse.urlsplit(value)
        if parts.password:
            hidden = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
            return repr(parts._replace(netloc=hidden).geturl())
    return repr(value)


Command = tuple[str, str, Callable[[argparse.ArgumentParser], None],
                Callable[[argparse.Namespace], int]]


def commands() -> list[Command]:
    """(name, help, add_arguments, run) for every subcommand."""
    return [
        ("serve", "run the gateway (needs IAN_UPSTREAM_URL and credentials)",
         add_serve_arguments, run_serve),
        ("forward", "run only the forwarder, on the spool a `serve` with IAN_FORWARDER=false fills",
         add_forward_arguments, run_forward),
        ("sandbox", "run the local Instacart Connect stand-in",
         sandbox.add_arguments, sandbox.run),
        ("demo", "gateway + sandbox + demo storefront in one process",
         demo.add_arguments, demo.run),
        ("deadletters", "list, show, replay or purge dead letters",
         deadletters.add_arguments, deadletters.run),
        ("orders", "server-side order tools (orders import FILE.jsonl)",
         add_orders_arguments, run_orders),
        ("snippet", "print the versioned <script> tag with its SRI hash",
         snippet.add_arguments, snippet.run),
        ("config", "print the configuration read from the environment",
         add_config_arguments, run_config),
    ]


def add_orders_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="orders_command", required=True, metavar="ACTION")
    importer = sub.add_parser("import", help="send a JSONL file of orders to /v1/orders")
    order_import.add_arguments(importer)
    importer.set_defaults(orders_run=order_import.run)


def run_orders(args: argparse.Namespace) -> int:
    run: Callable[[argparse.Namespace], int] = args.orders_run
    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ian-gateway",
        description="First-party ad-event gateway for Instacart's ad network (IAN).",
        epilog="Configuration comes from IAN_* environment variables: `ian-gateway config`.",
    )
    parser.add_argument("--version", action="version", version=f"ian-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text, add_arguments, run in commands():
        command = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(command)
        command.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except ConfigError as exc:  # every command: fail naming the variable, before a port opens
        print(f"ian-gateway: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader left (`ian-gateway config | head`): stop quietly, as other tools do, and
        # point stdout at /dev/null so that Python's own flush at exit does not fail again
        # (Python docs, "signal": note on SIGPIPE).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
