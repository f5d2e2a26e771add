"""The sandbox clock: real time plus an offset that `POST /_sandbox/clock` advances.

Order lifecycles, the order-log three-day rule, holds that expire or whose window
passes, and the pause between one user's orders read it, so tests move time
instead of sleeping. Token expiry does not: the gateway refreshes on real time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()
        self.started = datetime.now(UTC)  # fixed-window holds and expiring holds count from it

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("advance_s must be >= 0: the sandbox clock never goes back")
        self.offset += timedelta(seconds=seconds)
        return self.now()

    def reset(self) -> None:
        self.offset = timedelta()
        self.started = datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, as the documents' examples write times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
