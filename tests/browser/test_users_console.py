"""The users page in a real browser: a city admin creates an agent of its city, disables and enables
it, resets its password, in Chinese and English; the coordinator sees and manages every user."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from surge.auth.models import Role
from tests.browser.conftest import screenshot, signed_in
from tests.helpers import LiveService

NANJING = "320100"
SUZHOU = "320500"
FIRST_PASSWORD = "first-password-1"
NEW_PASSWORD = "second-password-2"


async def log_in(site: LiveService, name: str, password: str) -> int:
    response = await site.http.post(
        "/api/v1/auth/token", json={"username": name, "password": password}
    )
    return response.status_code


async def test_a_city_admin_manages_its_agents(browser: Browser, site: LiveService) -> None:
    elsewhere = await site.add_user(Role.AGENT, SUZHOU)
    admin = await signed_in(browser, site, Role.CITY_ADMIN, NANJING)
    await admin.get_by_role("link", name="用户管理").click()
    await expect(admin.locator("#users-scope")).to_have_text("南京")
    await expect(admin.locator("#users")).to_contain_text("还没有用户")
    await expect(admin.get_by_label("角色")).to_have_count(0)  # a city admin makes agents only

    await admin.get_by_label("用户名", exact=True).fill("nj-agent-9")
    await admin.get_by_label("初始密码").fill("short")
    await admin.get_by_role("button", name="创建").click()
    await expect(admin.locator("#create-error")).to_have_text("密码至少 8 位")
    await admin.get_by_label("初始密码").fill(FIRST_PASSWORD)
    await admin.get_by_role("button", name="创建").click()
    row = admin.locator('#users tr[data-username="nj-agent-9"]')
    await expect(row).to_have_attribute("data-disabled", "false")
    await expect(row).to_contain_text("坐席")
    await expect(row).to_contain_text("南京")
    await expect(admin.locator("#banner")).to_have_text("已创建 nj-agent-9")
    assert await log_in(site, "nj-agent-9", FIRST_PASSWORD) == 200
    await expect(admin.locator(f'#users tr[data-username="{elsewhere}"]')).to_have_count(0)

    await admin.get_by_label("用户名", exact=True).fill("nj-agent-9")  # the name again
    await admin.get_by_label("初始密码").fill(FIRST_PASSWORD)
    await admin.get_by_role("button", name="创建").click()
    await expect(admin.locator("#create-error")).to_contain_text("用户名已被使用")

    await admin.get_by_role("button", name="停用 nj-agent-9").click()
    await expect(row).to_have_attribute("data-disabled", "true")
    await expect(row).to_contain_text("已停用")
    await expect(admin.get_by_role("button", name="启用 nj-agent-9")).to_be_focused()
    assert await log_in(site, "nj-agent-9", FIRST_PASSWORD) == 401
    await screenshot(admin, "users-disabled")
    await admin.get_by_role("button", name="启用 nj-agent-9").click()
    await expect(row).to_have_attribute("data-disabled", "false")
    assert await log_in(site, "nj-agent-9", FIRST_PASSWORD) == 200

    await admin.get_by_role("button", name="重置 nj-agent-9 的密码").click()
    dialog = admin.locator("#reset-dialog")
    await expect(dialog.get_by_label("新密码")).to_be_focused()
    await dialog.get_by_label("新密码").fill(NEW_PASSWORD)
    await screenshot(admin, "users-reset-dialog")
    await dialog.get_by_role("button", name="重置").click()
    await expect(dialog).to_be_hidden()
    await expect(admin.locator("#banner")).to_contain_text("已重置 nj-agent-9 的密码")
    assert await log_in(site, "nj-agent-9", FIRST_PASSWORD) == 401
    assert await log_in(site, "nj-agent-9", NEW_PASSWORD) == 200

    await admin.get_by_role("button", name="English").click()
    await expect(admin.locator("#users-title")).to_contain_text("Users · Nanjing")
    await expect(row).to_contain_text("Agent")
    await expect(admin.get_by_role("button", name="Disable nj-agent-9")).to_be_visible()
    await admin.get_by_label("Filter by user name").fill("nobody")
    await expect(admin.locator("#users")).to_contain_text("No user matches the filter")


async def test_the_coordinator_manages_every_user(browser: Browser, site: LiveService) -> None:
    agent = await site.add_user(Role.AGENT, SUZHOU)
    coordinator = await signed_in(browser, site, Role.COORDINATOR, None)
    await coordinator.get_by_role("link", name="用户管理").click()
    await expect(coordinator.locator(f'#users tr[data-username="{agent}"]')).to_contain_text("苏州")
    mine = coordinator.locator("#users tr").filter(has_text="省级统筹")
    await expect(mine.get_by_role("button")).to_have_count(0)  # not oneself

    await coordinator.get_by_label("用户名", exact=True).fill("sz-admin")
    await coordinator.get_by_label("初始密码").fill(FIRST_PASSWORD)
    await coordinator.get_by_label("角色").select_option("city_admin")
    await coordinator.get_by_label("城市", exact=True).select_option(SUZHOU)
    await coordinator.get_by_role("button", name="创建").click()
    row = coordinator.locator('#users tr[data-username="sz-admin"]')
    await expect(row).to_contain_text("城市管理员")
    await expect(row).to_contain_text("苏州")
    await coordinator.get_by_label("角色").select_option("coordinator")
    await expect(coordinator.get_by_label("城市", exact=True)).to_be_disabled()
    await coordinator.get_by_role("button", name=f"停用 {agent}").click()
    await expect(coordinator.locator(f'#users tr[data-username="{agent}"]')).to_have_attribute(
        "data-disabled", "true"
    )
    await screenshot(coordinator, "users-coordinator")
