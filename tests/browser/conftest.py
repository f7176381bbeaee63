"""Playwright driving Debian's Chromium against pytest-django's live server.

The browser is started once per session. Its sync API keeps an asyncio loop
running in the main thread for as long as it lives, which Django's
async-safety check mistakes for async code calling the ORM; the check is
switched off (DJANGO_ALLOW_ASYNC_UNSAFE) for exactly that lifetime.
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RESULTS_DIR = Path(__file__).resolve().parents[2] / "test-results"


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium package to run browser tests"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server, fast_password_hashing):
    """A fresh browser context (no cookies) on the live server, for one test."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot(page, request):
    """Saves the page to test-results/<test name>-<label>.png."""

    def save(label: str) -> Path:
        RESULTS_DIR.mkdir(exist_ok=True)
        target = RESULTS_DIR / f"{request.node.name}-{label}.png"
        page.screenshot(path=str(target), full_page=True)
        return target

    return save
