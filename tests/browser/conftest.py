"""Browser tests: Playwright driving Debian's Chromium, headless, against a real running service.

No browser is downloaded: the system Chromium (`apt-get install chromium`, done by `make test`)
is launched by path. The service runs on the embedded backend; the browser talks to it only
through its public pages, API and websockets. Every test saves screenshots of what it saw to
`test-artifacts/screenshots/`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from surge.auth.models import Role
from tests.conftest import Backend, unavailable
from tests.helpers import PASSWORD, LiveService, run_service

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """The system Chromium (skip locally, fail in CI, when it is not installed)."""
    found = os.environ.get("SURGE_CHROMIUM") or shutil.which("chromium")
    if found is None:
        unavailable("Chromium", FileNotFoundError("no chromium on PATH (apt-get install chromium)"))
    assert found is not None
    return found


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    path = chromium_path()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def site(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[LiveService]:
    """The real service on the embedded backend, offers held for 15 s, pressure read each second."""
    from tests.conftest import make_backend

    async with make_backend("embedded", request, tmp_path) as made:
        backend: Backend = made
        settings = backend.settings(offer_timeout_s=15.0, pressure_interval_s=1.0)
        async with run_service(settings) as live:
            yield live


async def signed_in(
    browser: Browser,
    site: LiveService,
    role: Role,
    city: str | None,
    *,
    prepare: Callable[[Page], Awaitable[None]] | None = None,
) -> Page:
    """A new page with a fresh user of `role` logged in through the login form (`prepare` runs
    on the page first: a route to hold back a response, say)."""
    name = await site.add_user(role, city)
    page = await browser.new_page(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    page.set_default_timeout(10_000)
    if prepare is not None:
        await prepare(page)
    await page.goto(f"{site.base_url}/console/")
    await page.get_by_label("用户名").fill(name)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await page.locator("#who").filter(has_text=name).wait_for()
    return page


async def screenshot(page: Page, name: str) -> None:
    """Keep what the page looks like now as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
