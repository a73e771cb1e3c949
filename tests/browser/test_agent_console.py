"""The agent console in a real browser: log in, go available, take a call, complete the ticket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, WebSocketRoute, expect

from surge.auth.models import Role
from tests.browser.conftest import screenshot, signed_in
from tests.browser.test_accessibility import assert_accessible
from tests.helpers import PASSWORD, LiveService, run_service

NANJING, SUZHOU = "320100", "320500"


async def test_an_agent_logs_in_takes_a_call_and_completes_it(
    browser: Browser, site: LiveService
) -> None:
    cti = await site.add_user(Role.CTI)
    page = await signed_in(browser, site, Role.AGENT, NANJING)
    await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
    await expect(page.locator("#presence")).to_have_attribute("data-state", "break")

    await page.get_by_role("button", name="置闲").click()
    await expect(page.locator("#presence")).to_have_attribute("data-state", "available")
    call = await site.post_call(cti, NANJING, caller="13912345678")

    offer = page.locator("#offer")
    await expect(offer.locator("#offer-caller")).to_have_text("13912345678")  # own city: whole
    await expect(offer.locator("#offer-city")).to_contain_text("南京")
    await expect(offer.locator("#offer-countdown")).to_contain_text("秒")
    # While an offer rings there is nothing to go available for: accept or decline it.
    await expect(page.get_by_role("button", name="置闲")).to_be_disabled()
    await screenshot(page, "agent-offer")
    await page.keyboard.press("a")  # the keyboard accepts

    await expect(page.locator("#call")).to_be_visible()
    await expect(page.locator("#presence")).to_have_attribute("data-state", "busy")
    await page.get_by_label("诉求分类").select_option("0101")
    await page.get_by_label("转办").check()
    await page.get_by_label("工单摘要").fill("询问核酸检测点")
    await screenshot(page, "agent-call")
    await page.get_by_role("button", name="完成工单").click()

    await expect(page.locator("#call")).to_be_hidden()
    await expect(page.locator("#presence")).to_have_attribute("data-state", "available")
    ticket = await site.http.get(f"/api/v1/calls/{call['id']}", headers=site.auth(cti))
    body = ticket.json()
    assert (body["status"], body["disposition"]) == ("completed", "transferred")
    assert (body["category_code"], body["summary"]) == ("0101", "询问核酸检测点")


async def test_the_console_switches_to_english(browser: Browser, site: LiveService) -> None:
    page = await signed_in(browser, site, Role.AGENT, NANJING)

    await page.get_by_role("button", name="English").click()

    await expect(page.get_by_role("button", name="Go available")).to_be_visible()
    await expect(page.locator("#presence")).to_have_text("On break")
    await expect(page.locator("#connection")).to_have_text("Connected")
    await page.get_by_role("button", name="中文").click()
    await expect(page.get_by_role("button", name="置闲")).to_be_visible()
    await expect(page.locator("#connection")).to_have_text("已连接")


async def test_the_console_reconnects_after_a_network_drop_and_says_so(
    browser: Browser, site: LiveService
) -> None:
    """The socket is cut under the page; the console says so, reconnects, keeps the call."""
    cti = await site.add_user(Role.CTI)
    name = await site.add_user(Role.AGENT, NANJING)
    page = await browser.new_page(viewport={"width": 1280, "height": 860})
    routes: list[WebSocketRoute] = []

    async def through(route: WebSocketRoute) -> None:
        route.connect_to_server()
        routes.append(route)

    await page.route_web_socket("**/ws/agent*", through)
    await page.goto(f"{site.base_url}/console/")
    await page.get_by_label("用户名").fill(name)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
    await page.get_by_role("button", name="置闲").click()
    call = await site.post_call(cti, NANJING)
    await page.get_by_role("button", name="接听 (A)").click()
    await expect(page.locator("#call")).to_be_visible()

    await routes[-1].close(code=1011, reason="network lost")  # the line drops

    await expect(page.locator("#connection")).to_have_attribute("data-state", "offline")
    await expect(page.locator("#banner")).to_contain_text("正在重新连接")
    await screenshot(page, "agent-reconnecting")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
    await expect(page.locator("#banner")).to_contain_text("已重新连接")
    assert len(routes) == 2  # a second socket, opened by the console itself
    await expect(page.locator("#call")).to_contain_text(f"#{call['id']}")  # still in hand
    await page.get_by_role("button", name="完成工单").click()
    await expect(page.locator("#call")).to_be_hidden()
    ticket = await site.http.get(f"/api/v1/calls/{call['id']}", headers=site.auth(cti))
    assert ticket.json()["status"] == "completed"


async def take_and_complete_a_call(page: Page, site: LiveService, cti: str) -> None:
    """Go available, accept the offer of a posted call and close its ticket."""
    await page.get_by_role("button", name="置闲").click()
    await site.post_call(cti, NANJING)
    await page.get_by_role("button", name="接听 (A)").click()
    await page.get_by_label("诉求分类").select_option("0101")
    await page.get_by_role("button", name="完成工单").click()


@pytest.fixture
async def wrapping_site(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[LiveService]:
    """The console's service with a 4 s wrap-up after each ticket."""
    from tests.conftest import make_backend

    async with (
        make_backend("embedded", request, tmp_path) as backend,
        run_service(backend.settings(offer_timeout_s=15.0, wrap_up_s=4.0)) as live,
    ):
        yield live


async def test_the_wrap_up_counts_down_and_can_be_ended_early(
    browser: Browser, wrapping_site: LiveService
) -> None:
    site = wrapping_site
    cti = await site.add_user(Role.CTI)
    page = await signed_in(browser, site, Role.AGENT, NANJING)
    await take_and_complete_a_call(page, site, cti)

    presence = page.locator("#presence")
    await expect(presence).to_have_attribute("data-state", "wrap_up")
    await expect(presence).to_contain_text("话后整理 · 剩余")
    first = await presence.text_content()
    await expect(presence).not_to_have_text(first or "")  # it counts down
    await screenshot(page, "agent-wrap-up")
    await page.get_by_role("button", name="English").click()
    await expect(presence).to_contain_text("Wrap-up ·")
    await expect(presence).to_contain_text("s left")
    waiting = await site.post_call(cti, NANJING)
    await page.get_by_role("button", name="Go available").click()  # ends it at once
    await expect(page.locator("#offer-caller")).to_be_visible()
    await expect(presence).to_have_attribute("data-state", "offered")
    assert waiting["status"] == "queued"


async def test_the_wrap_up_ends_by_itself(browser: Browser, wrapping_site: LiveService) -> None:
    site = wrapping_site
    cti = await site.add_user(Role.CTI)
    page = await signed_in(browser, site, Role.AGENT, NANJING)
    await take_and_complete_a_call(page, site, cti)
    await expect(page.locator("#presence")).to_have_attribute("data-state", "wrap_up")
    await expect(page.locator("#presence")).to_have_attribute(
        "data-state", "available", timeout=8_000
    )
    await expect(page.locator("#presence")).to_have_text("空闲")


async def test_an_agent_transfers_the_call_in_hand_with_a_note(
    browser: Browser, site: LiveService
) -> None:
    cti = await site.add_user(Role.CTI)
    suzhou = await site.add_user(Role.AGENT, SUZHOU)
    page = await signed_in(browser, site, Role.AGENT, NANJING)
    await page.get_by_role("button", name="置闲").click()
    call = await site.post_call(cti, NANJING, channel="wechat", priority=5)
    await expect(page.locator("#offer-channel")).to_contain_text("微信")
    await expect(page.locator("#offer-priority")).to_have_text("优先级 5")
    await page.get_by_role("button", name="接听 (A)").click()
    await expect(page.locator("#talk-time")).to_have_text("0:01", timeout=3_000)  # it runs
    transfer = page.locator("form.transfer")
    await expect(transfer.get_by_label("转至").locator("option")).to_have_count(12)  # no Nanjing
    await transfer.get_by_label("转至").select_option(SUZHOU)
    await transfer.get_by_label("转接说明").fill("苏州社保问题，请苏州答复")
    await screenshot(page, "agent-transfer")
    await transfer.get_by_role("button", name="转接来电").click()

    await expect(page.locator("#call")).to_be_hidden()
    await expect(page.locator("#banner")).to_contain_text("来电已转至苏州")
    async with site.console(suzhou) as other:
        await other.available()
        offer = await other.expect("offer")
        assert (offer["call"]["id"], offer["call"]["note"]) == (
            call["id"],
            "苏州社保问题，请苏州答复",
        )


async def test_a_callback_offer_is_marked_dialled_then_handled(
    browser: Browser, site: LiveService
) -> None:
    """A callback (回拨) says so in the offer, shows the dialling, then the call as any call."""
    cti = await site.add_user(Role.CTI)
    page = await signed_in(browser, site, Role.AGENT, NANJING)
    call = await site.post_call(cti, NANJING, caller="13912345678")
    asked = await site.http.post(f"/api/v1/calls/{call['id']}/callback", headers=site.auth(cti))
    assert asked.status_code == 200, asked.text
    await page.get_by_role("button", name="置闲").click()

    offer = page.locator("#offer")
    await expect(offer.locator("#offer-title")).to_have_text("回拨请求")
    await expect(offer.locator("#offer-kind")).to_have_text("回拨")
    await assert_accessible(page, "agent console with a callback offer")
    await page.get_by_role("button", name="English").click()
    await expect(offer.locator("#offer-title")).to_have_text("Callback request")
    await expect(offer.locator("#offer-kind")).to_have_text("Callback")
    await page.get_by_role("button", name="Accept (A)").click()

    await expect(page.locator("#dialing")).to_have_text("Dialling the caller…")
    await expect(page.locator("#call-kind")).to_have_text("Callback")
    await expect(page.locator("#complete")).to_have_count(0)  # nothing to close before it connects
    await assert_accessible(page, "agent console dialling a callback")
    reached = await site.http.post(
        f"/api/v1/calls/{call['id']}/callback/result",
        json={"reached": True},
        headers=site.auth(cti),
    )
    assert reached.status_code == 200, reached.text
    await expect(page.locator("#complete")).to_be_visible()
    await page.get_by_role("button", name="Complete").click()
    await expect(page.locator("#call")).to_be_hidden()
    ticket = await site.http.get(f"/api/v1/calls/{call['id']}", headers=site.auth(cti))
    assert ticket.json()["status"] == "completed"


async def test_a_callback_not_reached_frees_the_agent_and_says_so(
    browser: Browser, site: LiveService
) -> None:
    cti = await site.add_user(Role.CTI)
    page = await signed_in(browser, site, Role.AGENT, NANJING)
    call = await site.post_call(cti, NANJING)
    await site.http.post(f"/api/v1/calls/{call['id']}/callback", headers=site.auth(cti))
    await page.get_by_role("button", name="置闲").click()
    await page.get_by_role("button", name="接听 (A)").click()
    await expect(page.locator("#dialing")).to_have_text("正在回拨来电人…")
    missed = await site.http.post(
        f"/api/v1/calls/{call['id']}/callback/result",
        json={"reached": False},
        headers=site.auth(cti),
    )
    assert missed.status_code == 200, missed.text
    await expect(page.locator("#call")).to_be_hidden()
    await expect(page.locator("#presence")).to_have_attribute("data-state", "available")
    await expect(page.get_by_text("回拨未接通，将在 120 秒后重新回拨")).to_be_visible()
