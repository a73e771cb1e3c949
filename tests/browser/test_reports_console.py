"""The reports page in a real browser: a known day's figures, its charts, a download, errors.

The day is the hand-counted 2021-07-25 of tests/api/test_reports.py (the ledger's, of
tests/api/test_ledger.py), written into the running service's database before the page opens.
"""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from surge.auth.models import Role
from tests.api.test_ledger import load as load_the_ledger_day
from tests.api.test_reports import DAY, NANJING, SUZHOU, WUXI, load_the_day
from tests.browser.conftest import screenshot, signed_in
from tests.helpers import LiveService


async def open_reports(page: Page) -> None:
    """Follow the navigation link to the reports page and wait for its controls."""
    await page.get_by_role("link", name="数据日报").click()
    await expect(page.get_by_role("heading", name="数据日报")).to_be_visible()


async def show_day(page: Page, day: str) -> None:
    """Choose the day and ask for its report."""
    await page.get_by_label("日期").fill(day)
    await page.get_by_role("button", name="查询").click()


async def test_a_coordinator_reads_the_day_and_downloads_the_summary(
    browser: Browser, site: LiveService
) -> None:
    await load_the_day(site.settings)
    page = await signed_in(browser, site, Role.COORDINATOR, None)
    await open_reports(page)

    await show_day(page, DAY)

    await expect(page.locator("#report-heading")).to_contain_text(f"{DAY} · 全省")
    summary = page.locator("#summary-table")
    await expect(summary.locator("thead")).to_contain_text("呼入量")
    nanjing = summary.locator(f"tr[data-code='{NANJING}']")
    await expect(nanjing.locator("td[data-key=received]")).to_have_text("8")
    await expect(nanjing.locator("td[data-key=answered]")).to_have_text("5")
    await expect(nanjing.locator("td[data-key=connection_rate]")).to_have_text("62.5%")
    province = summary.locator("tr[data-code=province]")
    await expect(province.locator("td[data-key=received]")).to_have_text("10")
    wuxi = summary.locator("tr[data-code='320200'] td[data-key=connection_rate]")
    await expect(wuxi).to_have_text("—")  # no calls: nothing to divide by
    await expect(page.locator("#hourly-chart svg")).to_be_visible()
    await screenshot(page, "reports-province")

    async with page.expect_download() as info:
        await page.get_by_role("button", name="概要 CSV").click()
    download = await info.value
    assert download.suggested_filename == f"surge-daily-{DAY}-province-summary.csv"
    saved = await download.path()
    content = await asyncio.to_thread(Path(saved).read_bytes)
    assert content.startswith(b"\xef\xbb\xbf")  # the BOM Excel looks for
    table = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    header = table[0]
    assert header[:3] == ["城市代码", "城市", "呼入量"]
    rows = {line[0]: dict(zip(header, line, strict=True)) for line in table[1:]}
    assert rows[NANJING]["呼入量"] == "8"
    await expect(page.locator("#report-status")).to_contain_text(download.suggested_filename)

    # Into one city from its row: its key figures as tiles, its hours, its staffing advice.
    await page.get_by_role("button", name="查看南京日报").focus()
    await page.keyboard.press("Enter")  # the keyboard drills down too; focus follows the report
    await expect(page.get_by_label("范围")).to_have_value(NANJING)
    await expect(page.locator("#report-heading")).to_contain_text(f"{DAY} · 南京")
    await expect(page.locator("#report-heading")).to_be_focused()
    tiles = page.locator("#report-tiles")
    await expect(tiles.locator("[data-key=received] dd")).to_have_text("8")
    await expect(tiles.locator("[data-key=answered] dd")).to_have_text("5")
    await expect(tiles.locator("[data-key=connection_rate] dd")).to_have_text("62.5%")
    await expect(tiles.locator("[data-key=service_level] dd")).to_have_text("50%")
    await expect(tiles.locator("[data-key=asa_s] dd")).to_have_text("21 秒")
    await expect(tiles.locator("[data-key=aht_s] dd")).to_have_text("5 分 35 秒")
    await expect(tiles.locator("[data-key=helper_share] dd")).to_have_text("60%")
    hour_nine = page.locator("#hourly-table tr[data-hour='09:00']")
    await expect(hour_nine.locator("td[data-key=received]")).to_have_text("3")
    await expect(hour_nine.locator("td[data-key=answered_by_helpers]")).to_have_text("1")
    chart = page.locator("#hourly-chart svg")
    await expect(chart).to_have_attribute("aria-label", "分时呼入、接通、放弃与援助接通 · 南京")
    await expect(chart.locator("polyline")).to_have_count(4)
    helpers = page.locator("#helpers-table tbody tr")
    await expect(helpers).to_have_count(3)
    await expect(helpers.first).to_contain_text("苏州")
    await expect(page.locator("#staffing-facts [data-key=peak_agents_needed] dd")).to_have_text("2")
    await expect(page.locator("#staffing-chart svg")).to_be_visible()
    await screenshot(page, "reports-nanjing")

    await page.get_by_role("button", name="English").click()
    await expect(tiles.locator("[data-key=connection_rate] dt")).to_have_text("Connection rate")
    await expect(tiles.locator("[data-key=aht_s] dd")).to_have_text("5 min 35 s")
    await expect(page.get_by_role("status").and_(page.locator("#report-status"))).to_have_text(
        f"Loaded the report of {DAY}, Nanjing"
    )
    await page.locator("#report-definitions > summary").click()
    await expect(page.locator("#report-definitions")).to_contain_text("answered ÷ received")
    await screenshot(page, "reports-nanjing-en")
    await page.get_by_role("button", name="中文").click()

    await show_day(page, "2999-01-01")  # a day still to come: the API's 422, shown
    error = page.get_by_role("alert")
    await expect(error).to_contain_text("422")
    await expect(error).to_contain_text("has not happened yet")
    await expect(page.locator("#report-tiles")).to_have_count(0)
    await expect(page.get_by_role("button", name="概要 CSV")).to_be_disabled()


async def test_a_city_admin_sees_only_its_city(browser: Browser, site: LiveService) -> None:
    await load_the_day(site.settings)
    page = await signed_in(browser, site, Role.CITY_ADMIN, SUZHOU)
    await open_reports(page)

    await show_day(page, DAY)

    scope = page.get_by_label("范围")
    await expect(scope.locator("option")).to_have_count(1)
    await expect(scope).to_have_value(SUZHOU)
    await expect(page.locator("#report-heading")).to_contain_text(f"{DAY} · 苏州")
    await expect(page.locator("#summary-table")).to_have_count(0)
    tiles = page.locator("#report-tiles")
    await expect(tiles.locator("[data-key=received] dd")).to_have_text("1")
    await expect(tiles.locator("[data-key=helper_share] dd")).to_have_text("0%")
    await expect(page.locator("#helpers-none")).to_be_visible()  # Suzhou helped, was not helped
    figures = page.locator("#report-figures")
    await expect(figures.locator("tr[data-key=answered_for_others] td").first).to_have_text("3")
    await screenshot(page, "reports-city-admin")

    async with page.expect_download() as info:
        await page.get_by_role("button", name="分时 CSV").click()
    download = await info.value
    assert download.suggested_filename == f"surge-daily-{DAY}-{SUZHOU}-hourly.csv"

    async with page.expect_download() as info:  # the API names no JSON file: the page does
        await page.get_by_role("button", name="完整数据 JSON").click()
    download = await info.value
    assert download.suggested_filename == f"surge-daily-{DAY}-{SUZHOU}.json"


async def test_the_ledger_table_in_both_languages(browser: Browser, site: LiveService) -> None:
    """The hand-counted ledger day of tests/api/test_ledger.py, as a table, then a download."""
    await load_the_ledger_day(site.settings)
    page = await signed_in(browser, site, Role.COORDINATOR, None)
    await open_reports(page)
    await show_day(page, DAY)
    await expect(page.locator("#summary-table thead")).to_contain_text("来电人数")
    await expect(page.locator("#summary-table thead")).to_contain_text("重复呼入量")

    await page.get_by_label("起始日").fill(DAY)
    await page.get_by_label("截止日").fill(DAY)
    await page.get_by_role("button", name="汇总台账").click()

    pairs = page.locator("#ledger-pairs")
    suzhou = pairs.locator(f"tr[data-lender='{SUZHOU}'][data-host='{NANJING}']")
    await expect(suzhou.locator("td[data-key=seat_hours_lent]")).to_have_text("0.52 小时")
    await expect(suzhou.locator("td[data-key=calls_answered]")).to_have_text("2")
    await expect(suzhou.locator("td[data-key=lender_service_level_while_lending]")).to_have_text(
        "33.3%"
    )
    await expect(suzhou.locator("th").first).to_have_text("苏州")
    await expect(pairs.locator("tbody tr")).to_have_count(3)
    nanjing = page.locator(f"#ledger-cities tr[data-code='{NANJING}']")
    await expect(nanjing.locator("td[data-key=balance_hours]")).to_have_text("-0.92 小时")
    await page.locator("#report-ledger").scroll_into_view_if_needed()
    await screenshot(page, "reports-ledger")

    await page.get_by_role("button", name="English").click()
    await expect(pairs.locator("thead")).to_contain_text("Seat-hours lent")
    await expect(suzhou.locator("td[data-key=seat_hours_lent]")).to_have_text("0.52 h")
    await expect(suzhou.locator("th").first).to_have_text("Suzhou")
    await expect(page.locator("#ledger-status")).to_have_text(
        f"Loaded the ledger of {DAY} to {DAY}"
    )
    await screenshot(page, "reports-ledger-en")

    async with page.expect_download() as info:
        await page.get_by_role("button", name="City pairs CSV").click()
    download = await info.value
    assert download.suggested_filename == f"surge-ledger-{DAY}-{DAY}-province-pairs.csv"
    content = await asyncio.to_thread(Path(await download.path()).read_bytes)
    table = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    assert {(row["lender"], row["host"]) for row in table} == {
        (NANJING, WUXI), (WUXI, NANJING), (SUZHOU, NANJING)
    }  # fmt: skip

    await page.get_by_label("From").fill("2021-07-26")  # after "to": the API's 422, shown
    await page.get_by_role("button", name="Compile ledger").click()
    await expect(page.locator("#ledger-error")).to_contain_text("422")
    await expect(pairs).to_have_count(0)
