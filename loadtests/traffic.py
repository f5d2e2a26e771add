"""The one traffic model: the events a storefront's snippet sends, and page views of them.

`ad_fields` and `ad_event` build any event of the track document as the
snippet sends it; the locustfile's page views (`PageView`, below), the bench's
beacons (`bench_lua`), the fault tests' load (`tests/faults/loadgen.py`) and
the tests' factories (`tests/support/factories.py`) all draw on them.
Pure Python, no locust import (locust monkey-patches the process with gevent),
so tests check the generated events against `gateway.validate` directly.

One page view, in the proportions a grocery storefront shows (stated here,
tunable as module constants):
- `SPONSORED_PER_PAGE` = 20 sponsored products rendered: every one fires
  begin-to-render, ~90% reach 1 px in the viewport, ~60% become viewable
  (MRC: 50% of pixels for 1 continuous second), ~3% are clicked and ~1% added
  to the cart;
- one display banner: load, 1 px, begin-to-render, ~70% viewable (creative and
  asset level), ~0.5% clicked;
- a shoppable display on ~25% of pages, with 4 items (1 px, ~60% viewable,
  ~2% item clicks, ~1% item adds);
- a shoppable video on ~10% of pages, with 3 items (video begin-to-render,
  1 px, ~50% video viewable).
The snippet flushes three beacons per page view: on render, after the
viewability second, and on interaction (only when there was one). Besides:
~2% of beacons are re-sent as they were (duplicates, e.g. a retried
sendBeacon), ~1% of events are invalid (an event_id that is not a UUID, or an
event name the track document does not know), and ~0.5% of beacons are a lone
invalid event (the gateway answers 400).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.catalog import AD_TYPES, PAIRS

SPONSORED_PER_PAGE = 20
P_1PX = 0.9
P_VIEWABLE = 0.6
P_CLICK = 0.03
P_ADD = 0.01
P_BANNER_VIEWABLE = 0.7
P_BANNER_CLICK = 0.005
P_SHOPPABLE_DISPLAY = 0.25
P_VIDEO = 0.10
ITEMS_PER_DISPLAY = 4
ITEMS_PER_VIDEO = 3
P_ITEM_VIEWABLE = 0.6
P_ITEM_CLICK = 0.02
P_ITEM_ADD = 0.01
P_VIDEO_VIEWABLE = 0.5
P_RESEND = 0.02
P_INVALID_EVENT = 0.01
P_INVALID_BEACON = 0.005
MAX_BATCH = 100  # docs/contract.md, "Endpoints": a beacon carries 1-100 events
# Seconds before each beacon of a page view: render at once, viewable after the MRC second
# (50% of pixels for 1 continuous second) plus scrolling, interactions a few seconds later.
PAUSES = ((0.0, 0.0), (1.0, 2.0), (1.0, 4.0))

# Event names by what happened, per ad type; every pair is checked against the catalog below.
EVENTS: Mapping[str, Mapping[str, str]] = {
    "sponsored_product": {
        "render": "ian.sponsored_product.begin_to_render_viewport",
        "1px": "ian.sponsored_product.1px_in_viewport",
        "viewable": "ian.sponsored_product.viewable_in_viewport",
        "click": "ian.sponsored_product.clicked",
        "add": "ian.sponsored_product.added_to_cart",
    },
    "display_banner": {
        "load": "ian.display.viewport_load_creative",
        "1px": "ian.display.viewport_1px_creative",
        "render": "ian.display.viewport_viewable_begin_to_render_creative",
        "viewable": "ian.display.viewport_viewable_creative",
        "viewable_asset": "ian.display.viewport_viewable_creative_asset",
        "click": "ian.display.click_creative",
    },
    "shoppable_display": {
        "load": "ian.display.viewport_load_creative",
        "1px": "ian.display.viewport_1px_creative",
        "render_asset": "ian.display.viewport_viewable_begin_to_render_creative_asset",
        "viewable": "ian.display.viewport_viewable_creative",
        "click": "ian.display.click_creative",
    },
    "shoppable_video": {
        "load": "ian.display.viewport_load_creative",
        "1px": "ian.display.viewport_1px_creative",
        "video_render": "ian.display.viewport_video_begin_to_render",
        "video_1px": "ian.display.viewport_1px_video",
        "video_viewable": "ian.display.viewport_video_viewable",
        "viewable": "ian.display.viewport_viewable_creative",
    },
    "shoppable_display_item": {
        "1px": "ian.display.viewport_1px_creative_item",
        "viewable": "ian.display.viewport_viewable_creative_item",
        "click": "ian.display.click_creative_item",
        "add": "ian.display.add_creative_item",
    },
}
EVENTS = {**EVENTS, "shoppable_video_item": EVENTS["shoppable_display_item"]}
UNKNOWN_EVENT = "ian.sponsored_product.hovered"  # not in the track document
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36",
)

BY_NAME = {ad.name: ad for ad in AD_TYPES}

assert all((name, ad) in PAIRS for ad, names in EVENTS.items() for name in names.values())


def now() -> str:
    """track doc: sent_at is ISO 8601 with the time zone designator."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def ad_fields(ad_type: str, tracking_id: str, product_id: str, position: int = 1,
              organic_position: int | None = None, block_number: int | None = None
              ) -> dict[str, str]:
    """What one ad carries in every event it fires: its tracking id and, by ad type, its
    place in the grid (a sponsored product), its product (an item) or its creative."""
    fields = {"object_tracking_id": tracking_id}
    if ad_type == "sponsored_product":
        fields.update(display_position=str(position),
                      organic_position=str(organic_position or position),
                      format_type="item_card", product_id=product_id, page="1",
                      block_number=str(block_number or 1 + (position - 1) // 4))
    elif BY_NAME[ad_type].item:
        fields["product_id"] = product_id
    else:
        fields["creative_type"] = "video" if ad_type == "shoppable_video" else "image"
    return fields


def ad_event(name: str, ad_type: str, ad: dict[str, Any], *, user_id: str, sent_at: str,
             page_view_id: str, record_version: str, event_id: str | None = None,
             interaction_id: str | None = None) -> dict[str, Any]:
    """The event `name` of one ad as the snippet sends it: the ids every event carries, the
    ad's `ad_fields`, and what the track document requires of this event besides
    (interaction_id, asset_type)."""
    data: dict[str, Any] = {
        "event_id": event_id or str(uuid.uuid4()),
        "page_view_id": page_view_id,
        "record_version": record_version,
        **ad,
    }
    required = BY_NAME[ad_type].required(name)
    if "interaction_id" in required:
        data["interaction_id"] = interaction_id or str(uuid.uuid4())
    if "asset_type" in required:
        data["asset_type"] = "image"
    return {"event": name, "user_id": user_id, "sent_at": sent_at,
            "data": {BY_NAME[ad_type].data_key: data}}


def beacon_body(events: list[dict[str, Any]]) -> bytes:
    """What the snippet POSTs to /v1/events: one event alone, or a batch `{"events": [...]}`."""
    return orjson.dumps(events[0] if len(events) == 1 else {"events": events})


@dataclass
class Ad:
    """One ad on the page and what the shopper did with it."""

    ad_type: str
    fields: dict[str, str]
    interaction_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Beacon:
    """One POST /v1/events and the answer it must get."""

    events: list[dict[str, Any]]
    invalid: int = 0  # events the gateway must reject
    resent: bool = False

    @property
    def valid(self) -> int:
        return len(self.events) - self.invalid

    @property
    def body(self) -> bytes:
        return beacon_body(self.events)

    def expected_status(self) -> int:
        # docs/contract.md, "Endpoints": 202 when anything was taken (accepted, duplicate), else 400
        return 202 if self.valid >= 1 else 400

    def check(self, status: int, answer: Mapping[str, Any]) -> str | None:
        """Why the gateway's answer is wrong, or None when it is the contract's."""
        if status != self.expected_status():
            return f"status {status}, expected {self.expected_status()}"
        if status == 400:
            return None
        new, seen = (0, self.valid) if self.resent else (self.valid, 0)
        got = (answer.get("accepted"), answer.get("duplicates"), len(answer.get("rejected", ())))
        if got != (new, seen, self.invalid):
            return f"accepted/duplicates/rejected {got}, expected {(new, seen, self.invalid)}"
        return None


class PageView:
    """The ads of one page view and the events they fire, drawn from `rng`."""

    def __init__(self, rng: random.Random, user_id: str, record_version: str = "999") -> None:
        self.rng = rng
        self.user_id = user_id
        self.record_version = record_version  # track doc: 999 for testing events
        self.page_view_id = str(uuid.uuid4())
        self.sponsored = [self._sponsored(p) for p in range(1, SPONSORED_PER_PAGE + 1)]
        self.banner = self._ad("display_banner")
        self.display = self._with_items("shoppable_display", P_SHOPPABLE_DISPLAY, ITEMS_PER_DISPLAY)
        self.video = self._with_items("shoppable_video", P_VIDEO, ITEMS_PER_VIDEO)

    def _ad(self, ad_type: str, product_id: str = "", position: int = 1,
            organic_position: int | None = None) -> Ad:
        tracking_id = f"trk-{self.rng.getrandbits(48):012x}"
        return Ad(ad_type, ad_fields(ad_type, tracking_id, product_id, position, organic_position))

    def _product(self) -> str:
        return str(self.rng.randint(1, 10**7))

    def _sponsored(self, position: int) -> Ad:
        organic = position + self.rng.randint(0, 8)
        return self._ad("sponsored_product", self._product(), position, organic)

    def _with_items(self, ad_type: str, chance: float, items: int) -> list[Ad]:
        if self.rng.random() >= chance:
            return []
        creative = self._ad(ad_type)
        item_type = f"{ad_type}_item"
        return [creative, *(self._ad(item_type, self._product()) for _ in range(items))]

    def event(self, ad: Ad, what: str) -> dict[str, Any]:
        return ad_event(EVENTS[ad.ad_type][what], ad.ad_type, ad.fields, user_id=self.user_id,
                        sent_at=now(), page_view_id=self.page_view_id,
                        record_version=self.record_version, interaction_id=ad.interaction_id)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def render_events(self) -> list[dict[str, Any]]:
        events = []
        for ad in self.sponsored:
            events.append(self.event(ad, "render"))
            if self.chance(P_1PX):
                events.append(self.event(ad, "1px"))
        events += [self.event(self.banner, what) for what in ("load", "1px", "render")]
        for ad in (*self.display, *self.video):
            if ad.ad_type.endswith("_item"):
                events.append(self.event(ad, "1px"))
            elif ad.ad_type == "shoppable_video":
                events += [self.event(ad, w) for w in ("load", "1px", "video_render", "video_1px")]
            else:
                events += [self.event(ad, w) for w in ("load", "1px", "render_asset")]
        return events

    def viewable_events(self) -> list[dict[str, Any]]:
        events = [self.event(ad, "viewable") for ad in self.sponsored if self.chance(P_VIEWABLE)]
        if self.chance(P_BANNER_VIEWABLE):
            events += [self.event(self.banner, w) for w in ("viewable", "viewable_asset")]
        for ad in (*self.display, *self.video):
            if ad.ad_type.endswith("_item"):
                if self.chance(P_ITEM_VIEWABLE):
                    events.append(self.event(ad, "viewable"))
            elif ad.ad_type == "shoppable_video":
                if self.chance(P_VIDEO_VIEWABLE):
                    events += [self.event(ad, w) for w in ("video_viewable", "viewable")]
            else:
                events.append(self.event(ad, "viewable"))
        return events

    def interaction_events(self) -> list[dict[str, Any]]:
        events = []
        for ad in self.sponsored:
            if self.chance(P_CLICK):
                events.append(self.event(ad, "click"))
            if self.chance(P_ADD):
                events.append(self.event(ad, "add"))
        if self.chance(P_BANNER_CLICK):
            events.append(self.event(self.banner, "click"))
        for ad in (*self.display, *self.video):
            if ad.ad_type.endswith("_item") and self.chance(P_ITEM_CLICK):
                events.append(self.event(ad, "click"))
            if ad.ad_type.endswith("_item") and self.chance(P_ITEM_ADD):
                events.append(self.event(ad, "add"))
        return events

    def spoil(self, event: dict[str, Any]) -> dict[str, Any]:
        """The same event made invalid, one of the two ways browsers get it wrong."""
        if self.chance(0.5):
            event["event"] = UNKNOWN_EVENT
        else:
            next(iter(event["data"].values()))["event_id"] = "not-a-uuid"
        return event

    def beacons(self, events: list[dict[str, Any]]) -> Iterator[Beacon]:
        """`events` as beacons of at most MAX_BATCH, ~1% of events spoiled."""
        for start in range(0, len(events), MAX_BATCH):
            chunk = events[start : start + MAX_BATCH]
            spoiled = {i for i in range(len(chunk)) if self.chance(P_INVALID_EVENT)}
            if spoiled and len(spoiled) == len(chunk):
                spoiled.pop()  # keep the all-invalid beacon for `lone_invalid`
            for i in spoiled:
                self.spoil(chunk[i])
            yield Beacon(chunk, invalid=len(spoiled))

    def lone_invalid(self) -> Beacon:
        return Beacon([self.spoil(self.event(self.sponsored[0], "1px"))], invalid=1)

    def stages(self) -> Iterator[tuple[float, list[Beacon]]]:
        """Seconds to wait, then the beacons to send: render, viewability, interaction."""
        makers = (self.render_events, self.viewable_events, self.interaction_events)
        for (low, high), make in zip(PAUSES, makers, strict=True):
            events = make()
            if events:
                yield self.rng.uniform(low, high), list(self._with_resends(events))
        if self.chance(P_INVALID_BEACON):
            yield 0.0, [self.lone_invalid()]

    def _with_resends(self, events: list[dict[str, Any]]) -> Iterator[Beacon]:
        for beacon in self.beacons(events):
            yield beacon
            if self.chance(P_RESEND):
                yield Beacon(beacon.events, beacon.invalid, resent=True)

    def all_beacons(self) -> Iterator[Beacon]:
        """The page view's beacons in order, with the resent and lone-invalid shares."""
        for _, beacons in self.stages():
            yield from beacons
