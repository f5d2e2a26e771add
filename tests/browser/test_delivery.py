"""The snippet's delivery and page-view rules in real Chromium, on the lab page, through the
real gateway to the sandbox (counted there): retries on 503, the network cut and restored,
a page closed with its batch unanswered, a back/forward-cache restore, localStorage refused,
page views on history changes and ad identities changing in place.

Gateway answers that a healthy gateway does not give on demand (a 503, an answer lost on the
way back) are made by intercepting /v1/events in the browser; everything else is real.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route

from .support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    COLLECT_SENT,
    STORED_IDS,
    VIEWPORT,
    Demo,
    data_of,
    lab,
    names,
    product,
    received_once,
    sent_ids,
    sync,
    tid,
    wait_sent,
)

pytestmark = pytest.mark.browser

SP = "ian.sponsored_product."
RENDER, PX, VIEWABLE, CLICKED = (SP + "begin_to_render_viewport", SP + "1px_in_viewport",
                                 SP + "viewable_in_viewport", SP + "clicked")
SPOOL_FULL = orjson.dumps({"errors": [{
    "error": {"message": "the gateway cannot take more events now; retry later",
              "error_code": 9999},
    "meta": {"key": None}}]})


def clicks(page: Page, count: int) -> None:
    """`count` clicks on the lab's ad, after the frame in which its begin-to-render fires."""
    page.evaluate("""async (n) => {
      await new Promise((r) => requestAnimationFrame(() => r()))
      for (let i = 0; i < n; i++) ian.click(document.querySelector('.lab-ad'))
    }""", count)


def stored(page: Page) -> list[str]:
    return list(page.evaluate(STORED_IDS))


def test_503_then_202_delivers_the_batch_once(page: Page, demo: Demo) -> None:
    bodies: list[str | None] = []

    def gateway(route: Route) -> None:
        bodies.append(route.request.post_data)
        if len(bodies) == 1:
            route.fulfill(status=503, headers={"Retry-After": "1"}, body=SPOOL_FULL,
                          content_type="application/json")
        else:
            route.continue_()

    page.route(lambda url: url.endswith("/v1/events"), gateway)
    lab(page, demo, "?flush-ms=600000")
    product(page, tid("sp-503"), top=5000)  # out of view: begin-to-render only
    clicks(page, 3)
    page.evaluate("ian.flush()")
    ids = sent_ids(page)
    assert len(ids) == 4
    received_once(demo, ids, page)
    assert len(bodies) == 2 and bodies[0] == bodies[1]  # the same batch, once more
    page.wait_for_function(f"({STORED_IDS}).length == 0")


def test_network_cut_then_restored_delivers_every_event_once(page: Page, demo: Demo) -> None:
    lab(page, demo, "?flush-ms=100")
    page.context.set_offline(True)
    ad = tid("sp-offline")
    product(page, ad, top=100)
    clicks(page, 5)
    wait_sent(page, ad, VIEWABLE)  # tried (and failed) in several batches over a second
    ids = stored(page)
    assert len(ids) == 8 and set(ids) == set(sent_ids(page))
    page.context.set_offline(False)
    received_once(demo, ids)
    page.wait_for_function(f"({STORED_IDS}).length == 0")


@pytest.mark.parametrize("lost", ["request", "answer"])
def test_a_batch_unanswered_when_the_page_closed_is_delivered_once_at_the_next_load(
        browser: Browser, demo: Demo, lost: str) -> None:
    context = browser.new_context(viewport=VIEWPORT, bypass_csp=True)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        reached: list[Any] = []

        def gateway(route: Route) -> None:
            if lost == "answer":  # the gateway takes the batch; its answer never comes back
                reached.append(route.fetch())
            # else the request never leaves; either way the page waits for an answer

        page.route(lambda url: url.endswith("/v1/events"), gateway)
        lab(page, demo, "?flush-ms=600000")
        product(page, tid(f"sp-closed-{lost}"), top=5000)
        clicks(page, 2)
        page.evaluate("ian.flush()")
        ids = sent_ids(page)
        assert sorted(stored(page)) == sorted(ids)
        if lost == "answer":
            received_once(demo, ids, page)
        page.close()
        again = context.new_page()
        again.add_init_script(COLLECT_SENT)
        lab(again, demo)
        again.wait_for_function(f"({STORED_IDS}).length == 0")  # sent first, and answered
        assert set(ids) <= set(sent_ids(again))
        received_once(demo, ids)
    finally:
        context.close()


@pytest.fixture(scope="module")
def bfcache_browser(playwright: Playwright) -> Iterator[Browser]:
    """Chromium with its back/forward cache, which Playwright turns off by default."""
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                          ignore_default_args=["--disable-back-forward-cache"])
    try:
        yield chromium
    finally:
        chromium.close()


def test_a_back_forward_cache_restore_measures_every_ad_afresh(bfcache_browser: Browser,
                                                               demo: Demo) -> None:
    context: BrowserContext = bfcache_browser.new_context(
        viewport=VIEWPORT, bypass_csp=True)  # type: ignore[arg-type]
    context.add_init_script(
        "addEventListener('pageshow', (e) => { window.restored = e.persisted })")
    try:
        page = context.new_page()
        lab(page, demo, "?flush-ms=100")
        ad = tid("sp-bfcache")
        product(page, ad, top=100)
        wait_sent(page, ad, VIEWABLE)
        page.goto(f"{demo.url}/demo/lab.html?elsewhere")
        page.go_back(wait_until="commit")  # a restore fires no load event
        page.wait_for_function("window.restored === true", polling=100)
        wait_sent(page, ad, VIEWABLE, 2)
        events = sync(demo, page)
        assert sorted(names(events, ad)) == sorted([RENDER, PX, VIEWABLE] * 2)
        views = {data_of(e)["page_view_id"] for e in events}
        assert len(views) == 2
    finally:
        context.close()


def test_without_local_storage_the_snippet_still_delivers(browser: Browser, demo: Demo) -> None:
    context = browser.new_context(viewport=VIEWPORT, bypass_csp=True)  # type: ignore[arg-type]
    context.add_init_script("""Object.defineProperty(window, 'localStorage',
      { get() { throw new DOMException('storage is disabled', 'SecurityError') } })""")
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        lab(page, demo)
        ad = tid("sp-no-storage")
        product(page, ad, top=100)
        clicks(page, 1)
        assert sorted(names(sync(demo, page), ad)) == sorted([RENDER, PX, CLICKED])
        assert errors == []
    finally:
        context.close()


def last_page_view(page: Page) -> str:
    """The page_view_id of a click made now."""
    before = page.evaluate("window.sent.length")
    clicks(page, 1)
    page.evaluate("ian.flush()")
    page.wait_for_function("(n) => window.sent.length > n", arg=before)
    return str(page.evaluate("Object.values(window.sent.at(-1).data)[0].page_view_id"))


def test_history_changes_of_path_or_query_and_ian_page_begin_page_views(page: Page,
                                                                        demo: Demo) -> None:
    lab(page, demo, "?flush-ms=50")
    product(page, tid("sp-views"), top=5000)
    views = [last_page_view(page)]
    for change, new in [
        ("history.pushState(null, '', '#reviews')", False),  # the hash alone
        ("history.pushState(null, '', location.pathname + '?flush-ms=50&sort=price')", True),
        ("history.replaceState(null, '', location.pathname + '?flush-ms=50&sort=name')", True),
        ("history.replaceState({step: 2}, '')", False),  # same URL
        ("history.pushState(null, '', '/demo/lab.html/deals')", True),
        ("ian.page()", True),
    ]:
        page.evaluate(change)
        views.append(last_page_view(page))
        assert (views[-1] != views[-2]) == new, change
    page.evaluate("history.back()")  # popstate: back to the query of the replaceState
    page.wait_for_function("location.search.includes('sort=name')")
    views.append(last_page_view(page))
    assert views[-1] not in views[:-1]
    assert len(set(views)) == 6


def test_an_ad_whose_identity_changes_in_place_is_a_new_ad(page: Page, demo: Demo) -> None:
    lab(page, demo, "?flush-ms=100")
    first, second, third = tid("sp-first"), tid("sp-second"), tid("sp-third")
    product(page, first, top=100)
    wait_sent(page, first, VIEWABLE)
    el = "document.querySelector('.lab-ad')"
    page.evaluate(f"{el}.setAttribute('data-ian-display-position', '7')")  # not identity
    clicks(page, 1)
    page.evaluate(f"{el}.setAttribute('data-ian-tracking-id', '{second}')")
    wait_sent(page, second, VIEWABLE)
    page.evaluate(f"{el}.removeAttribute('data-ian-ad')")  # released: no ad any more
    clicks(page, 1)
    page.evaluate(f"{el}.setAttribute('data-ian-tracking-id', '{third}');"
                  f"{el}.setAttribute('data-ian-ad', 'sponsored_product')")  # an ad again
    wait_sent(page, third, VIEWABLE)
    events = sync(demo, page)
    assert sorted(names(events, first)) == sorted([RENDER, PX, VIEWABLE, CLICKED])
    assert sorted(names(events, second)) == sorted([RENDER, PX, VIEWABLE])  # the click was released
    assert sorted(names(events, third)) == sorted([RENDER, PX, VIEWABLE])
    click = next(e for e in events if e["event"] == CLICKED)
    assert data_of(click)["display_position"] == "7"
    assert len({data_of(e)["page_view_id"] for e in events}) == 1
