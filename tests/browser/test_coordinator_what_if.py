"""The coordinator's wave editor predicts each wave's service (what-if); the board adds the
province up and says when routing cannot cover it."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, expect

from surge.auth.models import Role
from tests.browser.conftest import screenshot, signed_in
from tests.helpers import LiveService

NANJING, WUXI, XUZHOU, SUZHOU = "320100", "320200", "320300", "320500"


async def what_if(site: LiveService, user: str, seats: list[int]) -> dict[str, Any]:
    """What the API predicts for Nanjing with these cumulative helper seats."""
    response = await site.http.post(
        "/api/v1/surges/what-if",
        json={"host_city": NANJING, "helper_seats": seats},
        headers=site.auth(user),
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def as_js(value: float) -> str:
    """A number as the page writes it in a data attribute (1, not 1.0)."""
    return str(int(value)) if value == int(value) else str(value)


async def test_the_wave_editor_predicts_and_the_board_adds_the_province_up(
    browser: Browser, site: LiveService
) -> None:
    cti = await site.add_user(Role.CTI)
    checker = await site.add_user(Role.COORDINATOR)
    for _ in range(20):  # 80 calls an hour at Nanjing, nobody logged in anywhere
        await site.post_call(cti, NANJING)
    coordinator = await signed_in(browser, site, Role.COORDINATOR, None)
    province = coordinator.locator("#province")
    await expect(province.locator("[data-field=demand]")).to_have_text("80", timeout=15_000)
    await expect(province.locator("[data-field=capacity]")).to_have_text("0")
    await expect(province.locator("[data-field=shortfall]")).to_have_text("80")
    await expect(province.locator("[data-field=waiting]")).to_have_text("20")
    await expect(coordinator.locator("#province-verdict")).to_have_attribute("data-short", "true")
    await expect(coordinator.locator("#province-verdict")).to_contain_text("调度无法弥补")

    await coordinator.get_by_label("求援城市").select_option(NANJING)
    form = coordinator.locator(f"#surge-form[data-state=ready][data-host='{NANJING}']")
    await expect(form.locator("#wave-1")).to_be_visible()
    for box in await form.locator("#wave-1 input[type=checkbox]").all():
        await box.uncheck()
    await form.locator(f"#wave-1-{SUZHOU}").check()
    await form.locator(f"#wave-1-{WUXI}").check()
    await form.locator("#wave-1-seats").fill("5")
    await coordinator.get_by_role("button", name="添加一波").click()
    await form.locator(f"#wave-2-{XUZHOU}").check()
    await form.locator("#wave-2-seats").fill("3")
    # Wave 1: 2 cities x 5 seats; wave 2 adds 3: what the API says for 10 and 13 seats.
    expected = await what_if(site, checker, [10, 13])
    first, second = form.locator("#wave-1-forecast"), form.locator("#wave-2-forecast")
    await expect(first).to_have_attribute("data-seats", "10")
    await expect(second).to_have_attribute("data-seats", "13")
    for node, scenario in zip((first, second), expected["scenarios"], strict=True):
        await expect(node).to_have_attribute("data-service-level", as_js(scenario["service_level"]))
        await expect(node).to_contain_text(f"{scenario['service_level'] * 100:.1f}%")
    sizing = form.locator("#what-if-sizing")
    await expect(sizing).to_have_attribute("data-agents", str(expected["agents_needed"]))
    await expect(sizing).to_contain_text(f"需坐席 {expected['agents_needed']} 名")
    # Nobody hung up yet: patience unknown, Erlang C; the figures say where they came from.
    await expect(form.locator("#what-if")).to_have_attribute("data-method", "erlang_c")
    await expect(form.locator("#what-if-inputs")).to_contain_text("来话 80/时（实时）")
    await expect(form.locator("#what-if-inputs")).to_contain_text("平均处理 300 秒（默认值）")
    await expect(first).to_contain_text("不计放弃")
    await screenshot(coordinator, "coordinator-what-if")

    # Fewer seats: the prediction follows the edit.
    await form.locator("#wave-1-seats").fill("2")
    fewer = await what_if(site, checker, [4, 7])
    await expect(first).to_have_attribute("data-seats", "4")
    await expect(first).to_have_attribute(
        "data-service-level", as_js(fewer["scenarios"][0]["service_level"])
    )
    await expect(second).to_have_attribute("data-seats", "7")

    await coordinator.get_by_role("button", name="English").click()
    await expect(first).to_contain_text("Predicted: service level")
    await expect(form.locator("#what-if-inputs")).to_contain_text("80 calls/h (live)")
    await expect(sizing).to_contain_text(f"needs {fewer['agents_needed']} agents")
    await expect(coordinator.locator("#province-verdict")).to_contain_text("recruit or deflect")
    await expect(province).to_contain_text("Shortfall per h")
    await screenshot(coordinator, "coordinator-what-if-english")
