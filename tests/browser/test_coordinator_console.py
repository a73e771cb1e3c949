"""The coordinator's dashboard in a real browser: start a surge for Nanjing, watch it, end it."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from surge.auth.models import Role
from tests.browser.conftest import screenshot, signed_in
from tests.helpers import LiveService

NANJING, WUXI, SUZHOU = "320100", "320200", "320500"


async def test_a_coordinator_starts_watches_and_ends_a_surge(
    browser: Browser, site: LiveService
) -> None:
    cti = await site.add_user(Role.CTI)
    coordinator = await signed_in(browser, site, Role.COORDINATOR, None)
    board = coordinator.locator("#board")
    await expect(board.locator(".tile")).to_have_count(13)
    await expect(board.locator("#tile-320100")).to_contain_text("南京")

    helper = await signed_in(browser, site, Role.AGENT, SUZHOU)
    await expect(helper.locator("#connection")).to_have_attribute("data-state", "online")
    await helper.get_by_role("button", name="置闲").click()
    await expect(helper.locator("#presence")).to_have_attribute("data-state", "available")
    for _ in range(2):  # no Nanjing agent is online: the calls wait
        await site.post_call(cti, NANJING, caller="13812345678")
    waiting = board.locator("#tile-320100 [data-field=waiting]")
    await expect(waiting).to_have_text("2", timeout=15_000)  # the next survey (every 5 s)
    # Two calls in the quarter are 8 an hour, against no Nanjing agent; Suzhou's free agent
    # (12 an hour at the default handling time) could take them all.
    await expect(board.locator("#tile-320100 [data-field=capacity]")).to_have_text("0 / 8")
    await expect(board.locator("#tile-320100 [data-field=shortfall]")).to_have_text("0")
    await screenshot(coordinator, "coordinator-board")

    # Choose the host; the proposal fills the wave editor, which must end up including Suzhou.
    await coordinator.get_by_label("求援城市").select_option(NANJING)
    form = coordinator.locator(f"#surge-form[data-state=ready][data-host='{NANJING}']")
    await expect(form.locator("#wave-1")).to_be_visible()
    await expect(form.locator(f"#wave-1-{NANJING}")).to_have_count(0)  # not its own helper
    await form.locator(f"#wave-1-{SUZHOU}").check()
    await form.locator("#wave-1-seats").fill("1")
    await coordinator.get_by_role("button", name="添加一波").click()  # a second wave, for later
    await form.locator(f"#wave-2-{WUXI}").check()
    await coordinator.get_by_label("启动原因（记入审计日志）").fill("南京来电积压")
    await coordinator.get_by_label("放弃来电自动回拨").check()  # its callers who give up: 回拨
    await screenshot(coordinator, "coordinator-wave-editor")
    await coordinator.get_by_role("button", name="启动多援一", exact=True).click()

    card = coordinator.locator(f"#surges .surge-card[data-host='{NANJING}']")
    await expect(card).to_be_visible()
    await expect(card.locator("h3")).to_contain_text("南京多援一")
    card_id = await card.get_attribute("data-id")
    await expect(card.locator(f"#surge-{card_id}-status")).to_have_text("进行中")
    await expect(card.locator(f"#surge-{card_id}-callbacks")).to_have_text("自动回拨")
    await expect(coordinator.locator("#surge-error")).to_have_text("")

    # The Suzhou agent is told, and offered a Nanjing call with the caller masked.
    await expect(helper.locator("#surge-banner")).to_have_attribute("data-kind", "joined")
    await expect(helper.locator("#surge-banner")).to_contain_text("南京")
    await expect(helper.locator("#offer-caller")).to_have_text("138****5678")
    await expect(helper.locator("#offer-city")).to_contain_text("南京")
    await screenshot(helper, "coordinator-helper-offer")

    suzhou = card.locator(f"tr[data-city='{SUZHOU}']")
    await expect(suzhou.locator("[data-field=in_use]")).to_have_text("1")
    await helper.get_by_role("button", name="接听 (A)").click()
    await expect(helper.locator("#call")).to_be_visible()
    await expect(suzhou.locator("[data-field=answered]")).to_have_text("1")
    await expect(card.locator(".surge-chart svg")).to_be_visible()
    await expect(card.locator(".adoption")).to_contain_text("第 0 版")
    await screenshot(coordinator, "coordinator-surge-view")

    wuxi = card.locator(f"tr[data-city='{WUXI}']")
    await expect(wuxi).to_have_class("pending")
    await card.get_by_role("button", name="启动第 2 波").click()
    await expect(wuxi).to_have_class("active")
    await expect(card.get_by_role("button", name="启动第 2 波")).to_be_hidden()

    # Ending asks first; cancelling changes nothing.
    await card.get_by_role("button", name="结束多援一").click()
    await expect(card.locator(".confirm")).to_be_visible()
    await card.get_by_role("button", name="取消").click()
    await expect(card.locator(".confirm")).to_be_hidden()
    await card.get_by_role("button", name="结束多援一").click()
    await card.get_by_label("结束原因（可选）").fill("积压已消化")
    await screenshot(coordinator, "coordinator-end-confirm")
    await card.get_by_role("button", name="确认结束").click()

    # Draining: the helper still has the call in hand, so the card stays and says why.
    await expect(card.locator(f"#surge-{card_id}-status")).to_have_text("收尾中")
    await expect(card).to_contain_text("援助坐席手中还有 1 通来电")
    await expect(card.get_by_role("button", name="结束多援一")).to_be_hidden()
    await expect(helper.locator("#surge-banner")).to_have_attribute("data-kind", "left")
    await screenshot(coordinator, "coordinator-surge-draining")
    await helper.get_by_label("诉求分类").select_option("0101")
    await helper.get_by_role("button", name="完成工单").click()
    await expect(helper.locator("#call")).to_be_hidden()

    await expect(card).to_have_count(0)
    await expect(coordinator.locator("#surges")).to_contain_text("目前没有进行中的多援一")
    reader = await site.add_user(Role.COORDINATOR)
    [ended] = (await site.http.get("/api/v1/surges", headers=site.auth(reader))).json()
    assert (ended["status"], ended["host_city"]) == ("ended", NANJING)
    assert SUZHOU in ended["waves"][0]["cities"]


async def test_the_dashboard_shows_api_errors_and_switches_to_english(
    browser: Browser, site: LiveService
) -> None:
    coordinator = await signed_in(browser, site, Role.COORDINATOR, None)
    await expect(coordinator.locator("#board .tile")).to_have_count(13)
    await coordinator.get_by_label("求援城市").select_option(NANJING)
    form = coordinator.locator(f"#surge-form[data-state=ready][data-host='{NANJING}']")
    await expect(form.locator("#wave-1")).to_be_visible()
    for box in await form.locator("#wave-1 input[type=checkbox]").all():
        await box.uncheck()
    await form.locator(f"#wave-1-{SUZHOU}").check()
    await form.locator("#wave-1-seats").fill("0")  # the API refuses it; the page says why
    await coordinator.get_by_role("button", name="启动多援一", exact=True).click()
    await expect(coordinator.locator("#surge-error")).to_have_attribute(
        "data-code", "invalid_request"
    )
    await expect(coordinator.locator("#surge-error")).to_contain_text("seats_per_city")

    await coordinator.get_by_role("button", name="English").click()
    await expect(
        coordinator.get_by_role("heading", name="Pressure across the province")
    ).to_be_visible()
    await expect(coordinator.locator("#tile-320100")).to_contain_text("Nanjing")
    await expect(coordinator.locator("#proposal-status")).to_have_text(
        "Proposal loaded; adjust it as needed"
    )
    await expect(coordinator.get_by_role("button", name="Start the surge")).to_be_visible()
    await screenshot(coordinator, "coordinator-english")
