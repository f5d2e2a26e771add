"""All 35 (ad type, event) pairs of the track document, each accepted with only the fields
the document requires: by the validator, by the sandbox's `POST /v2/ian/track`, and by a
real gateway process that forwards them to the sandbox.

The pairs and the required fields are read from the document's own sentences, quoted
below, never from `gateway.catalog`: a table built from the catalog could not fail.
"""

from __future__ import annotations

import ast
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from gateway.catalog import PAIRS
from gateway.sandbox import Sandbox, create_sandbox
from gateway.validate import validate_event
from tests.sandbox.bodies import token
from tests.support import ThreadServer, thread_server

# track doc, Request table, `event`: "Supported values for <ad type>: [...]", verbatim.
SUPPORTED = {
    "sponsored_product": "Supported values for SP: ['ian.sponsored_product.viewable_in_viewport', "
    "'ian.sponsored_product.begin_to_render_viewport', 'ian.sponsored_product.1px_in_viewport', "
    "'ian.sponsored_product.clicked', 'ian.sponsored_product.added_to_cart']",
    "display_banner": "Supported values for display banner: ['ian.display.viewport_load_creative', "
    "'ian.display.viewport_1px_creative', 'ian.display.viewport_viewable_creative', "
    "'ian.display.viewport_viewable_creative_asset', 'ian.display.click_creative', "
    "'ian.display.viewport_viewable_begin_to_render_creative', "
    "'ian.display.viewport_viewable_begin_to_render_creative_asset']",
    "shoppable_display": "Supported values for shoppable display: "
    "['ian.display.viewport_load_creative', 'ian.display.viewport_1px_creative', "
    "'ian.display.viewport_viewable_creative', 'ian.display.viewport_viewable_creative_asset', "
    "'ian.display.click_creative', 'ian.display.viewport_viewable_begin_to_render_creative', "
    "'ian.display.viewport_viewable_begin_to_render_creative_asset']",
    "shoppable_video": "Supported values for shoppable video: "
    "['ian.display.viewport_load_creative', 'ian.display.viewport_1px_creative', "
    "'ian.display.viewport_viewable_creative', 'ian.display.click_creative', "
    "'ian.display.viewport_viewable_begin_to_render_creative_asset', "
    "'ian.display.viewport_video_begin_to_render', 'ian.display.viewport_1px_video', "
    "'ian.display.viewport_video_viewable']",
    "shoppable_display_item": "Supported values for shoppable display item: "
    "['ian.display.add_creative_item', 'ian.display.click_creative_item', "
    "'ian.display.viewport_1px_creative_item', 'ian.display.viewport_viewable_creative_item']",
    "shoppable_video_item": "Supported values for shoppable video item: "
    "['ian.display.add_creative_item', 'ian.display.click_creative_item', "
    "'ian.display.viewport_1px_creative_item', 'ian.display.viewport_viewable_creative_item']",
}

# track doc, the interaction_id row of each object that has one, verbatim; the
# sponsored-product object (FeaturedProductEventProperties) has no such row.
CREATIVE_CLICK = ("This field is required for the following events: "
                  "['ian.display.click_creative'].")
ITEM_INTERACTION = ("This field is required for the following events: "
                    "['ian.display.add_creative_item', 'ian.display.click_creative_item'].")
INTERACTION_RULE = {
    "display_banner": CREATIVE_CLICK,
    "shoppable_display": CREATIVE_CLICK,
    "shoppable_video": CREATIVE_CLICK,
    "shoppable_display_item": ITEM_INTERACTION,
    "shoppable_video_item": ITEM_INTERACTION,
}
# track doc, asset_type of the display banner, shoppable display and shoppable video objects.
ASSET_RULE = ("Required for events at the asset level (ex: "
              "'ian.display.viewport_viewable_begin_to_render_creative_asset' and "
              "'ian.display.viewport_viewable_creative_asset').")
ASSET_LEVEL = ("display_banner", "shoppable_display", "shoppable_video")
# track doc, 400 table: 'Missing product id | "can't be blank" | 1001 |
# {"key":"data.shoppable_video_item_data.product_id"}'; both item objects describe
# product_id alike ("The product ID corresponding to the display shoppable ad event.").
PRODUCT_RULE = ("shoppable_display_item", "shoppable_video_item")
# track doc, 400 table: 'Missing event context | "can't be blank"' (the gateway sets it).
CONTEXT = {"user_agent": "Mozilla/5.0 (shopper)", "user_ip": "203.0.113.9"}


def listed(sentence: str) -> list[str]:
    """The Python-style list a quoted sentence ends with."""
    names = ast.literal_eval(sentence[sentence.index("["):sentence.rindex("]") + 1])
    assert isinstance(names, list)
    return [str(name) for name in names]


DOCUMENT_PAIRS = [(ad, name) for ad, sentence in SUPPORTED.items() for name in listed(sentence)]


def required_fields(ad: str, name: str) -> dict[str, str]:
    """The data object's fields the document requires for `name`, plus event_id
    (docs/contract.md, "Validation": the one field the gateway requires beyond the
    document, for dedupe)."""
    fields = {"event_id": str(uuid.uuid4())}
    if ad in INTERACTION_RULE and name in listed(INTERACTION_RULE[ad]):
        fields["interaction_id"] = str(uuid.uuid4())
    if ad in ASSET_LEVEL and name in re.findall(r"'([^']+)'", ASSET_RULE):
        fields["asset_type"] = "image"
    if ad in PRODUCT_RULE:
        fields["product_id"] = "987"
    return fields


def minimal(ad: str, name: str, context: bool = False) -> dict[str, Any]:
    """A browser event of the pair with nothing the document does not require."""
    fields: dict[str, Any] = required_fields(ad, name)
    if context:
        fields["event_tracking_context"] = dict(CONTEXT)
    return {"event": name, "user_id": "u-42", "data": {f"{ad}_data": fields}}


def test_the_document_has_35_pairs_and_the_catalog_the_same() -> None:
    assert len(DOCUMENT_PAIRS) == len(set(DOCUMENT_PAIRS)) == 35
    assert {(name, ad) for ad, name in DOCUMENT_PAIRS} == PAIRS


@pytest.mark.parametrize(("ad", "name"), DOCUMENT_PAIRS)
def test_the_validator_accepts_the_minimal_event(ad: str, name: str) -> None:
    assert validate_event(minimal(ad, name, context=True)) == []


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[tuple[Sandbox, ThreadServer]]:
    sandbox = create_sandbox(client_id="sandbox-client", client_secret="sandbox-secret")
    with thread_server(sandbox) as server:
        yield sandbox, server


def test_the_sandbox_accepts_every_minimal_event(
        sandbox_server: tuple[Sandbox, ThreadServer], http: httpx.Client) -> None:
    server = sandbox_server[1]
    bearer = {"Authorization": f"Bearer {token(http, server.url)}"}
    for ad, name in DOCUMENT_PAIRS:
        answer = http.post(f"{server.url}/v2/ian/track", json=minimal(ad, name, context=True),
                           headers=bearer)
        assert (answer.status_code, answer.json()) == (
            200, {"message": "Successfully processed"}), (ad, name)


def test_the_gateway_accepts_and_delivers_every_minimal_event(
        sandbox_server: tuple[Sandbox, ThreadServer], spawn: Callable[..., Any],
        http: httpx.Client) -> None:
    sandbox, server = sandbox_server
    sandbox.reset()
    gateway = spawn(["serve", "--host", "127.0.0.1"], env={
        "IAN_UPSTREAM_URL": server.url, "IAN_CLIENT_ID": "sandbox-client",
        "IAN_CLIENT_SECRET": "sandbox-secret", "IAN_SPOOL": "memory:",
        "IAN_LOG_FORMAT": "text"})
    events = [minimal(ad, name) for ad, name in DOCUMENT_PAIRS]
    answer = http.post(f"{gateway.url}/v1/events", json={"events": events},
                       headers={"User-Agent": "Mozilla/5.0 (shopper)"})
    assert answer.status_code == 202
    assert answer.json() == {"accepted": 35, "duplicates": 0, "rejected": []}
    deadline = time.monotonic() + 15
    while sandbox.store.stats["track"].accepted < 35 and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = sandbox.store.stats["track"]
    assert (stats.accepted, stats.rejected) == (35, 0)
    received = {(r["body"]["event"], *r["body"]["data"]) for r in
                sandbox.store.received("track")}
    assert received == {(name, f"{ad}_data") for ad, name in DOCUMENT_PAIRS}
