"""The OpenAPI document (`GET /openapi.json`, gateway/static/openapi.json).

Schemathesis generates requests from it and sends them to a real `ian-gateway
serve` (the sandbox as upstream): no answer may be a server error, and every
answer must be one the document lists, with its content type, headers and schema;
and every event the document calls valid must be taken.
The other tests hold the document to the code: the catalog's event names, ad
types and required fields, and the batch limits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi import checks

from gateway import intake
from gateway.catalog import AD_TYPES, REQUIRED
from gateway.openapi import load
from gateway.orders import intake as order_intake
from tests.support.served import ORDERS_KEY, Served, served

DOCUMENT: dict[str, Any] = json.loads(load())
SCHEMAS: dict[str, Any] = DOCUMENT["components"]["schemas"]
# What the issue asks of every answer: never a server error, and nothing outside the document.
CHECKS = [
    schemathesis.checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.unsupported_method,
]
# And an event valid by the document is taken (202). An order valid by it may still be
# refused: the order log's three-day window on created_at_utc is not a schema's to say.
ACCEPTS_VALID = {"POST /v1/events"}

CONFIG = schemathesis.Config.from_dict({
    "generation": {"max-examples": 40, "deterministic": True},
    "checks": {"positive_data_acceptance": {"expected-statuses": ["202"]}},
    "auth": {"openapi": {"ordersKey": {"bearer": ORDERS_KEY}}},
    "operations": [
        # The coverage phase enumerates every branch x field variant of the event
        # schema (~8,700 requests, ~70 s here): the beacons are fuzzed instead.
        {"include-operation-id": "postEvents", "phases": {"coverage": {"enabled": False}},
         "generation": {"max-examples": 60}},
    ],
})


@schemathesis.serializer("text/plain")
def beacon_text(_: Any, value: Any) -> bytes:
    """navigator.sendBeacon's body: the JSON text of the events, sent as text/plain."""
    return value if isinstance(value, bytes) else json.dumps(value).encode()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("openapi")) as running:
        yield running


@pytest.fixture(scope="module")
def api(gateway: Served) -> Any:
    """The document as the gateway serves it, pointed at that gateway."""
    return schemathesis.openapi.from_url(f"{gateway.gateway.url}/openapi.json", config=CONFIG)


schema = schemathesis.pytest.from_fixture("api")


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_in_the_document(case: schemathesis.Case) -> None:
    valid = [checks.positive_data_acceptance] if case.operation.label in ACCEPTS_VALID else []
    case.call_and_validate(checks=[*CHECKS, *valid])


def test_the_route_serves_the_file(gateway: Served) -> None:
    answer = httpx.get(f"{gateway.gateway.url}/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.content == load()


def event_branches() -> list[dict[str, Any]]:
    branches: list[dict[str, Any]] = SCHEMAS["Event"]["anyOf"]
    return branches


def data_of(branch: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (data_key, data), = branch["properties"]["data"]["properties"].items()
    return data_key, data


def test_event_names_per_ad_type_are_the_catalogs() -> None:
    documented: dict[str, set[str]] = {}
    for branch in event_branches():
        data_key, _ = data_of(branch)
        documented.setdefault(data_key, set()).update(branch["properties"]["event"]["enum"])
    assert documented == {ad.data_key: set(ad.events) for ad in AD_TYPES}


def test_required_fields_per_event_are_the_catalogs() -> None:
    by_data_key = {ad.data_key: ad for ad in AD_TYPES}
    documented = {}
    for branch in event_branches():
        data_key, data = data_of(branch)
        for name in branch["properties"]["event"]["enum"]:
            documented[(name, by_data_key[data_key].name)] = set(data["required"])
    assert documented == {pair: set(fields) for pair, fields in REQUIRED.items()}


def test_every_ad_type_has_its_data_object() -> None:
    for ad in AD_TYPES:
        name = "".join(part.title() for part in ad.name.split("_")) + "Data"
        assert set(ad.fields) <= set(SCHEMAS[name]["properties"]), ad.name


def test_batch_limits_are_the_intakes() -> None:
    events = SCHEMAS["EventBatch"]["properties"]["events"]
    orders = SCHEMAS["OrderBatch"]["properties"]["orders"]
    assert (events["minItems"], events["maxItems"]) == (1, intake.MAX_BATCH)
    assert (orders["minItems"], orders["maxItems"]) == (1, order_intake.MAX_BATCH)


def test_the_document_is_the_packaged_file() -> None:
    path = Path(__file__).resolve().parent.parent / "gateway" / "static" / "openapi.json"
    assert path.read_bytes() == load()
