"""`ian-gateway orders import FILE.jsonl`: backfill orders through `POST /v1/orders`.

One order per line. Lines are sent in batches of up to 500 (docs/contract.md:
`{"orders": [...]}`, the batch form for backfills), each line's raw JSON as it
is, so what the gateway validates is exactly what the file says. 503 and 429 are
retried honouring `Retry-After`; a 413 splits the batch in two. Sending twice is
safe: the gateway answers orders it has seen as duplicates, so an interrupted
import is re-run from the start. Progress goes to stderr, the summary to stdout.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any

import httpx
import orjson

from gateway.orders.intake import MAX_BATCH

DEFAULT_URL = "http://127.0.0.1:8080"  # `ian-gateway serve`'s default port
ORDERS_PATH = "/v1/orders"
KEY_ENV = "IAN_ORDERS_API_KEY"
# docs/contract.md: the gateway's 429 (rate limit) and 503 (spool full) carry Retry-After.
RETRY_STATUSES = frozenset({429, 503})
MAX_RETRY_AFTER = 60.0  # seconds; a longer Retry-After is a wrong one, not a plan
BOM = b"\xef\xbb\xbf"


class Fatal(Exception):
    """The import cannot go on (wrong key, wrong URL, gateway gone); the message says why."""


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based line number in the file
    raw: bytes  # the line's JSON, stripped


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    reasons: list[str]


@dataclass
class Summary:
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def add(self, answer: dict[str, Any], lines: list[Line]) -> None:
        """Count one batch answer: `{"accepted", "duplicates", "rejected": [...]}`."""
        self.accepted += answer["accepted"]
        self.duplicates += answer["duplicates"]
        for rejected in answer["rejected"]:
            line = lines[rejected["index"]].number
            self.rejected.append(Rejection(line, [reason(e) for e in rejected["errors"]]))


def reason(error: Any) -> str:
    """`properties.order_id: can't be blank (1001)` from Instacart's error object."""
    if not isinstance(error, dict):
        return str(error)
    body = error.get("error", {})
    key = error.get("meta", {}).get("key")
    text = f"{body.get('message')} ({body.get('error_code')})"
    return f"{key}: {text}" if key else text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE.jsonl", help="one order.created per line")
    parser.add_argument("--url", default=DEFAULT_URL,
                        help=f"the gateway's base URL (default {DEFAULT_URL})")
    parser.add_argument("--key", default=None,
                        help=f"an IAN_ORDERS_API_KEYS key (default ${KEY_ENV}; prefer the "
                             "environment: other users can read a flag in `ps`)")
    parser.add_argument("--batch", type=batch_size, default=MAX_BATCH,
                        help=f"orders per request, 1 to {MAX_BATCH} (default {MAX_BATCH})")
    parser.add_argument("--retries", type=int, default=30,
                        help="attempts per batch on 503/429/5xx/no answer (default 30)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds one request may take (default 60)")


def batch_size(value: str) -> int:
    size = int(value)
    if not 1 <= size <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_BATCH}")
    return size


def run(args: argparse.Namespace) -> int:
    """0: every order accepted or a duplicate; 1: some rejected; 2: the import stopped."""
    key = args.key or os.environ.get(KEY_ENV, "")
    if not key:
        print(f"ian-gateway: an orders API key is required (--key or {KEY_ENV})", file=sys.stderr)
        return 2
    if not args.file.is_file():
        print(f"ian-gateway: {args.file}: no such file", file=sys.stderr)
        return 2
    # httpx logs every request at INFO: a line per batch would drown the progress bar
    logging.getLogger("httpx").setLevel(logging.WARNING)
    started = time.monotonic()
    summary = Summary()
    progress = Progress(args.file.stat().st_size, sys.stderr)
    with args.file.open("rb") as source, httpx.Client(timeout=args.timeout) as client:
        sender = Sender(client, endpoint(args.url), key, args.retries)
        try:
            import_file(source, args.batch, sender, summary, progress)
        except Fatal as fatal:
            progress.finish(summary, complete=False)
            print_summary(summary, args.file, time.monotonic() - started)
            print(f"ian-gateway: import stopped: {fatal}; re-running it is safe "
                  "(orders already taken come back as duplicates)", file=sys.stderr)
            return 2
    progress.finish(summary)
    print_summary(summary, args.file, time.monotonic() - started)
    return 1 if summary.rejected else 0


def endpoint(url: str) -> str:
    """`http://gw:8080` or `http://gw:8080/v1/orders`: both mean the orders endpoint."""
    base = url.rstrip("/")
    return base if base.endswith(ORDERS_PATH) else base + ORDERS_PATH


def import_file(source: IO[bytes], size: int, sender: Sender, summary: Summary,
                progress: Progress) -> None:
    for batch in batches(source, size, summary):
        sender.send(batch, summary)
        progress.update(source.tell(), summary)


def batches(source: IO[bytes], size: int, summary: Summary) -> Iterator[list[Line]]:
    """Lines of JSON in batches of `size`; a line that is not JSON is rejected here."""
    batch: list[Line] = []
    for number, raw in enumerate(source, start=1):
        line = raw.removeprefix(BOM).strip() if number == 1 else raw.strip()
        if not line:
            continue
        summary.read += 1
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            summary.rejected.append(Rejection(number, [f"not JSON: {exc}"]))
            continue
        batch.append(Line(number, line))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Sender:
    """POSTs batches to /v1/orders; retries what the gateway asks to be retried."""

    def __init__(self, client: httpx.Client, url: str, key: str, retries: int,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._url = url
        self._headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self._retries = max(retries, 1)
        self._sleep = sleep

    def send(self, lines: list[Line], summary: Summary) -> None:
        answer = self._post(body(lines))
        if answer.status_code == 413:
            self._split(lines, summary)
        elif answer.status_code in (202, 400):
            summary.add(batch_answer(answer, len(lines)), lines)
        else:
            raise Fatal(unexpected(answer))

    def _split(self, lines: list[Line], summary: Summary) -> None:
        """The gateway's body limit is smaller than this batch: halve it."""
        if len(lines) == 1:
            summary.rejected.append(Rejection(lines[0].number, ["order over the body limit (413)"]))
            return
        half = len(lines) // 2
        self.send(lines[:half], summary)
        self.send(lines[half:], summary)

    def _post(self, content: bytes) -> httpx.Response:
        for attempt in range(1, self._retries + 1):
            try:
                answer = self._client.post(self._url, content=content, headers=self._headers)
            except httpx.TransportError as exc:
                if attempt == self._retries:
                    raise Fatal(f"no answer from {self._url}: {exc!r}") from None
                self._sleep(backoff(attempt))
                continue
            if answer.status_code == 401:
                raise Fatal(f"the gateway refused the key (401); check --key or ${KEY_ENV}")
            if not retryable(answer.status_code):
                return answer
            if attempt == self._retries:
                raise Fatal(f"gave up after {attempt} attempts: {unexpected(answer)}")
            self._sleep(retry_after(answer, attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")


def retryable(status: int) -> bool:
    return status in RETRY_STATUSES or status >= 500


def body(lines: list[Line]) -> bytes:
    """`{"orders": [...]}` from the lines' raw JSON, each already checked to parse."""
    return b'{"orders":[' + b",".join(line.raw for line in lines) + b"]}"


def batch_answer(answer: httpx.Response, size: int) -> dict[str, Any]:
    """The batch answer, checked; a 400 `{"errors": [...]}` means the envelope was refused."""
    try:
        payload = answer.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict) or not is_batch_answer(payload, size):
        raise Fatal(unexpected(answer))
    return payload


def is_batch_answer(payload: dict[str, Any], size: int) -> bool:
    counts = (payload.get("accepted"), payload.get("duplicates"))
    rejected = payload.get("rejected")
    if not all(isinstance(n, int) for n in counts) or not isinstance(rejected, list):
        return False
    return all(isinstance(r, dict) and isinstance(r.get("index"), int)
               and 0 <= r["index"] < size and isinstance(r.get("errors"), list)
               for r in rejected)


def unexpected(answer: httpx.Response) -> str:
    return f"unexpected answer {answer.status_code} from {answer.url}: {answer.text[:300]}"


def backoff(attempt: int) -> float:
    return float(min(0.25 * 2**attempt, 10.0))


def retry_after(answer: httpx.Response, attempt: int) -> float:
    """RFC 9110: Retry-After is delay-seconds or an HTTP-date; absent, back off."""
    value = answer.headers.get("retry-after", "").strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        delay = parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return backoff(attempt)
    return min(max(delay, 0.0), MAX_RETRY_AFTER)


class Progress:
    """A plain-text bar on stderr: redrawn in place on a terminal, a line per 10% otherwise."""

    WIDTH = 30

    def __init__(self, total: int, stream: IO[str]) -> None:
        self._total = max(total, 1)
        self._stream = stream
        self._tty = stream.isatty()
        self._tenth = -1  # the last tenth printed, when not a terminal
        self._drawn = -math.inf  # when the bar was last redrawn, on a terminal
        self._text = ""  # what was last written
        self._fraction = 0.0  # how far the last update got

    def update(self, done: int, summary: Summary) -> None:
        fraction = self._fraction = min(done / self._total, 1.0)
        if self._tty:
            now = time.monotonic()
            if now - self._drawn >= 0.1:  # ten redraws a second are plenty
                self._drawn = now
                self._write(self.render(fraction, summary))
            return
        if int(fraction * 10) != self._tenth:
            self._tenth = int(fraction * 10)
            self._write(self.render(fraction, summary))

    def finish(self, summary: Summary, complete: bool = True) -> None:
        """The final state, once; on a terminal, the cursor moves past the bar."""
        text = self.render(1.0 if complete else self._fraction, summary)
        if text != self._text:
            self._write(text)
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()

    def render(self, fraction: float, summary: Summary) -> str:
        filled = int(fraction * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        return (f"[{bar}] {fraction:4.0%}  {summary.read} orders: "
                f"{summary.accepted} accepted, {summary.duplicates} duplicates, "
                f"{len(summary.rejected)} rejected")

    def _write(self, text: str) -> None:
        if self._tty:  # overwrite the previous bar, blanking what a longer one left
            self._stream.write("\r" + text.ljust(len(self._text)))
        else:
            self._stream.write(text + "\n")
        self._stream.flush()
        self._text = text


def print_summary(summary: Summary, path: Path, seconds: float) -> None:
    print(f"{path}: {summary.read} orders read in {seconds:.1f} s")
    print(f"sent: {summary.accepted} accepted, {summary.duplicates} duplicates, "
          f"{len(summary.rejected)} rejected")
    for rejection in sorted(summary.rejected, key=lambda r: r.line):
        print(f"  line {rejection.line}: {'; '.join(rejection.reasons)}")
