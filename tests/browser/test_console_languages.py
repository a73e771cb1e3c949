"""The consoles in both languages: the server's reasons translated from their codes, banners said
again on a switch, waits written one way, the cite buttons, the surge form for a busy host, and the
report's summary table and staffing chart."""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect

from surge.auth.models import Role
from tests.api.test_reports import DAY, load_the_day
from tests.browser.conftest import screenshot, signed_in
from tests.browser.test_admin_console import entry
from tests.helpers import LiveService

NANJING, WUXI, SUZHOU = "320100", "320200", "320500"


async def start_surge(site: LiveService, *, overflow_after_s: float) -> int:
    """Start a surge for Nanjing with Suzhou helping, through the API; its id."""
    coordinator = await site.add_user(Role.COORDINATOR)
    body = {
        "host_city": NANJING,
        "waves": [{"cities": [SUZHOU], "seats_per_city": 1}],
        "overflow_after_s": overflow_after_s,
    }
    response = await site.http.post("/api/v1/surges", json=body, headers=site.auth(coordinator))
    assert response.status_code == 201, response.text
    surge_id: int = response.json()["id"]
    return surge_id


async def english(page: Page) -> None:
    """Switch the page to English."""
    await page.get_by_role("button", name="English").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")


async def test_the_coordinator_reads_the_reasons_and_cannot_start_a_second_surge(
    browser: Browser, site: LiveService
) -> None:
    cti = await site.add_user(Role.CTI)
    for _ in range(2):  # no Nanjing agent is online: the calls wait, with a reason
        await site.post_call(cti, NANJING)
    surge_id = await start_surge(site, overflow_after_s=90)
    page = await signed_in(browser, site, Role.COORDINATOR, None)
    reason = page.locator("#tile-320100 .reasons li[data-code=no_agents]")
    await expect(reason).to_have_text("2 通来电排队，没有坐席在线", timeout=15_000)
    card = page.locator(f"#surges .surge-card[data-host='{NANJING}']")
    await expect(card).to_contain_text("溢出等待 1 分 30 秒")  # as the reports write 90 s

    await page.get_by_label("求援城市").select_option(WUXI)
    suzhou = page.locator(f"#surge-form[data-host='{WUXI}'] label[for='wave-1-{SUZHOU}'] .why")
    await expect(suzhou).to_have_text(f"正在援助（#{surge_id}）")
    await expect(page.locator("#surge-submit")).to_be_enabled()
    await page.get_by_label("求援城市").select_option(NANJING)
    busy = page.locator("#surge-host-busy")
    await expect(busy).to_have_text(
        f"南京已有进行中的多援一（#{surge_id}），不能再发起；可在下方为它启动下一波。"
    )
    await expect(page.locator("#surge-submit")).to_be_disabled()
    await screenshot(page, "languages-coordinator-zh")

    await english(page)
    await expect(reason).to_have_text("no agent logged in for the 2 calls waiting")
    await expect(card).to_contain_text("overflow after 1 min 30 s")
    await expect(busy).to_contain_text(f"Nanjing already has an active surge (#{surge_id})")
    await expect(page.locator("#surge-submit")).to_be_disabled()
    await page.get_by_label("Host city").select_option(WUXI)
    await expect(suzhou).to_have_text(f"helping surge {surge_id}")
    await expect(busy).to_be_hidden()
    await expect(page.locator("#surge-submit")).to_be_enabled()
    await screenshot(page, "languages-coordinator-en")


async def test_an_agent_cites_scripts_only_with_a_call_and_reads_its_banners_in_english(
    browser: Browser, site: LiveService
) -> None:
    admin = await site.add_user(Role.CITY_ADMIN, NANJING)
    book = {"entries": [entry("hotline-hours", "受理时间", "全天 24 小时受理。")]}
    published = await site.http.post(
        f"/api/v1/cities/{NANJING}/scripts", json=book, headers=site.auth(admin)
    )
    assert published.status_code == 201, published.text
    cti = await site.add_user(Role.CTI)
    helper = await signed_in(browser, site, Role.AGENT, SUZHOU)
    await helper.get_by_role("button", name="置闲").click()
    await expect(helper.locator("#presence")).to_have_attribute("data-state", "available")
    await start_surge(site, overflow_after_s=0)
    await expect(helper.locator("#surge-banner")).to_have_text(
        "您已加入南京多援一，正在援助南京热线"
    )
    await site.post_call(cti, NANJING)

    cite = helper.locator('#script-entries li[data-key="hotline-hours"]').get_by_role(
        "button", name="引用"
    )
    await expect(cite).to_be_hidden()  # an offer is not a call yet
    await helper.get_by_role("button", name="接听 (A)").click()
    await expect(cite).to_be_visible()  # the book on display since the offer gets its buttons
    await cite.click()
    await expect(helper.locator("#script-used")).to_have_text("hotline-hours")
    await helper.get_by_label("诉求分类").select_option("0101")
    await helper.get_by_role("button", name="完成工单").click()
    await expect(helper.locator("#banner")).to_have_text("工单已完成")
    await expect(cite).to_be_hidden()  # nothing left to cite it for
    await screenshot(helper, "languages-agent-zh")

    await english(helper)
    await expect(helper.locator("#banner")).to_have_text("Ticket completed")
    await expect(helper.locator("#surge-banner")).to_have_text(
        "You joined the surge for Nanjing: you now help its hotline"
    )
    await screenshot(helper, "languages-agent-en")


async def test_a_rollback_without_a_note_is_noted_in_each_language(
    browser: Browser, site: LiveService
) -> None:
    author = await site.add_user(Role.CITY_ADMIN, NANJING)
    for answer in ("全天受理。", "工作日受理。"):
        book = {"entries": [entry("hotline-hours", "受理时间", answer)]}
        published = await site.http.post(
            f"/api/v1/cities/{NANJING}/scripts", json=book, headers=site.auth(author)
        )
        assert published.status_code == 201, published.text
    admin = await signed_in(browser, site, Role.CITY_ADMIN, NANJING)
    await admin.get_by_role("button", name="回滚到第 1 版").click()
    await admin.get_by_role("dialog").get_by_role("button", name="确认回滚").click()
    note = admin.locator('#versions tr[data-version="3"] td.note')
    await expect(note).to_contain_text("回滚到第 1 版")

    await english(admin)
    await expect(note).to_contain_text("rollback to version 1")
    await expect(note).not_to_contain_text("回滚")
    await screenshot(admin, "languages-admin-en")


async def summary_fits(page: Page) -> None:
    """The summary table is no wider than the box it scrolls in: the page shows every column."""
    widths = await page.locator("#summary-table").evaluate(
        "table => [table.scrollWidth, table.parentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths


async def test_the_report_summary_fits_the_page_and_the_needed_bars_show(
    browser: Browser, site: LiveService
) -> None:
    await load_the_day(site.settings)
    page = await signed_in(browser, site, Role.COORDINATOR, None)
    await page.get_by_role("link", name="数据日报").click()
    await page.get_by_label("日期").fill(DAY)
    await page.get_by_role("button", name="查询").click()
    await expect(page.locator("#summary-table tr[data-code=province]")).to_be_visible()
    await summary_fits(page)
    await english(page)
    await expect(page.locator("#summary-table thead")).to_contain_text("Received")
    await summary_fits(page)
    await screenshot(page, "languages-reports-en")

    await page.get_by_role("button", name="Open Nanjing's report").click()
    await expect(page.locator("#report-heading")).to_contain_text(f"{DAY} · Nanjing")
    chart = page.locator("#staffing-chart svg")
    # Nanjing needs 1 or 2 agents in four hours against its 113: each such bar still shows,
    # with its figure written above it.
    needed = chart.locator("rect[fill='#0b5cad']:not([width='10'])")
    await expect(needed).to_have_count(4)
    heights = await needed.evaluate_all(
        "bars => bars.map((bar) => bar.getBoundingClientRect().height)"
    )
    assert min(heights) >= 4, heights
    await expect(chart.locator("text[fill='#0b5cad']")).to_have_count(4)
