"""Fixtures for the browser tests: Debian's Chromium driven by Playwright's sync API against
pytest-django's `live_server`.

One browser per session; each test gets fresh contexts (cookies, storage) through `new_context`,
and `page` is a page in the first of them. When a test fails, every page it opened is saved
as a screenshot in test-artifacts/ (gitignored)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Playwright's sync API runs an asyncio event loop in this thread; Django would then refuse
# ORM calls from the test body (SynchronousOnlyOperation). The ORM calls here are ordinary
# blocking calls made from plain test code, so that check does not apply.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 10_000


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    # Keeps each phase's report on the test item (rep_setup, rep_call, rep_teardown), so
    # fixtures can tell in their teardown whether the test failed.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser():  # -> playwright.sync_api.Browser
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_context(browser, live_server, transactional_db, request: pytest.FixtureRequest) -> Iterator[Callable]:
    """Factory for a fresh browser context (a separate cookie jar: another person, or the same
    person on a new device). Relative URLs resolve against the live server."""
    contexts = []

    def make():
        context = browser.new_context(base_url=live_server.url, locale="en-US")
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make

    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS_DIR.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)
        for c, context in enumerate(contexts):
            for p, page in enumerate(context.pages):
                try:
                    page.screenshot(path=str(ARTIFACTS_DIR / f"{name}-context{c}-page{p}.png"), full_page=True)
                except Exception as error:  # noqa: BLE001 — a failed screenshot must not hide the failure
                    print(f"screenshot of {page.url} failed: {error}")
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context):  # -> playwright.sync_api.Page
    return new_context().new_page()
