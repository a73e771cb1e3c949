"""The city admin's console in a real browser: edit and publish the script book, compare and roll
back versions, import and export, and the agents' consoles taking the new version live."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, FilePayload, Page, Route, expect

from surge.auth.models import Role
from tests.browser.conftest import screenshot, signed_in
from tests.helpers import LiveService

NANJING = "320100"
OLD_ANSWER = "热线全天 24 小时受理，节假日不休。"
NEW_ANSWER = "热线全天 24 小时受理，春节期间由省级平台统一接听。"


async def add_entry(
    page: Page,
    *,
    key: str,
    title: str,
    question: str,
    answer: str,
    category: str = "0101",
    tags: str = "",
    shot: str | None = None,
) -> None:
    """Add an entry to the draft through the entry form."""
    await page.get_by_role("button", name="新增口径").click()
    form = page.locator("#entry-form")
    await expect(form.get_by_label("键", exact=True)).to_be_focused()
    await form.get_by_label("键", exact=True).fill(key)
    await form.get_by_label("标题", exact=True).fill(title)
    await form.get_by_label("问题", exact=True).fill(question)
    await form.get_by_label("答复口径", exact=True).fill(answer)
    await form.get_by_label("诉求分类", exact=True).select_option(category)
    await form.get_by_label("标签", exact=True).fill(tags)
    if shot:
        await screenshot(page, shot)
    await form.get_by_role("button", name="保存条目").click()
    await expect(form).to_be_hidden()
    row = page.locator(f'#book-entries tr[data-key="{key}"]')
    await expect(row).to_have_attribute("data-status", "added")


async def publish(page: Page, note: str, version: int) -> None:
    """Publish the draft with a note and wait for the new version."""
    await page.get_by_label("发布说明").fill(note)
    await page.get_by_role("button", name="发布新版本").click()
    await expect(page.locator("#book-version")).to_have_attribute("data-version", str(version))
    await expect(page.locator("#draft-summary")).to_have_attribute("data-pending", "0")
    await expect(page.locator(f'#versions tr[data-version="{version}"]')).to_contain_text(note)


def entry(key: str, title: str, answer: str, category: str = "0101") -> dict[str, Any]:
    """A script entry as the API takes it."""
    return {
        "key": key,
        "title": title,
        "question": f"{title}？",
        "answer": answer,
        "category_code": category,
        "tags": [],
    }


def csv_file(name: str, text: str) -> FilePayload:
    """A CSV file for an upload field, from text."""
    return {"name": name, "mimeType": "text/csv", "buffer": text.encode("utf-8")}


async def test_an_agent_sees_the_admins_publish_without_a_reload(
    browser: Browser, site: LiveService
) -> None:
    agent = await signed_in(browser, site, Role.AGENT, NANJING)
    await expect(agent.locator("#connection")).to_have_attribute("data-state", "online")
    await expect(agent.locator("#script-version")).to_have_attribute("data-version", "0")
    await agent.evaluate("window.surgeNotReloaded = true")  # a reload would lose it

    admin = await signed_in(browser, site, Role.CITY_ADMIN, NANJING)
    await expect(admin.locator("#admin-city")).to_have_text("南京")
    await expect(admin.locator("#book-version")).to_have_attribute("data-version", "0")
    await add_entry(
        admin,
        key="vaccine-where",
        title="疫苗接种点查询",
        question="哪里可以接种加强针？",
        answer="可登录“我的南京”App 查询就近接种点并预约。",
        category="0103",
        tags="疫苗; 加强针",
        shot="admin-entry-form",
    )
    await expect(admin.locator("#draft-summary")).to_contain_text("新增 1")
    await screenshot(admin, "admin-editor")
    await publish(admin, "新增疫苗接种点口径", 1)

    await expect(agent.locator("#script-version")).to_have_attribute("data-version", "1")
    changed = agent.locator('#script-entries li.entry.changed[data-key="vaccine-where"]')
    await expect(changed).to_be_visible()
    await expect(changed).to_contain_text("我的南京")
    assert await agent.evaluate("window.surgeNotReloaded === true")
    await screenshot(agent, "agent-scripts-updated")

    token = await admin.evaluate("JSON.parse(sessionStorage.getItem('surge.session')).token")
    book = await site.http.get(
        f"/api/v1/cities/{NANJING}/scripts/versions/1",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert book.status_code == 200
    body = book.json()
    assert body["note"] == "新增疫苗接种点口径"
    assert body["entries"][0]["tags"] == ["疫苗", "加强针"]


async def test_a_form_opened_before_the_categories_arrive_gets_them(
    browser: Browser, site: LiveService
) -> None:
    # Seen under load: the admin opened the entry form while GET /categories was on its way,
    # and the form's list stayed empty for good.
    arrived = asyncio.Event()

    async def hold_categories(page: Page) -> None:
        async def held(route: Route) -> None:
            await arrived.wait()
            await route.continue_()

        await page.route("**/api/v1/categories", held)

    admin = await signed_in(browser, site, Role.CITY_ADMIN, NANJING, prepare=hold_categories)
    await admin.get_by_role("button", name="新增口径").click()
    category = admin.locator("#entry-form").get_by_label("诉求分类", exact=True)
    await expect(category.locator("option")).to_have_count(1)  # only "请选择" so far
    arrived.set()
    await category.select_option("0101", timeout=2_000)  # well before a retry (3 s) would
    await expect(category).to_have_value("0101")


async def test_edit_compare_roll_back_and_export(browser: Browser, site: LiveService) -> None:
    admin = await signed_in(browser, site, Role.CITY_ADMIN, NANJING)
    await add_entry(
        admin, key="hotline-hours", title="热线受理时间", question="几点能打?", answer=OLD_ANSWER
    )
    await add_entry(
        admin, key="parking", title="停车收费", question="停车怎么收费?", answer="按物价局标准。"
    )
    await publish(admin, "第一版", 1)

    await admin.get_by_role("button", name="编辑 hotline-hours").click()
    form = admin.locator("#entry-form")
    await expect(form.get_by_label("键", exact=True)).to_have_attribute("readonly", "")
    await form.get_by_label("答复口径", exact=True).fill(NEW_ANSWER)
    await form.get_by_role("button", name="保存条目").click()
    rows = admin.locator("#book-entries")
    await expect(rows.locator('tr[data-key="hotline-hours"]')).to_have_attribute(
        "data-status", "changed"
    )
    await admin.get_by_role("button", name="删除 parking").click()
    await expect(rows.locator('tr[data-key="parking"]')).to_have_attribute("data-status", "removed")
    await add_entry(
        admin, key="heating", title="供暖报修", question="暖气不热?", answer="请联系供热公司。"
    )
    await publish(admin, "春节口径调整", 2)

    await admin.get_by_label("旧版本").select_option("1")
    await admin.get_by_label("新版本").select_option("2")
    await admin.get_by_role("button", name="对比", exact=True).click()
    table = admin.locator("#diff-table")
    edited = table.locator('tbody[data-key="hotline-hours"]')
    await expect(edited).to_have_attribute("data-kind", "changed")
    answer = edited.locator('tr[data-field="answer"]')
    await expect(answer.locator('td[data-side="old"]')).to_have_text(OLD_ANSWER)  # side by side
    await expect(answer.locator('td[data-side="new"]')).to_have_text(NEW_ANSWER)
    await expect(edited.locator("ins")).to_contain_text("春节期间由省级平台统一接听")
    await expect(edited.locator('tr[data-field="title"]')).to_have_count(0)  # unchanged field
    kind = "data-kind"
    await expect(table.locator('tbody[data-key="parking"]')).to_have_attribute(kind, "removed")
    await expect(table.locator('tbody[data-key="heating"]')).to_have_attribute(kind, "added")
    await expect(admin.locator("#diff-summary")).to_contain_text("新增 1，删除 1，修改 1")
    await admin.locator("#diff").scroll_into_view_if_needed()
    await screenshot(admin, "admin-diff")

    await admin.get_by_role("button", name="查看第 1 版").click()
    await expect(admin.locator("#version-view")).to_have_attribute("data-version", "1")
    await expect(admin.locator('#version-view li[data-key="hotline-hours"]')).to_contain_text(
        OLD_ANSWER
    )

    await admin.get_by_role("button", name="回滚到第 1 版").click()
    dialog = admin.get_by_role("dialog", name="回滚到第 1 版？")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("第 3 版")
    await expect(dialog.get_by_role("button", name="取消")).to_be_focused()
    await dialog.get_by_role("button", name="取消").click()  # nothing happens
    await expect(dialog).to_be_hidden()
    await expect(admin.locator("#book-version")).to_have_attribute("data-version", "2")
    await admin.get_by_role("button", name="回滚到第 1 版").click()
    await dialog.get_by_role("button", name="确认回滚").click()
    await expect(dialog).to_be_hidden()
    await expect(admin.locator("#book-version")).to_have_attribute("data-version", "3")
    await expect(admin.locator('#versions tr[data-version="3"]')).to_contain_text("回滚自第 1 版")
    await expect(rows.locator('tr[data-key="parking"]')).to_have_attribute("data-status", "same")
    await expect(rows.locator('tr[data-key="heating"]')).to_have_count(0)

    async with admin.expect_download() as info:
        await admin.get_by_role("button", name="导出 CSV").click()
    download = await info.value
    assert download.suggested_filename == f"scripts-{NANJING}-v3.csv"
    saved = await download.path()
    data = await asyncio.to_thread(Path(saved).read_bytes)
    assert data.startswith(b"\xef\xbb\xbf")  # Excel reads it as UTF-8
    text = data.decode("utf-8-sig")
    assert text.splitlines()[0] == "key,title,question,answer,category_code,tags"
    assert OLD_ANSWER in text
    assert "parking" in text
    assert "heating" not in text

    await admin.get_by_role("button", name="English").click()
    await expect(admin.get_by_role("heading", name="Version history")).to_be_visible()
    await expect(admin.get_by_role("button", name="Roll back to version 2")).to_be_visible()
    await expect(admin.locator("#book-version")).to_have_text("version 3")
    await screenshot(admin, "admin-english")
    await admin.get_by_role("button", name="中文").click()
    await expect(admin.get_by_role("heading", name="版本历史")).to_be_visible()


async def test_a_stale_publish_is_explained_and_a_file_is_imported(
    browser: Browser, site: LiveService
) -> None:
    other = await site.add_user(Role.CITY_ADMIN, NANJING)
    admin = await signed_in(browser, site, Role.CITY_ADMIN, NANJING)
    await expect(admin.locator("#book-version")).to_have_attribute("data-version", "0")
    add = admin.get_by_role("button", name="新增口径")
    await add.focus()
    await admin.keyboard.press("Enter")  # the keyboard opens the form and Escape closes it
    await expect(admin.locator("#entry-key")).to_be_focused()
    await admin.keyboard.press("Escape")
    await expect(admin.locator("#entry-form")).to_be_hidden()
    await expect(add).to_be_focused()
    await add_entry(
        admin, key="mine", title="我的条目", question="问?", answer="答。", category="0201"
    )

    meanwhile = await site.http.post(
        f"/api/v1/cities/{NANJING}/scripts",
        json={"entries": [entry("theirs", "他人的条目", "他人的答复。")], "note": "他人发布"},
        headers=site.auth(other),
    )
    assert meanwhile.status_code == 201
    await admin.get_by_label("发布说明").fill("我的发布")
    await admin.get_by_role("button", name="发布新版本").click()
    error = admin.locator("#publish-error")
    await expect(error).to_contain_text("有人发布了新版本")
    await expect(error).to_contain_text("409 stale_version")
    await expect(admin.locator("#book-version")).to_have_attribute("data-version", "0")

    await error.get_by_role("button", name="载入最新版本并保留我的修改").click()
    await expect(admin.locator("#book-version")).to_have_attribute("data-version", "1")
    rows = admin.locator("#book-entries")
    await expect(rows.locator('tr[data-key="mine"]')).to_have_attribute("data-status", "added")
    await expect(rows.locator('tr[data-key="theirs"]')).to_have_attribute("data-status", "same")
    await publish(admin, "我的发布", 2)

    bad = "key,title,question,answer,category_code,tags\r\nx,标题,问题,答复,9999,\r\n"
    upload = admin.get_by_label("口径文件（CSV 或 JSON）")
    await upload.set_input_files(files=csv_file("bad.csv", bad))
    await admin.get_by_role("button", name="导入并发布").click()
    problem = admin.locator("#import-error")
    await expect(problem).to_contain_text("诉求分类代码不存在")
    await expect(problem).to_contain_text("9999")

    good = (
        "\ufeffkey,title,question,answer,category_code,tags\r\n"
        "imported,导入的条目,导入的问题,导入的答复,0102,导入;Excel\r\n"
    )
    await upload.set_input_files(files=csv_file("book.csv", good))
    await admin.get_by_label("导入说明（可选）").fill("从 Excel 导入")
    await admin.get_by_role("button", name="导入并发布").click()
    await expect(admin.locator("#book-version")).to_have_attribute("data-version", "3")
    await expect(problem).to_be_hidden()
    await expect(admin.locator('#versions tr[data-version="3"]')).to_contain_text("从 Excel 导入")
    await expect(rows.locator("tbody tr")).to_have_count(1)
    await expect(rows.locator('tr[data-key="imported"]')).to_contain_text("Excel")
