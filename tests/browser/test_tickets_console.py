"""The ticket list page in a real browser: scope and masking, filters, pages, the CSV, English.

The day is the known 2021-07-25 of tests/api/test_tickets.py, written into the running service's
database before the page is opened.
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import timedelta
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from surge.auth.models import Role
from surge.calls.models import Call
from surge.db import create_engine, create_sessionmaker
from tests.api.test_tickets import NANJING, SUZHOU, at, write_the_day
from tests.browser.conftest import screenshot, signed_in
from tests.helpers import LiveService


async def open_tickets(page: Page) -> None:
    """Follow the navigation link to the ticket list and wait for its first page."""
    await page.get_by_role("link", name="工单查询").click()
    await expect(page.get_by_role("heading", name="工单查询")).to_be_visible()
    await expect(page.locator("#tickets-status-line")).to_contain_text("第 1 页")


async def test_a_helper_citys_admin_finds_its_agents_work_masked_and_downloads_it(
    browser: Browser, site: LiveService
) -> None:
    ids = await write_the_day(site.settings)
    page = await signed_in(browser, site, Role.CITY_ADMIN, SUZHOU)

    await open_tickets(page)

    rows = page.locator("#tickets-table tbody tr")
    await expect(rows).to_have_count(3)
    for_nanjing = page.locator(f"#tickets-table tr[data-id='{ids['nj-by-suzhou']}']")
    await expect(for_nanjing).to_contain_text("138****0002")
    await expect(for_nanjing).to_contain_text("援助他市")
    await expect(for_nanjing).to_contain_text("公共交通投诉")  # the category's name, not 0202
    await expect(for_nanjing).to_contain_text("2021-07-25 09:10:00")
    own = page.locator(f"#tickets-table tr[data-id='{ids['sz-own']}']")
    await expect(own).to_contain_text("13900000006")
    await expect(own).not_to_contain_text("援助他市")
    await screenshot(page, "tickets-helper-city")

    await page.get_by_label("搜索").fill("停车")
    await page.get_by_role("button", name="查询", exact=True).click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("停车收费")

    await page.get_by_label("搜索").fill("")
    await page.get_by_label("来电城市").select_option(NANJING)
    await page.get_by_role("button", name="查询", exact=True).click()
    await expect(rows).to_have_count(1)
    async with page.expect_download() as info:
        await page.get_by_role("button", name="下载 CSV").click()
    download = await info.value
    assert download.suggested_filename.startswith(f"surge-tickets-{SUZHOU}-")
    content = await asyncio.to_thread(Path(await download.path()).read_bytes)
    assert content.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    assert table[0][:3] == ["工单编号", "来电时间", "来电城市"]
    assert [line[0] for line in table[1:]] == [str(ids["nj-by-suzhou"])]
    await expect(page.locator("#tickets-status-line")).to_contain_text(download.suggested_filename)

    await page.get_by_role("button", name="English").click()
    await expect(page.get_by_role("heading", name="Tickets")).to_be_visible()
    await expect(page.locator("#tickets-table thead")).to_contain_text("Served by")
    await expect(for_nanjing).to_contain_text("For another city")
    await expect(for_nanjing).to_contain_text("Public transport complaints")


async def test_the_coordinator_pages_through_every_city(
    browser: Browser, site: LiveService
) -> None:
    engine = create_engine(site.settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            session.add_all(
                Call(
                    city_code=NANJING if n % 2 else SUZHOU,
                    caller=f"138{n:08d}",
                    channel="phone",
                    status="queued",
                    received_at=at(9) + timedelta(minutes=n),
                )
                for n in range(60)
            )
    finally:
        await engine.dispose()
    page = await signed_in(browser, site, Role.COORDINATOR, None)

    await open_tickets(page)

    rows = page.locator("#tickets-table tbody tr")
    await expect(rows).to_have_count(50)
    await expect(page.get_by_role("button", name="上一页")).to_be_disabled()
    first = await rows.first.get_attribute("data-id")
    await page.get_by_role("button", name="下一页").click()
    await expect(page.locator("#tickets-status-line")).to_contain_text("第 2 页，本页 10 条")
    await expect(rows).to_have_count(10)
    await expect(page.get_by_role("button", name="下一页")).to_be_disabled()
    await page.get_by_role("button", name="上一页").click()
    await expect(rows).to_have_count(50)
    await expect(rows.first).to_have_attribute("data-id", first or "")

    await page.get_by_label("状态").select_option("completed")
    await page.get_by_role("button", name="查询", exact=True).click()
    await expect(page.locator("#tickets-none")).to_be_visible()

    await page.get_by_label("起始日期").fill("2021-07-26")
    await page.get_by_label("截止日期").fill("2021-07-25")
    await page.get_by_role("button", name="查询", exact=True).click()
    await expect(page.locator("#tickets-error")).to_contain_text("invalid_request")
