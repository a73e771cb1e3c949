"""Every console passes axe-core's WCAG 2.1 A and AA rules: labels, names, contrast, structure.

axe-core (bundled by axe-playwright-python, run in the page by Playwright) checks what a screen
reader and a low-vision user meet; each console is checked in the state a user works in, with its
data shown, not only its empty frame.
"""

from __future__ import annotations

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, expect

from surge.auth.models import Role
from tests.api.test_reports import DAY, load_the_day
from tests.browser.conftest import signed_in
from tests.helpers import LiveService

NANJING, SUZHOU = "320100", "320500"
WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
AXE = Axe()


async def assert_accessible(page: Page, where: str) -> None:
    """Run axe on the page as it is now; fail with its readable report of each violation."""
    results = await AXE.run(page, options=WCAG_AA)
    assert results.violations_count == 0, f"{where}: {results.generate_report()}"


async def test_each_console_is_accessible_with_its_data_shown(
    browser: Browser, site: LiveService
) -> None:
    login = await browser.new_page(locale="zh-CN")
    await login.goto(f"{site.base_url}/console/")
    await expect(login.get_by_label("用户名")).to_be_visible()
    await assert_accessible(login, "login")

    await load_the_day(site.settings)
    cti = await site.add_user(Role.CTI)

    agent = await signed_in(browser, site, Role.AGENT, NANJING)
    await expect(agent.locator("#connection")).to_have_attribute("data-state", "online")
    await agent.get_by_role("button", name="置闲").click()
    await site.post_call(cti, NANJING, caller="13812345678")
    await expect(agent.locator("#offer-caller")).to_have_text("13812345678")  # its own city
    await assert_accessible(agent, "agent console with an offer")
    await agent.get_by_role("button", name="接听 (A)").click()
    await expect(agent.locator("#call")).to_be_visible()
    await assert_accessible(agent, "agent console with a call in hand")

    coordinator = await signed_in(browser, site, Role.COORDINATOR, None)
    await expect(coordinator.locator("#board .tile")).to_have_count(13)
    await coordinator.get_by_label("求援城市").select_option(NANJING)
    await expect(coordinator.locator("#surge-form[data-state=ready] #wave-1")).to_be_visible()
    await assert_accessible(coordinator, "coordinator dashboard with the wave editor")

    await coordinator.get_by_role("link", name="数据日报").click()
    await coordinator.get_by_label("日期").fill(DAY)
    await coordinator.get_by_role("button", name="查询").click()
    await expect(coordinator.locator("#hourly-chart svg")).to_be_visible()
    # Leaving the date field (the click) also schedules its own load 400 ms later: the page is
    # dimmed while it runs, so wait it out before judging the contrast.
    await coordinator.wait_for_timeout(500)
    await expect(coordinator.locator("#report-results")).not_to_have_attribute("aria-busy", "true")
    await assert_accessible(coordinator, "reports page with a day shown")

    admin = await signed_in(browser, site, Role.CITY_ADMIN, NANJING)
    await admin.get_by_role("button", name="新增口径").click()
    await assert_accessible(admin, "script editor with the entry form open")
    await admin.get_by_role("button", name="English").click()
    await expect(admin.locator("html")).to_have_attribute("lang", "en")
    await assert_accessible(admin, "script editor in English")

    helper = await signed_in(browser, site, Role.CITY_ADMIN, SUZHOU)
    await helper.get_by_role("link", name="工单查询").click()
    # Suzhou's own call and the three it answered for Nanjing and Yangzhou (masked).
    await expect(helper.locator("#tickets-table tbody tr")).to_have_count(4)
    await expect(helper.locator("#tickets-table")).to_contain_text("援助他市")
    await assert_accessible(helper, "tickets page with a helper city's calls")

    agent_name = await site.add_user(Role.AGENT, NANJING)
    await admin.get_by_role("link", name="Users").click()
    await expect(admin.locator(f'#users tr[data-username="{agent_name}"]')).to_be_visible()
    await assert_accessible(admin, "users page with its city's agents")
    await admin.get_by_role("button", name=f"Disable {agent_name}").click()
    await expect(admin.get_by_role("button", name=f"Enable {agent_name}")).to_be_focused()
    await admin.get_by_role("button", name=f"Reset the password of {agent_name}").click()
    await expect(admin.locator("#reset-dialog")).to_be_visible()
    await assert_accessible(admin, "users page with the password reset dialog open")
