"""A real headless browser for the page tests (report, arena).

Debian's ``chromium`` package, driven by Playwright's Python API with
``executable_path`` pointing at it: Playwright's own browser download is not
reachable offline. Where the package is missing the browser tests skip and
say which package to install; ``.ci/run`` installs it, so CI always runs them.
"""

from __future__ import annotations

import pytest

from bench_assets.benchmarks.browser import MISSING, chromium_path


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module; each test opens its own context.

    Module scope, not session: Playwright's sync API keeps an event loop
    running in the main thread while it is open, and code that calls
    ``asyncio.run`` (Dagster's automation evaluation) fails under it.
    """
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        executable = None
    if executable is None:
        pytest.skip(MISSING)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


class PageWatch:
    """Every request a page makes and every console error, for the offline/no-error checks."""

    def __init__(self, page) -> None:
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("console", lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))

    def offsite_requests(self, allowed_prefixes: tuple[str, ...]) -> list[str]:
        """Requests to anything but the allowed prefixes (``data:`` and ``blob:`` are local)."""
        local = ("data:", "blob:", "about:")
        return [u for u in self.requests if not u.startswith(allowed_prefixes + local)]
