"""Real Chromium against a real `ian-gateway demo` (gateway + sandbox + storefront).

One demo process and one browser for the package; a fresh browser context per test.
Assertions go through the sandbox's inspection endpoint: what Instacart would have
received after the snippet, the gateway's intake, spool and forwarder (`support.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.support import Process, free_port

from .support import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, Demo, tab_of


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
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # The storefront's CSP forbids eval, which Playwright's string predicates use;
    # test_demo.py checks the CSP itself in a context of its own.
    with tab_of(browser.new_context(viewport=VIEWPORT, bypass_csp=True)) as tab:  # type: ignore[arg-type]
        yield tab
