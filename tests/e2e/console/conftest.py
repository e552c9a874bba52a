"""The console in a real browser: Debian's headless Chromium driven by Playwright, against the
session's real `charter server` process. Screenshots of the pages go to screenshots/ here."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support import ServerProcess

SCREENSHOTS = Path(__file__).parent / "screenshots"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHARTER_TEST_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    if executable is None:
        if IN_CI:
            pytest.fail("the console's browser tests need Debian's chromium (.ci/run installs it)")
        pytest.skip("no chromium: apt-get install -y chromium")
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: the tests run as root in CI, where Chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def signed_in(browser: Any, server: ServerProcess, persona_tokens: dict[str, str],
              admin_token: str) -> Iterator[Callable[[str], Any]]:
    """A page signed in as a persona through the sign-in form, in a browser context of its own."""
    contexts: list[Any] = []

    def sign_in(persona: str) -> Any:
        context = browser.new_context(base_url=server.url, viewport={"width": 1366, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.goto("/")
        page.fill("#token", admin_token if persona == "admin" else persona_tokens[persona])
        page.click("button[type=submit]")
        page.wait_for_selector("[data-testid=identity]")
        return page

    yield sign_in
    for context in contexts:
        context.close()


@pytest.fixture
def shot() -> Callable[[Any, str], Path]:
    SCREENSHOTS.mkdir(exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
