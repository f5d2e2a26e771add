"""The snippet in real Chromium, through the real gateway to the sandbox.

Ads are fixed-size boxes on the lab page (/demo/lab.html), placed at exact pixels; the
viewport is 600 px tall, so a 200 px ad at top 1000 shows 100 px (50%) at scrollY 500
and 98 px (49%) at scrollY 498. MRC: 50% of pixels for 1 continuous second (30% for
ads of 242,500 px or more); video: 50% of the player while 2 continuous seconds play.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page

from .support import Demo, data_of, lab, names, product, scroll, sync, tid, wait_for_ids, wait_sent

pytestmark = pytest.mark.browser

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")

SP = "ian.sponsored_product."
RENDER = SP + "begin_to_render_viewport"
PX = SP + "1px_in_viewport"
VIEWABLE = SP + "viewable_in_viewport"


def dwell(page: Page, y: int, ms: int) -> None:
    """Scrolls the ad to `y`, keeps it there `ms` from the moment the browser reports it in
    view, then scrolls back to the top (timed in the page: see lab.js)."""
    page.evaluate("([y, ms]) => lab.dwell('.lab-ad', y, ms, 0)", [y, ms])


def test_half_in_view_for_1_1_s_is_viewable_once(page: Page, demo: Demo) -> None:
    lab(page, demo)
    ad = tid("sp-50-1100")
    product(page, ad)
    dwell(page, 500, 1100)  # 100 of 200 px: 50%, for 1.1 s
    page.wait_for_timeout(200)
    events = sync(demo, page)
    assert sorted(names(events, ad)) == sorted([RENDER, PX, VIEWABLE])
    viewable = next(e for e in events if e["event"] == VIEWABLE)
    data = data_of(viewable)
    assert viewable["user_id"] == "lab-shopper"
    assert ISO_OFFSET.match(viewable["sent_at"])
    assert UUID.match(data["event_id"]) and UUID.match(data["page_view_id"])
    assert data["record_version"] == "999"  # data-ian-test
    assert data["object_tracking_id"] == ad
    assert (data["product_id"], data["display_position"]) == ("1234", "1")
    assert data["event_tracking_context"]["user_agent"]  # the gateway enriched it


def test_half_in_view_for_0_8_s_is_not_viewable(page: Page, demo: Demo) -> None:
    lab(page, demo)
    ad = tid("sp-50-800")
    product(page, ad)
    dwell(page, 500, 800)
    page.wait_for_timeout(700)  # long past the second the timer would have needed
    assert sorted(names(sync(demo, page), ad)) == sorted([RENDER, PX])


def test_49_percent_for_3_s_is_not_viewable(page: Page, demo: Demo) -> None:
    lab(page, demo)
    ad = tid("sp-49")
    product(page, ad)
    scroll(page, 498)  # 98 of 200 px: 49%
    page.wait_for_timeout(3000)
    assert sorted(names(sync(demo, page), ad)) == sorted([RENDER, PX])


def test_begin_to_render_counts_out_of_view_and_waits_for_the_image(page: Page, demo: Demo) -> None:
    lab(page, demo)
    ad = tid("sp-render")
    product(page, ad, top=5000, html='<img src="/demo/product.svg" width="200" height="170">')
    page.wait_for_timeout(500)
    assert names(sync(demo, page), ad) == [RENDER]  # rendered, never in view


def test_hidden_tab_pauses_and_restarts_the_timer(page: Page, demo: Demo) -> None:
    lab(page, demo)
    ad = tid("sp-hidden")
    product(page, ad, top=100)  # fully in view from the start
    # timed in the page: 600 ms visible, 700 ms hidden, 600 ms visible, then flush
    page.evaluate("""async () => {
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
      await sleep(600); lab.hidden(true); await sleep(700); lab.hidden(false); await sleep(600)
      ian.flush()
    }""")
    assert VIEWABLE not in names(sync(demo, page), ad)  # 1.2 s visible, not continuously
    page.wait_for_timeout(700)  # 1.3 s continuous since the tab came back
    assert names(sync(demo, page), ad).count(VIEWABLE) == 1


def test_large_ad_is_viewable_at_30_percent(page: Page, demo: Demo) -> None:
    lab(page, demo)
    large, small = tid("banner-large"), tid("banner-small")
    for tracking_id, left, width in [(large, 0, 970), (small, 1000, 969)]:  # 242,500 / 242,250 px
        page.evaluate("([a, b]) => { lab.ad(a, b) }", [
            {"ad": "display_banner", "tracking-id": tracking_id, "creative-type": "image"},
            {"top": 1000, "left": left, "width": width, "height": 250}])
    scroll(page, 475)  # 75 of 250 px: 30% of both
    page.wait_for_timeout(1300)
    events = sync(demo, page)
    assert names(events, large).count("ian.display.viewport_viewable_creative") == 1
    assert "ian.display.viewport_viewable_creative" not in names(events, small)
    assert "ian.display.viewport_1px_creative" in names(events, small)


VIDEO = ('<video src="/demo/ad.webm" width="400" height="225" muted preload="auto"'
         ' style="display:block"></video>')


def test_paused_video_is_never_viewable_playing_one_is(page: Page, demo: Demo) -> None:
    lab(page, demo)
    ad = tid("video")
    page.evaluate("([a, b, h]) => { lab.ad(a, b, h) }", [
        {"ad": "shoppable_video", "tracking-id": ad, "creative-type": "video"},
        {"top": 50, "width": 400, "height": 225}, VIDEO])
    page.wait_for_function("document.querySelector('video').readyState >= 2")
    page.wait_for_timeout(3000)  # fully in view, paused
    before = names(sync(demo, page), ad)
    assert sorted(before) == sorted(["ian.display.viewport_video_begin_to_render",
                                     "ian.display.viewport_1px_video"])
    page.evaluate("document.querySelector('video').play()")
    page.wait_for_timeout(1200)
    page.evaluate("document.querySelector('video').pause()")  # 1.2 s of play: not enough
    page.wait_for_timeout(500)
    assert "ian.display.viewport_video_viewable" not in names(sync(demo, page), ad)
    page.evaluate("document.querySelector('video').play()")
    page.wait_for_timeout(2400)
    assert names(sync(demo, page), ad).count("ian.display.viewport_video_viewable") == 1


def test_click_is_one_event_with_an_interaction_id(page: Page, demo: Demo) -> None:
    lab(page, demo)
    ad = tid("sp-click")
    product(page, ad, top=100, html='<span class="name">Apples</span>'
            '<button data-ian-add-to-cart data-ian-quantity="2">Add 2</button>')
    page.click(".name")
    events = sync(demo, page)
    clicks = [e for e in events if e["event"] == SP + "clicked"]
    assert len(clicks) == 1
    assert UUID.match(data_of(clicks[0])["interaction_id"])
    page.click("button")
    events = sync(demo, page)
    adds = [data_of(e) for e in events if e["event"] == SP + "added_to_cart"]
    assert len(adds) == 2  # one per quantity increment
    assert len({a["interaction_id"] for a in adds}) == 2
    assert all(UUID.match(a["interaction_id"]) for a in adds)
    assert names(events, ad).count(SP + "clicked") == 1  # the add button is not a click


def test_item_click_is_the_items_event_not_the_parents(page: Page, demo: Demo) -> None:
    lab(page, demo)
    parent = tid("shoppable")
    page.evaluate("""([parent]) => {
      const ad = lab.ad({ad: 'shoppable_display', 'tracking-id': parent, 'creative-type': 'image'},
                        {top: 50, width: 600, height: 300})
      const item = lab.ad({ad: 'shoppable_display_item', 'product-id': '777'}, {},
        '<span class="item-name">Oats</span><button data-ian-add-to-cart>Add</button>', ad)
      item.id = 'item'
    }""", [parent])
    page.click("#item .item-name")
    page.click("#item button")
    page.click(".lab-ad", position={"x": 590, "y": 290})  # the parent, outside the item
    events = sync(demo, page)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_name.setdefault(e["event"], []).append(e)
    item_click = by_name["ian.display.click_creative_item"]
    assert len(item_click) == 1
    assert "shoppable_display_item_data" in item_click[0]["data"]
    data = data_of(item_click[0])
    assert (data["product_id"], data["object_tracking_id"]) == ("777", parent)  # the parent's id
    assert len(by_name["ian.display.add_creative_item"]) == 1
    assert len(by_name["ian.display.click_creative"]) == 1  # only the click outside the item
    assert "shoppable_display_data" in by_name["ian.display.click_creative"][0]["data"]


def test_leaving_the_page_flushes_pending_events(page: Page, demo: Demo) -> None:
    lab(page, demo, "?flush-ms=600000")  # the timer alone would wait 10 minutes
    ad = tid("sp-leave")
    product(page, ad, top=100)
    page.wait_for_timeout(400)
    assert page.evaluate("window.sent.length") == 0
    page.goto("about:blank")  # pagehide
    deadline_events: list[dict[str, Any]] = []
    for _ in range(150):
        deadline_events = [e for e in demo.received() if data_of(e).get("object_tracking_id") == ad]
        if len(deadline_events) >= 2:
            break
        page.wait_for_timeout(100)
    assert sorted(e["event"] for e in deadline_events) == sorted([RENDER, PX])


def test_scrolling_back_gives_no_second_impression(page: Page, demo: Demo) -> None:
    lab(page, demo)
    ad = tid("sp-back")
    product(page, ad)
    for _ in range(2):
        scroll(page, 800)  # fully in view
        page.wait_for_timeout(1200)
        scroll(page, 0)
        page.wait_for_timeout(150)
    assert sorted(names(sync(demo, page), ad)) == sorted([RENDER, PX, VIEWABLE])


def test_removed_ad_is_released(page: Page, demo: Demo) -> None:
    lab(page, demo)
    ad = tid("sp-removed")
    product(page, ad, top=100)
    page.wait_for_timeout(400)
    page.evaluate("document.querySelector('.lab-ad').remove()")
    page.wait_for_timeout(1000)
    assert VIEWABLE not in names(sync(demo, page), ad)


def test_consent_pending_holds_events_until_granted(page: Page, demo: Demo) -> None:
    lab(page, demo, "?consent=pending")
    ad = tid("sp-consent")
    product(page, ad, top=100)
    page.wait_for_timeout(300)
    page.evaluate("ian.flush()")
    assert page.evaluate("window.sent.length") == 0
    page.evaluate("ian.consent(true)")
    assert sorted(names(sync(demo, page), ad)) == sorted([RENDER, PX])


def test_the_gateway_rejected_nothing(page: Page, demo: Demo) -> None:
    assert demo.stats()["track"]["rejected"] == 0
    assert wait_for_ids(demo, []) == []


def test_one_pixel_row_in_view_is_the_1px_impression(page: Page, demo: Demo) -> None:
    lab(page, demo)
    touching, one_px = tid("sp-touching"), tid("sp-1px")
    product(page, touching, top=1000)
    product(page, one_px, top=999, left=300)
    scroll(page, 400)  # the viewport ends at 1000: the first ad touches it, the second shows 1 px
    page.wait_for_timeout(1300)
    events = sync(demo, page)
    assert names(events, touching) == [RENDER]
    assert sorted(names(events, one_px)) == sorted([RENDER, PX])


def test_window_ian_observe_click_add_unobserve(page: Page, demo: Demo) -> None:
    lab(page, demo)
    banner, item = tid("api-banner"), tid("api-item")
    page.evaluate("""([banner, item]) => {
      const box = (top) => {
        const el = document.body.appendChild(document.createElement('div'))
        el.className = 'lab-ad'
        el.style.cssText = `top:${top}px;width:300px;height:100px`
        return el
      }
      const a = box(2000), b = box(2200)
      ian.observe(a, {ad: 'display_banner', object_tracking_id: banner, creative_type: 'image'})
      ian.observe(b, {ad: 'shoppable_display_item', object_tracking_id: item, product_id: '55'})
      ian.click(a)
      ian.addToCart(b, 3)
      ian.unobserve(b)
      ian.click(b)  // released: nothing
    }""", [banner, item])
    events = sync(demo, page)
    assert sorted(names(events, banner)) == sorted([
        "ian.display.viewport_viewable_begin_to_render_creative", "ian.display.click_creative"])
    assert names(events, item) == ["ian.display.add_creative_item"] * 3
    click = next(e for e in events if e["event"] == "ian.display.click_creative")
    assert data_of(click)["creative_type"] == "image"
    assert "ad" not in data_of(click)


def test_video_is_measured_on_its_player(page: Page, demo: Demo) -> None:
    lab(page, demo)
    ad = tid("video-player")
    page.evaluate("([a, b, h]) => { lab.ad(a, b, h) }", [
        {"ad": "shoppable_video", "tracking-id": ad, "creative-type": "video"},
        {"top": 1000, "width": 400, "height": 450},  # the player on top, 225 px of items below
        VIDEO + '<div style="height:225px">items</div>'])
    page.wait_for_function("document.querySelector('video').readyState >= 2")
    scroll(page, 1225)  # half of the ad in view, but none of its player
    page.evaluate("document.querySelector('video').play()")
    page.wait_for_timeout(2500)
    assert names(sync(demo, page), ad) == ["ian.display.viewport_video_begin_to_render"]
    scroll(page, 900)  # the whole player
    page.wait_for_timeout(2300)
    assert sorted(names(sync(demo, page), ad)) == sorted([
        "ian.display.viewport_video_begin_to_render", "ian.display.viewport_1px_video",
        "ian.display.viewport_video_viewable"])


def test_consent_refused_drops_the_buffer(page: Page, demo: Demo) -> None:
    lab(page, demo, "?consent=pending")
    ad = tid("sp-refused")
    product(page, ad, top=100, html="<b>x</b>")
    page.wait_for_timeout(300)
    page.evaluate("ian.consent(false)")
    page.click(".lab-ad b")  # after the refusal too
    page.evaluate("ian.flush()")
    assert page.evaluate("window.sent.length") == 0


def test_a_burst_is_split_into_batches_of_100(page: Page, demo: Demo) -> None:
    lab(page, demo)
    ad = tid("sp-burst")
    product(page, ad, top=3000)
    page.evaluate("ian.addToCart(document.querySelector('.lab-ad'), 230)")
    page.evaluate("ian.flush()")
    wait_sent(page, ad, SP + "added_to_cart", 230)  # one batch at a time, each once answered
    events = sync(demo, page)
    assert names(events, ad).count(SP + "added_to_cart") == 230
    batches = page.evaluate("window.batches")
    sizes = [b["events"] for b in batches]
    assert sum(sizes) == len(events)
    assert sizes[:2] == [100, 100]  # full batches first
    assert all(b["events"] <= 100 and b["bytes"] <= 60 * 1024 for b in batches)
