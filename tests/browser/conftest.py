"""Real Chromium against a real `ian-gateway demo` (gateway + sandbox + storefront).

One demo process and one browser for the package; a fresh browser context per test.
Assertions go through the sandbox's inspection endpoint: what Instacart would have
received after the snippet, the gateway's intake, spool and forwarder.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Process, free_port
from playwright.sync_api import Browser, Page, sync_playwright

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


@pytest.fixture(scope="package")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    port, sandbox_port = free_port(), free_port()
    cwd: Path = tmp_path_factory.mktemp("demo")
    process = Process(["demo", "--port", str(port), "--sandbox-port", str(sandbox_port)],
                      port, {}, cwd)
    try:
        yield Demo(process.url, f"http://127.0.0.1:{sandbox_port}")
    finally:
        process.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # The storefront's CSP forbids eval, which Playwright's string predicates use;
    # test_demo.py checks the CSP itself in a context of its own.
    context = browser.new_context(viewport=VIEWPORT, bypass_csp=True)  # type: ignore[arg-type]
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
    return wait_for_ids(demo, sent, timeout)


def wait_for_ids(demo: Demo, ids: list[str], timeout: float = 15.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        by_id = {event_id(e): e for e in demo.received()}
        if all(i in by_id for i in ids):
            return [by_id[i] for i in ids]
        if time.monotonic() > deadline:
            missing = [i for i in ids if i not in by_id]
            raise AssertionError(f"the sandbox never received {len(missing)} of {len(ids)} events")
        time.sleep(0.1)


def names(events: list[dict[str, Any]], tracking_id: str) -> list[str]:
    """The event names of one ad (by object_tracking_id), in the order they were sent."""
    return [e["event"] for e in events if data_of(e).get("object_tracking_id") == tracking_id]


def scroll(page: Page, y: int) -> None:
    page.evaluate("y => window.scrollTo(0, y)", y)
