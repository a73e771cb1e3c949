"""Knowledge gaps in real browsers: the agent raises one beside the scripts, the host's admin sees
it arrive live, ticks it in the publish form, and the agent is told it is answered."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from surge.auth.models import Role
from tests.browser.conftest import screenshot, signed_in
from tests.browser.test_admin_console import add_entry, publish
from tests.helpers import LiveService

NANJING = "320100"
QUESTION = "封控区内的快递还能正常派送吗？"


async def test_a_gap_goes_from_the_agent_to_the_admin_and_its_answer_back(
    browser: Browser, site: LiveService
) -> None:
    cti = await site.add_user(Role.CTI)
    admin = await signed_in(browser, site, Role.CITY_ADMIN, NANJING)
    await expect(admin.locator("#gaps-live")).to_have_text("实时")
    await expect(admin.locator("#gap-groups")).to_contain_text("暂无待答复的口径缺口")
    agent = await signed_in(browser, site, Role.AGENT, NANJING)
    await expect(agent.locator("#connection")).to_have_attribute("data-state", "online")
    await expect(agent.locator("#gap-open")).to_be_hidden()  # no call in hand, nothing to raise

    await agent.get_by_role("button", name="置闲").click()
    await site.post_call(cti, NANJING)
    await agent.get_by_role("button", name="接听 (A)").click()
    await agent.get_by_role("button", name="口径未覆盖").click()
    await agent.get_by_label("来电人的问题").fill(QUESTION)
    await agent.get_by_label("备注（可选）").fill("来电人在鼓楼区")
    await screenshot(agent, "agent-gap-zh")
    await agent.get_by_role("button", name="提交反馈").click()
    await expect(agent.locator("#gap-form")).to_be_hidden()
    await expect(agent.locator("#banner")).to_contain_text("已反馈")

    group = admin.locator("#gap-groups li.gap")
    await expect(group).to_contain_text(QUESTION)  # live, without a reload
    await expect(group).to_have_attribute("data-count", "1")
    await screenshot(admin, "admin-gaps-zh")
    await admin.get_by_role("button", name="English").click()
    await expect(admin.locator("#gaps-title")).to_contain_text("Knowledge gaps")
    await expect(group).to_contain_text("raised by: Nanjing")
    await screenshot(admin, "admin-gaps-en")
    await admin.get_by_role("button", name="中文").click()

    await add_entry(
        admin, key="delivery", title="封控区快递", question=QUESTION,
        answer="封控区快递由社区统一接收后分发。",
    )  # fmt: skip
    await admin.get_by_label(f"本次发布答复：{QUESTION}").check()
    await publish(admin, "答复快递派送问题", 1)
    await expect(admin.locator("#gap-groups")).to_contain_text("暂无待答复的口径缺口")
    answers = agent.locator("#gap-answers li")
    await expect(answers).to_contain_text("第 1 版答复口径已覆盖您反馈的问题")
    await expect(answers).to_contain_text(QUESTION)
    await screenshot(agent, "agent-gap-answered-zh")
    await agent.get_by_role("button", name="English").click()
    await expect(agent.get_by_role("button", name="Not in the scripts")).to_be_visible()
    await screenshot(agent, "agent-gap-en")
