"""A single-page storefront in Preact (js/storefront/, bundled by its own build, never
part of the snippet) with /ian.js loaded async, in real Chromium, through the real gateway
to the sandbox: a grid that paginates by re-rendering the same elements with new ads,
client-side routes with pushState and back, a login that calls ian.identify, and cart
buttons that call the snippet through its early-call queue.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route

from tests.support import ROOT

from .support import (
    COLLECT_SENT,
    VIEWPORT,
    Demo,
    data_of,
    names,
    received_once,
    sync,
    tab_of,
    wait_sent,
)

pytestmark = pytest.mark.browser

SP = "ian.sponsored_product."
IMPRESSIONS = sorted([SP + "begin_to_render_viewport", SP + "1px_in_viewport",
                      SP + "viewable_in_viewport"])
BANNER = sorted(["ian.display.viewport_viewable_begin_to_render_creative",
                 "ian.display.viewport_1px_creative", "ian.display.viewport_viewable_creative"])


@pytest.fixture(scope="module")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("storefront")
    subprocess.run(["node", str(ROOT / "js" / "storefront" / "build.mjs"), str(out)],
                   check=True, timeout=120)
    return out


@pytest.fixture
def shop(browser: Browser, demo: Demo, storefront: Path) -> Iterator[Page]:
    """A tab whose /shop/... URLs on the gateway's origin are the storefront: its files by
    name (app.js, module.js, module.html), its page at every other path (client-side routes)."""
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    context.add_init_script(COLLECT_SENT)

    def serve(route: Route) -> None:
        name = route.request.url.rsplit("/", 1)[1]
        if not (storefront / name).is_file():
            name = "index.html"
        kind = "text/javascript" if name.endswith(".js") else "text/html"
        route.fulfill(body=(storefront / name).read_bytes(), content_type=kind)

    context.route(lambda url: url.startswith(demo.url + "/shop/"), serve)
    with tab_of(context) as tab:
        yield tab


def open_shop(page: Page, demo: Demo, path: str = "/shop/") -> None:
    page.goto(demo.url + path)
    page.wait_for_function("window.ian && !Array.isArray(window.ian)")


def page_views(events: list[dict[str, Any]], tracking_id: str) -> list[str]:
    return [data_of(e)["page_view_id"] for e in events
            if data_of(e).get("object_tracking_id") == tracking_id]


def test_a_grid_paginating_in_place_counts_each_new_ad_once(shop: Page, demo: Demo) -> None:
    open_shop(shop, demo)
    for n in range(1, 5):
        wait_sent(shop, f"sp-{n}", SP + "viewable_in_viewport")
    wait_sent(shop, "shell-banner", "ian.display.viewport_viewable_creative")
    shop.evaluate("document.querySelectorAll('.card').forEach((el) => { el.mark = 1 })")
    shop.click("#next")  # ?page=2: the same four elements now show ads 5 to 8
    for n in range(5, 9):
        wait_sent(shop, f"sp-{n}", SP + "viewable_in_viewport")
    assert shop.evaluate("[...document.querySelectorAll('.card')].every((el) => el.mark)")
    events = sync(demo, shop)
    for n in range(1, 9):
        assert sorted(names(events, f"sp-{n}")) == IMPRESSIONS, n
    assert sorted(names(events, "shell-banner")) == BANNER  # unchanged: nothing fired again
    first, second = page_views(events, "sp-1")[0], page_views(events, "sp-5")[0]
    assert first != second  # the query changed: a new page view
    assert set(page_views(events, "sp-5")) == {second}
    assert {data_of(e)["product_id"] for e in events
            if data_of(e).get("object_tracking_id") == "sp-5"} == {"1005"}
    received_once(demo, [data_of(e)["event_id"] for e in events])


def test_client_side_routes_and_back_are_page_views(shop: Page, demo: Demo) -> None:
    open_shop(shop, demo)
    wait_sent(shop, "sp-1", SP + "viewable_in_viewport")
    wait_sent(shop, "shell-banner", "ian.display.viewport_viewable_creative")
    shop.click("text=Product 1")  # pushState to /shop/p/1
    shop.wait_for_selector("h1")
    shop.click(".banner")
    shop.click("#back")  # history.back(): popstate to /shop/
    shop.wait_for_selector(".card")
    shop.click(".banner")
    wait_sent(shop, "sp-1", SP + "begin_to_render_viewport", 2)  # the grid's new elements
    events = sync(demo, shop)
    banner = [e for e in events if data_of(e).get("object_tracking_id") == "shell-banner"]
    impressions = [e["event"] for e in banner if e["event"] != "ian.display.click_creative"]
    assert sorted(impressions) == BANNER
    load, product, back = (page_views(events, "sp-1")[0],
                           *[data_of(e)["page_view_id"] for e in banner
                             if e["event"] == "ian.display.click_creative"])
    assert len({load, product, back}) == 3
    grid_again = [data_of(e)["page_view_id"] for e in events
                  if data_of(e).get("object_tracking_id") == "sp-1"
                  and e["event"] == SP + "begin_to_render_viewport"]
    assert grid_again == [load, back]


def test_login_identifies_the_shopper_from_then_on(shop: Page, demo: Demo) -> None:
    open_shop(shop, demo)
    wait_sent(shop, "sp-3", SP + "begin_to_render_viewport")
    shop.click("#login")
    shop.wait_for_selector("#user")
    shop.click("button.add[data-n='3']")
    events = sync(demo, shop)
    users = {e["event"]: e["user_id"] for e in events
             if data_of(e).get("object_tracking_id") == "sp-3"}
    assert users[SP + "begin_to_render_viewport"] == "anon-1"  # data-ian-user-id
    assert users[SP + "added_to_cart"] == "u-7"


def test_cart_clicks_before_the_script_loads_are_queued_and_sent(shop: Page, demo: Demo) -> None:
    held: list[Route] = []
    shop.route(demo.url + "/ian.js", lambda route: held.append(route))  # a slow script
    shop.goto(demo.url + "/shop/", wait_until="domcontentloaded")
    shop.click("button.add[data-n='2']")
    shop.click("button.add[data-n='2']")
    assert shop.evaluate("window.ian.length") == 2  # still the page's queue
    while not held:
        shop.wait_for_timeout(50)
    held[0].continue_()
    shop.wait_for_function("window.ian && !Array.isArray(window.ian)")
    events = sync(demo, shop)
    adds = [e for e in events if e["event"] == SP + "added_to_cart"]
    assert [data_of(e)["object_tracking_id"] for e in adds] == ["sp-2", "sp-2"]
    assert len({data_of(e)["interaction_id"] for e in adds}) == 2
    shop.click("button.add[data-n='2']")  # after load, push runs at once
    assert names(sync(demo, shop), "sp-2").count(SP + "added_to_cart") == 3


def test_the_es_module_package_bundled_with_the_page_measures_the_same(shop: Page,
                                                                        demo: Demo) -> None:
    open_shop(shop, demo, "/shop/module.html")  # no /ian.js tag: the page's bundle has it
    wait_sent(shop, "sp-1", SP + "viewable_in_viewport")
    shop.click("button.add[data-n='1']")
    events = sync(demo, shop)
    assert sorted(names(events, "sp-1")) == sorted([*IMPRESSIONS, SP + "added_to_cart"])
    assert {e["user_id"] for e in events} == {"anon-1"}
    assert {data_of(e)["record_version"] for e in events} == {"999"}  # test: true
