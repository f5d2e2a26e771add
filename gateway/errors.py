"""Instacart's error object, as every 4xx answer carries it.

track doc, "4XX Errors": `{"error": {"message": ..., "error_code": ...}, "meta": {"key": ...}}`;
rows whose meta is "Not applicable" carry no meta.
"""

from __future__ import annotations

from gateway.types import Error

# track doc: "Missing event data*" / "Extra event data*" / malformed request.
ISSUES = "There were issues with your request"
ISSUES_CODE = 9999
# track doc: "No event params".
NO_USER_ID = "Couldn't find user_id in the request"
NO_USER_ID_CODE = 4001
# track doc: every field-level row.
INVALID_CODE = 1001
BLANK = "can't be blank"
# track and order-log docs: a value outside its field's list (event name, record version...).
NOT_IN_LIST = "is not included in the list"


def error(message: str, code: int, key: str | None = None) -> Error:
    """One error object; `key` becomes `meta.key` when the document gives one."""
    if key is None:
        return {"error": {"message": message, "error_code": code}}
    return {"error": {"message": message, "error_code": code}, "meta": {"key": key}}


def invalid(message: str, key: str) -> Error:
    """A field-level error (code 1001) at `key`."""
    return error(message, INVALID_CODE, key)


def issues() -> Error:
    """The catch-all 9999 error for a request whose shape is wrong."""
    return error(ISSUES, ISSUES_CODE)
