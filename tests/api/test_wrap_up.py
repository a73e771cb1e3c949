"""Wrap-up (话后整理): after a good `complete` the agent is in `wrap_up`, offered nothing, until
it ends by itself or the agent ends it; the handling time runs to its end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from surge.auth.models import Role
from tests.conftest import Backend
from tests.helpers import Console, LiveService, run_service

NANJING = "320100"
WRAP_UP_S = 1.5


@pytest.fixture
async def wrapping(backend: Backend) -> AsyncIterator[LiveService]:
    settings = backend.settings(offer_timeout_s=15.0, wrap_up_s=WRAP_UP_S)
    async with run_service(settings) as live:
        yield live


async def take_and_complete(service: LiveService, console: Console, cti: str) -> int:
    """Post a call, accept its offer and close the ticket; return the call's id."""
    call = await service.post_call(cti, NANJING)
    offer = await console.expect("offer")
    assert offer["call"]["id"] == call["id"]
    await console.send(type="accept", offer_id=offer["offer_id"])
    await console.expect("call.connected")
    await console.send(
        type="complete", call_id=call["id"], disposition="answered", category_code="0101"
    )
    assert (await console.expect("call.completed"))["call_id"] == call["id"]
    call_id: int = call["id"]
    return call_id


async def wrapped_up(service: LiveService, who: str, call_id: int) -> dict[str, Any]:
    """The call once the end of its wrap-up is recorded: just after the agent is told, so a
    next offer may come first."""
    for _ in range(40):
        body: dict[str, Any] = (
            await service.http.get(f"/api/v1/calls/{call_id}", headers=service.auth(who))
        ).json()
        if body["wrapped_up_at"] is not None:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"call {call_id}: the end of its wrap-up was never recorded")


async def wrap_up_after_a_call(service: LiveService, console: Console, cti: str) -> dict[str, Any]:
    """Go available, take and complete a call; return the `wrap_up` state frame that follows."""
    await console.available()
    call_id = await take_and_complete(service, console, cti)
    frame = await console.expect("state")
    assert (frame["state"], frame["call_id"]) == ("wrap_up", call_id)
    return frame


async def test_no_offer_during_the_wrap_up_then_available_by_itself(
    wrapping: LiveService,
) -> None:
    service = wrapping
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    async with service.console(agent) as console:
        wrap_up = await wrap_up_after_a_call(service, console, cti)
        completed_at = time.monotonic()
        first = wrap_up["call_id"]
        assert wrap_up["ends_in_s"] == pytest.approx(WRAP_UP_S, abs=0.01)

        waiting = await service.post_call(cti, NANJING)
        await console.silent(WRAP_UP_S - 0.5)  # no offer while wrapping up
        assert (await console.expect("state", within=3))["state"] == "available"
        assert time.monotonic() - completed_at >= WRAP_UP_S - 0.1
        offer = await console.expect("offer")
        assert offer["call"]["id"] == waiting["id"]

    body = await wrapped_up(service, cti, first)
    ended = datetime.fromisoformat(body["ended_at"])
    wrapped = datetime.fromisoformat(body["wrapped_up_at"])
    assert (wrapped - ended).total_seconds() == pytest.approx(WRAP_UP_S, abs=0.05)
    # The handling time in the daily report runs to the end of the wrap-up.
    coordinator = await service.add_user(Role.COORDINATOR)
    day = ended.astimezone(ZoneInfo(service.settings.report_timezone)).date()
    report = await service.http.get(
        "/api/v1/reports/daily", params={"date": day.isoformat()}, headers=service.auth(coordinator)
    )
    assert report.status_code == 200, report.text
    [nanjing] = [row for row in report.json()["cities"] if row["code"] == NANJING]
    connected = datetime.fromisoformat(body["connected_at"])
    assert nanjing["aht_s"] == pytest.approx((wrapped - connected).total_seconds(), abs=0.01)


async def test_the_agent_may_end_its_wrap_up_early(wrapping: LiveService) -> None:
    service = wrapping
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    async with service.console(agent) as console:
        first = (await wrap_up_after_a_call(service, console, cti))["call_id"]
        waiting = await service.post_call(cti, NANJING)
        await console.available()  # ends the wrap-up at once
        offer = await console.expect("offer", within=WRAP_UP_S / 2)
        assert offer["call"]["id"] == waiting["id"]
        await console.silent(WRAP_UP_S)  # the ended wrap-up does not end again
    body = await wrapped_up(service, cti, first)
    short = datetime.fromisoformat(body["wrapped_up_at"]) - datetime.fromisoformat(body["ended_at"])
    assert short.total_seconds() < WRAP_UP_S / 2


async def test_a_break_from_the_wrap_up_stays_a_break(wrapping: LiveService) -> None:
    service = wrapping
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    async with service.console(agent) as console:
        await wrap_up_after_a_call(service, console, cti)
        await console.send(type="status", state="break")
        assert (await console.expect("state"))["state"] == "break"
        await service.post_call(cti, NANJING)
        await console.silent(WRAP_UP_S + 0.5)  # on break: neither available again nor offered


async def test_a_console_opened_during_the_wrap_up_sees_what_is_left(
    wrapping: LiveService,
) -> None:
    service = wrapping
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    async with service.console(agent) as console:
        call_id = (await wrap_up_after_a_call(service, console, cti))["call_id"]
        await asyncio.sleep(0.3)
        # The same agent opens its console elsewhere (a reload): the presence carries on.
        async with service.console(agent) as again:
            assert again.hello["state"] == "wrap_up"
            left = await again.expect("state")
            assert (left["state"], left["call_id"]) == ("wrap_up", call_id)
            assert 0 < left["ends_in_s"] < WRAP_UP_S - 0.2
            assert (await again.expect("state", within=3))["state"] == "available"
