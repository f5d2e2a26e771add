"""Fault injection: errors, latency, outages and dropped connections on Connect calls.

Admin `PUT /_sandbox/faults` and the start-up flags set the same `FaultConfig`.
The decision is made before authentication, as a failing load balancer would.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from gateway.errors import error
from gateway.sandbox.http import DROP, Response, error_response, errors_response, is_int, is_number
from gateway.types import JSON


class FaultError(ValueError):
    """A fault setting is out of range; the message names it."""


@dataclass(frozen=True, slots=True)
class FaultConfig:
    error_rate: float = 0.0  # share of Connect calls answered with `status`
    status: int = 503
    latency_ms: float = 0.0  # added before every Connect call is handled
    outage: bool = False  # every Connect call answers `status`
    retry_after_s: float = 1.0  # Retry-After on 429 and 503
    drop_rate: float = 0.0  # share of Connect calls whose connection is closed unanswered
    seed: int | None = None  # seeds the dice, for repeatable tests
    # doc 002, "Request could not be processed at this time": while > 0, creating a delivery
    # order answers 400 2003 "try again later" with meta {"wait": "<this many seconds>"}
    try_later_s: float = 0.0

    @property
    def active(self) -> bool:
        return bool(self.error_rate or self.latency_ms or self.outage or self.drop_rate)

    def as_json(self) -> JSON:
        """The settings; `try_later_s` only when set, so the answer of a sandbox that does
        not use it is the one it has always been."""
        settings = asdict(self)
        if not self.try_later_s:
            del settings["try_later_s"]
        return settings

    @classmethod
    def from_json(cls, payload: Any) -> FaultConfig:
        """A config from the admin API's JSON; missing keys take their defaults."""
        if not isinstance(payload, dict):
            raise FaultError("faults must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise FaultError(f"unknown fault settings: {', '.join(unknown)}")
        return cls().updated(payload)

    def updated(self, changes: dict[str, Any]) -> FaultConfig:
        config = replace(self, **changes)
        config.check()
        return config

    def check(self) -> None:
        for name in ("error_rate", "drop_rate"):
            value = getattr(self, name)
            if not is_number(value) or not 0 <= value <= 1:
                raise FaultError(f"{name} must be a number from 0 to 1")
        for name in ("latency_ms", "retry_after_s", "try_later_s"):
            value = getattr(self, name)
            if not is_number(value) or value < 0:
                raise FaultError(f"{name} must be a number >= 0")
        if not is_int(self.status) or not 400 <= self.status <= 599:
            raise FaultError("status must be an HTTP error status from 400 to 599")
        if not isinstance(self.outage, bool):
            raise FaultError("outage must be true or false")
        if self.seed is not None and not is_int(self.seed):
            raise FaultError("seed must be an integer or null")


# doc 002: "Request could not be processed at this time" -> this message, code 2003.
TRY_LATER = "The request could not be completed at this time, try again later."
# Not in the documents: the bodies of injected failures, in Instacart's error form.
MESSAGES = {
    429: TRY_LATER,
    503: "Service Unavailable",
}


class Faults:
    """The current `FaultConfig`, its dice and its precomputed failure answer."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.config = FaultConfig()
        self.failure = DROP
        self.try_later: Response | None = None  # what creating a delivery order answers
        self.random = random.Random()
        self.set(config or FaultConfig())

    def set(self, config: FaultConfig) -> None:
        config.check()
        self.config = config
        self.random = random.Random(config.seed)
        self.failure = failure_response(config.status, config.retry_after_s)
        self.try_later = try_later_response(config.try_later_s) if config.try_later_s else None

    async def inject(self) -> Response | None:
        """The answer a faulty upstream gives instead of handling the call, if any."""
        config = self.config
        if not config.active:
            return None
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000)
        if config.outage:
            return self.failure
        if config.drop_rate and self.random.random() < config.drop_rate:
            return DROP
        if config.error_rate and self.random.random() < config.error_rate:
            return self.failure
        return None


def try_later_response(wait_s: float) -> Response:
    # doc 002: 400 "Request could not be processed at this time", meta {"wait":"30"}: a string
    return errors_response([{"error": {"message": TRY_LATER, "error_code": 2003},
                             "meta": {"wait": whole_seconds(wait_s)}}])


def whole_seconds(seconds: float) -> str:
    # RFC 9110: Retry-After is whole seconds; round up so a client never comes back early
    return str(math.ceil(seconds))


def failure_response(status: int, retry_after_s: float) -> Response:
    message = MESSAGES.get(status, "Internal Server Error" if status >= 500 else "Bad Request")
    body = error(message, 2003 if status == 429 else status)
    if status not in (429, 503):
        return error_response(status, body)
    wait = whole_seconds(retry_after_s)
    if status == 429:
        body["meta"] = {"wait": wait}  # doc 002, code 2003: {"wait": "30"}
    return error_response(status, body, ((b"retry-after", wait.encode()),))
