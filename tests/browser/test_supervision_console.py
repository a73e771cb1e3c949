"""Supervision in a real browser: the coordinator's agents view (filters, force logout, release of
a call whose agent is gone), the notice box of a running surge, and the agents' notices."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from surge.auth.models import Role
from tests.browser.conftest import screenshot, signed_in
from tests.browser.test_accessibility import assert_accessible
from tests.helpers import LiveService

NANJING, SUZHOU = "320100", "320500"


async def test_a_coordinator_supervises_agents_and_sends_a_notice(
    browser: Browser, site: LiveService
) -> None:
    cti = await site.add_user(Role.CTI, NANJING)
    starter = await site.add_user(Role.COORDINATOR)
    body = {"host_city": NANJING, "waves": [{"cities": [SUZHOU], "seats_per_city": 1}],
            "overflow_after_s": 600}  # fmt: skip
    made = await site.http.post("/api/v1/surges", json=body, headers=site.auth(starter))
    assert made.status_code == 201, made.text
    surge_id = made.json()["id"]

    host = await signed_in(browser, site, Role.AGENT, NANJING)
    host_name = list(site.tokens)[-1]
    helper = await signed_in(browser, site, Role.AGENT, SUZHOU)
    for page in (host, helper):
        await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
    await expect(host.locator("#notice-list")).to_contain_text("暂无通知")
    coordinator = await signed_in(browser, site, Role.COORDINATOR, None)

    # The notice box of the running surge reaches the host's and the helper's consoles.
    card = coordinator.locator(f"#surge-{surge_id}")
    await expect(card).to_be_visible()
    await card.get_by_label("向本次多援一全体坐席发布通知").fill("12:00 起消费券按新口径答复")
    await card.get_by_role("button", name="发送通知").click()
    await expect(coordinator.locator("#banner")).to_contain_text("通知已发送")
    await card.get_by_role("button", name="发送通知").click()  # empty: refused in the page
    await expect(card.locator(f"#surge-{surge_id}-notice-error")).to_have_text("请输入通知内容")
    await card.get_by_label("向本次多援一全体坐席发布通知").fill("第二条：注意核对地址")
    await card.get_by_role("button", name="发送通知").click()
    for page in (host, helper):
        items = page.locator("#notice-list li")
        await expect(items).to_have_count(2)
        await expect(items.first).to_contain_text("第二条")  # newest first
        await expect(items.nth(1)).to_contain_text(f"多援一 #{surge_id}")
    await assert_accessible(host, "agent console with notices")

    # The agents view: the host's agent takes a call; filter by state.
    await host.get_by_role("button", name="置闲").click()
    call = await site.post_call(cti, NANJING)
    await host.get_by_role("button", name="接听 (A)").click()
    await expect(host.locator("#call")).to_be_visible()
    agents = coordinator.locator("#agents")
    row = agents.locator(f"tr:has(th:text-is('{host_name}'))")
    await expect(row.locator("[data-field=state]")).to_have_text("通话中", timeout=10_000)
    await expect(row.locator("[data-field=call]")).to_have_text(str(call["id"]))
    await agents.get_by_label("状态").select_option("busy")
    await expect(agents.locator("tbody tr")).to_have_count(1)
    await agents.get_by_label("城市（含援助坐席）").select_option(NANJING)
    await expect(agents.locator("tbody tr")).to_have_count(1)
    await agents.get_by_label("状态").select_option("")
    await assert_accessible(coordinator, "coordinator dashboard with the agents view")
    await screenshot(coordinator, "coordinator-agents")

    # Force the logout: the console is closed and says so; the call stays, to be released.
    await agents.get_by_role("button", name=f"强制签出 {host_name}").click()
    await expect(host.locator("#banner")).to_contain_text("您已被管理员签出")
    await expect(host.locator("#connection")).to_have_attribute("data-state", "offline")
    await expect(host.locator("#connection")).to_have_text("您已被管理员签出")
    await expect(row.locator("[data-field=state]")).to_have_text("离线")
    await expect(row.locator("[data-field=call]")).to_have_text(str(call["id"]))
    await agents.get_by_role("button", name=f"释放 {host_name} 的来电 #{call['id']}").click()
    await expect(coordinator.locator("#release-box")).to_be_visible()
    await assert_accessible(coordinator, "coordinator releasing a call")
    await coordinator.get_by_role("textbox", name=f"释放来电 #{call['id']} 的原因").fill(
        "坐席被签出，来电已挂断"
    )
    await coordinator.get_by_role("button", name="确认释放").click()
    await expect(coordinator.locator("#banner")).to_contain_text(f"来电 #{call['id']} 已释放")
    await expect(row.locator("[data-field=call]")).to_have_text("—")
    released = await site.http.get(f"/api/v1/calls/{call['id']}", headers=site.auth(cti))
    assert released.json()["disposition"] == "released"

    await coordinator.get_by_role("button", name="English").click()
    await expect(agents.locator("h2")).to_have_text("Agents")
    await expect(row.locator("[data-field=state]")).to_have_text("Offline")
    await expect(card.get_by_role("button", name="Send notice")).to_be_visible()
    await helper.get_by_role("button", name="English").click()
    await expect(helper.locator("#notices h2")).to_have_text("Notices")
