"""Required script versions in the agent console: a clear banner with what changed, in Chinese
and English, until the scripts have been on display; then the console acknowledges by itself."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from playwright.async_api import Browser, expect

from surge.auth.models import Role
from tests.browser.conftest import screenshot, signed_in
from tests.browser.test_admin_console import add_entry
from tests.browser.test_admin_console import publish as publish_draft
from tests.helpers import LiveService

NANJING, SUZHOU = "320100", "320500"


def entry(key: str, title: str) -> dict[str, Any]:
    """A script entry as the API takes it."""
    answer = f"{title}：请以公告为准。"
    return {"key": key, "title": title, "question": f"{title}？", "answer": answer,
            "category_code": "0101", "tags": []}  # fmt: skip


async def publish(site: LiveService, admin: str, city: str, entries: list[dict[str, Any]],
                  **extra: Any) -> None:  # fmt: skip
    response = await site.http.post(
        f"/api/v1/cities/{city}/scripts",
        json={"entries": entries, **extra},
        headers=site.auth(admin),
    )
    assert response.status_code == 201, response.text


async def held_back(site: LiveService, admin: str, city: str, *, expected: int) -> dict[str, Any]:
    """The city's adoption view once it holds back `expected` agents (acks arrive by socket)."""
    deadline = time.monotonic() + 10
    while True:
        view: dict[str, Any] = (
            await site.http.get(f"/api/v1/cities/{city}/scripts/adoption", headers=site.auth(admin))
        ).json()
        if view["held_back"] == expected and view["serving"] == 1:
            return view
        assert time.monotonic() < deadline, view
        await asyncio.sleep(0.1)


async def test_the_console_shows_required_scripts_and_acknowledges_them_on_display(
    browser: Browser, site: LiveService
) -> None:
    coordinator = await site.add_user(Role.COORDINATOR)
    host_admin = await site.add_user(Role.CITY_ADMIN, NANJING)
    own_admin = await site.add_user(Role.CITY_ADMIN, SUZHOU)
    await publish(site, host_admin, NANJING, [entry("testing", "核酸检测点")])
    await publish(site, own_admin, SUZHOU, [entry("buses", "公交停运")])
    surge = await site.http.post(
        "/api/v1/surges",
        json={"host_city": NANJING, "waves": [{"cities": [SUZHOU], "seats_per_city": 2}]},
        headers=site.auth(coordinator),
    )
    assert surge.status_code == 201, surge.text
    page = await signed_in(browser, site, Role.AGENT, SUZHOU)
    await expect(page.locator("#surge-banner")).to_have_attribute("data-kind", "joined")
    await expect(page.locator("#scripts-city")).to_have_text("南京")  # the host's, on display
    banner = page.locator("#required-banner")
    await expect(banner).to_be_hidden()

    # Its own city requires a new version while the host's scripts are on display.
    changed = [entry("buses", "公交恢复运营"), entry("metro", "地铁停运")]
    await publish(site, own_admin, SUZHOU, changed, required=True)
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("必读口径")
    await expect(banner).to_contain_text("苏州答复口径第 2 版为必读版本")
    await expect(banner).to_contain_text("新增 1 条，修改 1 条，删除 0 条")
    await expect(banner).to_contain_text("metro")
    await held_back(site, own_admin, SUZHOU, expected=1)  # no Suzhou call for it meanwhile
    await screenshot(page, "agent-required-zh")
    await page.get_by_role("button", name="English").click()
    await expect(banner).to_contain_text("Suzhou's answer scripts version 2 are required")
    await expect(banner).to_contain_text("1 added, 1 changed, 0 removed")
    await screenshot(page, "agent-required-en")

    # Reading them puts them on display, which acknowledges them: the hold is lifted.
    await page.get_by_role("button", name="Read Suzhou's scripts").click()
    await expect(page.locator("#scripts-city")).to_have_text("Suzhou")
    await expect(page.locator("#script-version")).to_have_attribute("data-version", "2")
    await expect(banner).to_be_hidden()
    await expect(page.locator("#banner")).to_contain_text("You have read Suzhou's answer scripts")
    view = await held_back(site, own_admin, SUZHOU, expected=0)
    assert (view["required_version"], view["behind"]) == (2, [])

    # A required version of the scripts on display is acknowledged as soon as it is shown.
    await page.get_by_role("button", name="中文").click()
    await publish(site, own_admin, SUZHOU, [entry("metro", "地铁恢复运营")], required=True)
    await expect(page.locator("#script-version")).to_have_attribute("data-version", "3")
    view = await held_back(site, own_admin, SUZHOU, expected=0)
    assert (view["required_version"], view["behind"]) == (3, [])
    await expect(banner).to_be_hidden()
    # The host's required version, while its own city's scripts are still on display (until an
    # offer needs others): the banner again, and reading them lifts the host's hold.
    await publish(site, host_admin, NANJING, [entry("testing", "核酸检测点调整")], required=True)
    await expect(banner).to_contain_text("南京答复口径第 2 版为必读版本")
    await expect(banner).to_contain_text("新增 0 条，修改 1 条，删除 0 条")
    await held_back(site, host_admin, NANJING, expected=1)
    await page.get_by_role("button", name="阅读南京口径").click()
    await expect(page.locator("#scripts-city")).to_have_text("南京")
    await expect(banner).to_be_hidden()
    view = await held_back(site, host_admin, NANJING, expected=0)
    assert (view["required_version"], view["behind"]) == (2, [])


async def test_the_admin_publishes_a_required_version_and_the_agent_is_told(
    browser: Browser, site: LiveService
) -> None:
    agent = await signed_in(browser, site, Role.AGENT, NANJING)
    await expect(agent.locator("#connection")).to_have_attribute("data-state", "online")
    admin = await signed_in(browser, site, Role.CITY_ADMIN, NANJING)
    await add_entry(admin, key="metro", title="地铁停运", question="地铁还开吗？",
                    answer="地铁今日停运，恢复时间见公告。")  # fmt: skip
    required = admin.get_by_label("必读版本（坐席确认阅读前暂不分配本市来电）")
    await required.check()
    await screenshot(admin, "admin-publish-required")
    await publish_draft(admin, "地铁停运必读", 1)
    await expect(required).not_to_be_checked()
    token = await admin.evaluate("JSON.parse(sessionStorage.getItem('surge.session')).token")
    read = await site.http.get(
        f"/api/v1/cities/{NANJING}/scripts/versions/1",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert read.json()["required"] is True
    # The agent's console has its own city's scripts on display: it acknowledges at once.
    await expect(agent.locator("#script-version")).to_have_attribute("data-version", "1")
    view = await held_back(site, await site.add_user(Role.COORDINATOR), NANJING, expected=0)
    assert (view["required_version"], view["behind"]) == (1, [])
