"""Validation of one track event, the way `POST /v2/ian/track` validates it.

Walks the catalog; every message, code and meta key is the track document's.
Unknown fields are not looked at, so they pass through untouched.
"""

from __future__ import annotations

import reprlib
from datetime import datetime
from typing import Any

from gateway.catalog import (
    EVENT_NAMES,
    REQUIRED,
    USER_AGENT_MAX,
    USER_ID_MAX,
    AdType,
    Found,
    ad_data,
    is_blank,
)
from gateway.errors import BLANK, INVALID_CODE, NO_USER_ID, NO_USER_ID_CODE, error, invalid, issues
from gateway.types import Error

NOT_A_TIME = "must be an ISO 8601 time with a time zone designator"


def validate_event(event: Any) -> list[Error]:
    """Every error the track endpoint would answer for `event`; empty when it is valid."""
    return validate_found(event, ad_data(event))


def validate_found(event: Any, found: Found | None) -> list[Error]:
    """`validate_event` for a caller that has looked up the event's data object already."""
    if not isinstance(event, dict):
        return [issues()]
    errors = check_user_id(event.get("user_id"))
    errors += check_sent_at(event.get("sent_at"))
    if found is None:
        # track doc: "Missing event data*" and "Extra event data*" -> 9999
        return [*errors, issues()]
    ad, fields = found
    name = event.get("event")
    if not isinstance(name, str) or name not in EVENT_NAMES or name not in ad.events:
        # track doc: "Invalid event name Clicked an ad", key "data"
        errors.append(invalid(f"Invalid event name {shown(name)}", "data"))
        return errors
    return errors + check_fields(ad, name, fields)


def shown(value: Any) -> str:
    """A value as a message shows it: a string as sent, anything else by `reprlib`, whose
    output is bounded in depth and length (a list nested 1,000 deep overflows `str`)."""
    return value if isinstance(value, str) else reprlib.repr(value)


def check_user_id(user_id: Any) -> list[Error]:
    if is_blank(user_id):
        # track doc: "No event params" -> 4001, no meta
        return [error(NO_USER_ID, NO_USER_ID_CODE)]
    if not isinstance(user_id, str | int) or isinstance(user_id, bool):
        return [invalid("must be a string", "user_id")]
    if len(str(user_id)) > USER_ID_MAX:
        return [invalid(f"is too long (maximum is {USER_ID_MAX} characters)", "user_id")]
    return []


def check_sent_at(sent_at: Any) -> list[Error]:
    """track doc: sent_at is ISO 8601 with the time zone designator appended."""
    if sent_at is None:
        return []  # the gateway fills it in at enrichment; the sandbox requires nothing more
    if has_offset(sent_at):
        return []
    return [invalid(NOT_A_TIME, "sent_at")]


def has_offset(value: Any) -> bool:
    return parse_time(value) is not None


def parse_time(value: Any) -> datetime | None:
    """A time as the track and order-log documents write it: "ISO8601 format with the time
    zone designator (TZD) appended"; None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def check_fields(ad: AdType, name: str, fields: dict[str, Any]) -> list[Error]:
    prefix = f"data.{ad.data_key}."
    errors = check_context(fields.get("event_tracking_context"), prefix)
    for field in REQUIRED[(name, ad.name)]:
        if is_blank(fields.get(field)):
            errors.append(invalid(BLANK, prefix + field))
    rules = ad.fields
    for field, value in fields.items():  # an event carries fewer fields than there are rules
        check = rules.get(field)
        if check is None or value is None or value == "":
            continue
        message = check(value)
        if message is not None:
            errors.append(invalid(message, prefix + field))
    return errors


def check_context(context: Any, prefix: str) -> list[Error]:
    key = prefix + "event_tracking_context"
    if not isinstance(context, dict) or not context:
        # track doc: "Missing event context" -> "can't be blank"
        return [invalid(BLANK, key)]
    user_agent = context.get("user_agent")
    if isinstance(user_agent, str) and len(user_agent) > USER_AGENT_MAX:
        message = f"is too long (maximum is {USER_AGENT_MAX} characters)"
        return [error(message, INVALID_CODE, key + ".user_agent")]
    return []
