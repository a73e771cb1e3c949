"""The coordinator's hot issues panel in a real browser: empty, then live from a `hotspot` frame."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from surge.auth.models import Role
from tests.api.test_hotspots import RULES, baseline, the_hour
from tests.browser.conftest import screenshot, signed_in
from tests.conftest import make_backend
from tests.helpers import LiveService, run_service


@pytest.fixture
async def site(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[LiveService]:
    """The embedded service with the API tests' small-sample hotspot rules (a check each 0.3 s)."""
    async with (
        make_backend("embedded", request, tmp_path) as backend,
        run_service(backend.settings(**RULES)) as live,
    ):
        yield live


async def test_a_hotspot_appears_on_the_dashboard_as_it_happens(
    browser: Browser, site: LiveService
) -> None:
    await baseline(site)
    page = await signed_in(browser, site, Role.COORDINATOR, None)
    panel = page.locator("#hotspots")
    await expect(panel.locator("h2")).to_have_text("热点预警")
    await expect(panel.locator("#hotspots-status")).to_have_attribute("data-state", "live")
    await expect(panel.locator("#hotspots-none")).to_have_text("目前没有热点")

    await the_hour(site)  # 3 of Nanjing's 4 tickets this hour on the metro stopping
    rows = panel.locator("tbody tr")
    await expect(rows).to_have_count(2)
    # In the server's order (the same lift and count: the category first).
    await expect(rows.first).to_have_attribute("data-kind", "category")
    travel = panel.locator("tr[data-kind=category][data-key='0201']")
    await expect(travel).to_have_attribute("data-fresh", "true")  # from the frame
    await expect(travel.locator("th")).to_contain_text("出行政策咨询")
    await expect(travel.locator("[data-field=count]")).to_have_text("3")
    await expect(travel.locator("[data-field=share]")).to_have_text("75%")
    await expect(travel.locator("[data-field=baseline]")).to_have_text("1.0%")
    await expect(travel.locator("[data-field=lift]")).to_have_text("×75.0")
    await expect(travel.locator("[data-field=cities]")).to_have_text("全省、南京")
    term = panel.locator("tr[data-kind=term]")
    await expect(term.locator("th")).to_contain_text("停运")
    await panel.scroll_into_view_if_needed()
    await screenshot(page, "coordinator-hotspots-zh")

    await page.get_by_role("button", name="English").click()
    await expect(panel.locator("h2")).to_have_text("Hot issues")
    await expect(travel.locator("th")).to_contain_text("Travel rules")
    await expect(travel.locator("[data-field=cities]")).to_have_text("Province, Nanjing")
    await expect(term.locator("td").first).to_have_text("Term")
    await screenshot(page, "coordinator-hotspots-en")
