"""What the browser tests share: the demo they run against, tabs, and reading what was sent.

The fixtures that start the demo and the browser are in this package's conftest.py.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from playwright.sync_api import BrowserContext, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--autoplay-policy=no-user-gesture-required"]
# Wide enough for a 970 px banner and a control beside it; 600 px tall: a 200 px ad at
# top 1000 is 50% in view at scrollY 500.
VIEWPORT = {"width": 2000, "height": 600}


@dataclass
class Demo:
    url: str
    sandbox: str

    def received(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.sandbox}/_sandbox/received", params={"kind": "track"},
                           timeout=10)
        answer.raise_for_status()
        return [item["body"] for item in answer.json()["items"]]

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.sandbox}/_sandbox/stats", timeout=10).json())


@contextlib.contextmanager
def tab_of(context: BrowserContext) -> Iterator[Page]:
    """A tab of `context` that fails the test on any uncaught page error; closes the context."""
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        context.close()
    assert not errors, errors


def event_id(event: dict[str, Any]) -> str:
    return str(next(iter(event["data"].values()))["event_id"])


def data_of(event: dict[str, Any]) -> dict[str, Any]:
    return dict(next(iter(event["data"].values())))


def sync(demo: Demo, page: Page, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Flushes the snippet, waits until the sandbox holds every event the page sent and
    returns those events as the sandbox received them (enriched by the gateway).

    Begin-to-render is emitted in the animation frame after an ad is observed, so the
    flush waits for the next frame: an ad added just before would otherwise race it."""
    page.evaluate("new Promise(r => requestAnimationFrame(() => r()))")
    page.evaluate("ian.flush()")
    sent = page.evaluate("window.sent.map(e => Object.values(e.data)[0].event_id)")
    return wait_for_ids(demo, sent, timeout, page)


def wait_for_ids(demo: Demo, ids: list[str], timeout: float = 15.0,
                 page: Page | None = None) -> list[dict[str, Any]]:
    """The events of ids as the sandbox received them, once it has them all. With a page, the
    wait lets Playwright run that page's route handlers meanwhile (the sync API runs them
    only inside its own calls)."""
    deadline = time.monotonic() + timeout
    while True:
        by_id = {event_id(e): e for e in demo.received()}
        if all(i in by_id for i in ids):
            return [by_id[i] for i in ids]
        if time.monotonic() > deadline:
            missing = [i for i in ids if i not in by_id]
            raise AssertionError(f"the sandbox never received {len(missing)} of {len(ids)} events")
        if page is None:
            time.sleep(0.1)
        else:
            page.wait_for_timeout(100)


def names(events: list[dict[str, Any]], tracking_id: str) -> list[str]:
    """The event names of one ad (by object_tracking_id), in the order they were sent."""
    return [e["event"] for e in events if data_of(e).get("object_tracking_id") == tracking_id]


def scroll(page: Page, y: int) -> None:
    page.evaluate("y => window.scrollTo(0, y)", y)


def tid(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


def lab(page: Page, demo: Demo, query: str = "") -> None:
    page.goto(f"{demo.url}/demo/lab.html{query}")
    page.wait_for_function("window.ian !== undefined")


def product(page: Page, tracking_id: str, top: int = 1000, left: int = 0,
            html: str = "", **box: int) -> None:
    attrs = {"ad": "sponsored_product", "tracking-id": tracking_id, "product-id": "1234",
             "display-position": "1", "page": "1"}
    page.evaluate("([a, b, h]) => { lab.ad(a, b, h) }",
                  [attrs, {"top": top, "left": left, **box}, html])


# What the snippet sent, in window.sent, on any page of a context (lab.js does the same for
# the lab page): the `ian:sent` event carries each body that leaves by fetch.
COLLECT_SENT = """
window.sent = []
document.addEventListener('ian:sent', (e) => window.sent.push(...JSON.parse(e.detail).events))
"""
# The events this origin's snippet keeps in localStorage until the gateway has taken them.
STORED_IDS = """Object.keys(localStorage).filter((k) => k.startsWith('ian.'))
  .flatMap((k) => JSON.parse(localStorage.getItem(k)))
  .map((e) => Object.values(e.data)[0].event_id)"""


def sent_ids(page: Page) -> list[str]:
    return list(page.evaluate("window.sent.map(e => Object.values(e.data)[0].event_id)"))


def wait_sent(page: Page, tracking_id: str, event: str, count: int = 1) -> None:
    """Waits until the page has sent `count` events named `event` for the ad `tracking_id`."""
    page.wait_for_function(
        """([t, n, c]) => window.sent.filter((e) => e.event == n
             && Object.values(e.data)[0].object_tracking_id == t).length >= c""",
        arg=[tracking_id, event, count])


def received_once(demo: Demo, ids: list[str], page: Page | None = None) -> None:
    """Each of ids reached the sandbox exactly once (page: as in wait_for_ids)."""
    wait_for_ids(demo, ids, page=page)
    seen = [event_id(e) for e in demo.received()]
    assert {i: seen.count(i) for i in ids} == dict.fromkeys(ids, 1)
