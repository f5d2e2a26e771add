"""`ian-gateway demo` end to end: the storefront, its snippet from /ian.js, every ad type."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.support import free_port

from .support import Demo, data_of, wait_for_ids

pytestmark = pytest.mark.browser


def test_the_snippet_is_served_by_the_gateway(demo: Demo) -> None:
    answer = httpx.get(f"{demo.url}/ian.js", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert answer.headers["etag"]
    assert answer.text.startswith("(()=>{")


def test_storefront_pages_carry_safe_headers_and_break_none_of_them(browser: Browser,
                                                                    demo: Demo) -> None:
    answer = httpx.get(f"{demo.url}/", timeout=10)
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    context = browser.new_context()  # the CSP enforced, unlike the other tests' contexts
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(demo.url + "/")
        page.locator("#grid .card").first.wait_for()
        page.wait_for_timeout(1500)  # the page's own scripts run, the first beacon leaves
        # a Content-Security-Policy violation is reported as a console error ("Refused to ...")
        assert [e for e in errors if "Refused" in e or "Content Security Policy" in e] == []
    finally:
        context.close()


def test_storefront_sends_every_ad_type_through_the_gateway(page: Page, demo: Demo) -> None:
    page.goto(demo.url + "/")
    page.wait_for_function("window.ian !== undefined && document.querySelectorAll('.card').length")
    page.evaluate("window.sent = []; document.addEventListener('ian:sent', "
                  "e => window.sent.push(...JSON.parse(e.detail).events))")
    page.wait_for_timeout(1300)  # the banner and the first row in view for a second
    page.click("#grid .card:nth-child(1) .name")
    page.click("#grid .card:nth-child(2) button")
    page.locator("video").scroll_into_view_if_needed()
    page.wait_for_timeout(2600)  # the video plays (demo.js starts it) for 2 seconds
    page.click("text=Lime soda")
    page.evaluate("ian.flush()")
    ids = page.evaluate("window.sent.map(e => Object.values(e.data)[0].event_id)")
    events = wait_for_ids(demo, ids)
    seen = {(e["event"], next(iter(e["data"]))) for e in events}
    for pair in [
        ("ian.display.viewport_viewable_begin_to_render_creative", "display_banner_data"),
        ("ian.display.viewport_viewable_creative", "display_banner_data"),
        ("ian.sponsored_product.viewable_in_viewport", "sponsored_product_data"),
        ("ian.sponsored_product.clicked", "sponsored_product_data"),
        ("ian.sponsored_product.added_to_cart", "sponsored_product_data"),
        ("ian.display.viewport_1px_video", "shoppable_video_data"),
        ("ian.display.viewport_video_viewable", "shoppable_video_data"),
        ("ian.display.click_creative_item", "shoppable_video_item_data"),
    ]:
        assert pair in seen, pair
    assert all(data_of(e)["record_version"] == "999" for e in events)
    # the panel shows what the gateway answered and what the sandbox accepted
    page.wait_for_function("document.querySelectorAll('#received li').length > 0")
    page.wait_for_function(
        "/gateway: accepted [1-9]/.test(document.getElementById('counts').textContent)")
    assert demo.stats()["track"]["rejected"] == 0


def test_demo_command_prints_its_urls_serves_and_stops_cleanly(spawn: Any) -> None:
    sandbox_port = free_port()
    process = spawn(["demo", "--sandbox-port", str(sandbox_port)])
    with httpx.Client(base_url=process.url, timeout=10) as http:
        assert http.get("/").text.startswith("<!doctype html>")
        assert http.get("/demo/demo.css").status_code == 200
        assert http.get("/healthz").status_code == 200
        state = http.get("/demo/api/state").json()
        assert state["received"]["count"] == 0 and "track" in state["stats"]
        assert http.post("/demo/api/reset").json() == {"reset": True}
        # the sandbox answers on loopback, with the admin API
        assert httpx.get(f"http://127.0.0.1:{sandbox_port}/_sandbox/stats").status_code == 200
    assert process.stop() == 0
    output = process.output()
    assert f"storefront  {process.url}/" in output
    assert f"http://127.0.0.1:{sandbox_port}/_sandbox/received" in output
