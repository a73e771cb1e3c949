"""Required script versions and stale tickets, through HTTP and the agent websocket.

A required publish holds back every serving agent (local and helper) from the city's calls until
its console acknowledges that version; the adoption view names them. Calls pin the host's
version at accept and at completion; `GET /cities/{code}/scripts/stale` lists the tickets that
cited, or were answered under, an older version than the one current at completion.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from surge.auth.models import Role
from tests.api.test_bad_input import error_of
from tests.api.test_scripts import BOOK, NANJING, XUZHOU, entry, publish
from tests.api.test_surges import offer_or_nothing, start_surge
from tests.conftest import Backend
from tests.helpers import Console, LiveService, run_service

SUZHOU = "320500"


def today(service: LiveService) -> str:
    """The report's local day now."""
    return datetime.now(ZoneInfo(service.settings.report_timezone)).date().isoformat()


async def frame_of(console: Console, kind: str, within: float = 5.0) -> dict[str, Any]:
    """Read frames until one of type `kind` arrives."""
    deadline = time.monotonic() + within
    while (frame := await console.recv(max(0.01, deadline - time.monotonic())))["type"] != kind:
        pass
    return frame


async def go_available(console: Console) -> None:
    """Go available, skipping the frames that arrive meanwhile."""
    await console.send(type="status", state="available")
    while (await frame_of(console, "state")).get("state") != "available":
        pass


async def adoption(service: LiveService, viewer: str, *, held: int) -> dict[str, Any]:
    """The adoption view once it counts `held` agents held back (acks commit asynchronously)."""
    deadline = time.monotonic() + 5
    while True:
        response = await service.http.get(f"{BOOK}/adoption", headers=service.auth(viewer))
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()
        if view["held_back"] == held or time.monotonic() > deadline:
            return view
        await asyncio.sleep(0.05)


async def test_a_required_version_holds_back_offers_until_acknowledged(
    service: LiveService,
) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    coordinator = await service.add_user(Role.COORDINATOR)
    cti = await service.add_user(Role.CTI)
    local = await service.add_user(Role.AGENT, NANJING, name="local")
    helper = await service.add_user(Role.AGENT, XUZHOU, name="helper")
    first = await publish(service, admin, [entry("testing")])
    assert first["required"] is False
    await start_surge(service, coordinator)
    async with service.console(local) as own, service.console(helper) as lent:
        await frame_of(lent, "surge.joined")
        second = await publish(service, admin, [entry("testing"), entry("new")], required=True)
        assert (second["version"], second["required"]) == (2, True)
        for console in (own, lent):
            told = await frame_of(console, "scripts.updated")
            assert (told["version"], told["required"]) == (2, True)
            assert told["changes"]["added"] == ["new"]
        read = (await service.http.get(f"{BOOK}/versions/2", headers=service.auth(admin))).json()
        assert read["required"] is True
        listed = (await service.http.get(f"{BOOK}/versions", headers=service.auth(admin))).json()
        assert [v["required"] for v in listed] == [True, False]
        await own.available()
        await lent.available()
        view = await adoption(service, coordinator, held=2)
        assert (view["required_version"], view["serving"], view["held_back"]) == (2, 2, 2)
        assert {(a["name"], a["version"], a["held_back"]) for a in view["behind"]} == {
            ("local", None, True),
            ("helper", None, True),
        }
        # Neither gets the host's call; the helper still gets its own city's.
        held_call = await service.post_call(cti, NANJING)
        assert await offer_or_nothing(own, 0.6) is None
        assert await offer_or_nothing(lent, 0.1) is None
        own_call = await service.post_call(cti, XUZHOU)
        offer = await offer_or_nothing(lent, 3)
        assert offer is not None
        assert offer["call"]["id"] == own_call["id"]
        gone = f"/api/v1/calls/{own_call['id']}/abandon"
        assert (await service.http.post(gone, headers=service.auth(cti))).status_code == 200
        # An older version does not lift the hold; the required one does, at once.
        await lent.send(type="scripts.ack", city=NANJING, version=1)
        assert await offer_or_nothing(lent, 0.6) is None
        await lent.send(type="scripts.ack", city=NANJING, version=2)
        offer = await offer_or_nothing(lent, 3)
        assert offer is not None
        assert offer["call"]["id"] == held_call["id"]
        assert offer["surge_id"] is not None
        view = await adoption(service, admin, held=1)
        assert [(a["name"], a["held_back"]) for a in view["behind"]] == [("local", True)]
        # A later non-required version keeps the hold only for who is behind the required one.
        await publish(service, admin, [entry("testing"), entry("new"), entry("later")])
        await own.send(type="scripts.ack", city=NANJING, version=3)
        view = await adoption(service, admin, held=0)
        assert (view["required_version"], view["held_back"]) == (2, 0)
        assert [(a["name"], a["held_back"]) for a in view["behind"]] == [("helper", False)]
        next_call = await service.post_call(cti, NANJING)
        offer = await offer_or_nothing(own, 3)
        assert offer is not None
        assert offer["call"]["id"] == next_call["id"]


async def test_the_hosts_own_required_version_holds_its_own_agents(service: LiveService) -> None:
    """Without any surge: a city's own agents wait for its required version too."""
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    await publish(service, admin, [entry("testing")], required=True)
    async with service.console(agent) as console:
        assert console.hello["required"] == {NANJING: 1}  # what holds it back, from the start
        await console.available()
        call = await service.post_call(cti, NANJING)
        assert await offer_or_nothing(console, 0.6) is None
        await console.send(type="scripts.ack", city=NANJING, version=1)
        offer = await offer_or_nothing(console, 3)
        assert offer is not None
        assert offer["call"]["id"] == call["id"]
    async with service.console(agent) as again:
        assert again.hello["required"] == {}


async def test_required_bad_inputs(service: LiveService) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    agent = await service.add_user(Role.AGENT, NANJING)
    coordinator = await service.add_user(Role.COORDINATOR)
    for bad in ("yes", 1, None, "true"):
        response = await service.http.post(
            BOOK, json={"entries": [entry("testing")], "required": bad}, headers=service.auth(admin)
        )
        error_of(response, 422, "invalid_request")
    rollback = await service.http.post(
        f"{BOOK}/rollback", json={"to_version": 1, "required": 0}, headers=service.auth(admin)
    )
    error_of(rollback, 422, "invalid_request")
    await publish(service, admin, [entry("testing")], required=True)
    async with service.console(agent) as console:
        await console.send(type="scripts.ack", city=NANJING, version=2)  # not published
        assert (await frame_of(console, "error"))["code"] == "invalid_request"
        await console.send(type="scripts.ack", city=NANJING, version=-1)
        assert (await frame_of(console, "error"))["code"] == "invalid_request"
    stale = f"{BOOK}/stale"
    for day in ("2026-13-01", "yesterday", "", "20261202"):
        error_of(
            await service.http.get(f"{stale}?date={day}", headers=service.auth(coordinator)),
            422,
            "invalid_request",
        )
    error_of(await service.http.get(stale, headers=service.auth(coordinator)), 422,
             "invalid_request")  # fmt: skip
    day = today(service)
    error_of(await service.http.get(f"{stale}?date={day}", headers=service.auth(agent)), 403,
             "forbidden")  # fmt: skip
    # An unknown city in the path is `422 unknown_city`, as on every /cities/{code}/scripts route.
    error_of(
        await service.http.get(
            f"/api/v1/cities/999999/scripts/stale?date={day}", headers=service.auth(coordinator)
        ),
        422,
        "unknown_city",
    )


async def test_stale_tickets_are_listed_per_day(service: LiveService) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    coordinator = await service.add_user(Role.COORDINATOR)
    helper_admin = await service.add_user(Role.CITY_ADMIN, XUZHOU)
    other_admin = await service.add_user(Role.CITY_ADMIN, SUZHOU)
    cti = await service.add_user(Role.CTI)
    local = await service.add_user(Role.AGENT, NANJING, name="local")
    helper = await service.add_user(Role.AGENT, XUZHOU, name="helper")
    await publish(service, admin, [entry("testing")])
    await start_surge(service, coordinator)

    async def take(console: Console) -> int:
        call = await service.post_call(cti, NANJING)
        offer = await frame_of(console, "offer")
        assert offer["call"]["id"] == call["id"]
        await console.send(type="accept", offer_id=offer["offer_id"])
        await frame_of(console, "call.connected")
        return int(call["id"])

    async def complete(console: Console, call_id: int, **ticket: Any) -> None:
        await console.send(type="complete", call_id=call_id, disposition="answered",
                           category_code="0101", **ticket)  # fmt: skip
        await frame_of(console, "call.completed")

    async with service.console(local) as own, service.console(helper) as lent:
        await go_available(own)
        # 1: accepted under v1, v2 published mid-call, cites v1: stale (cited and accepted).
        one = await take(own)
        await publish(service, admin, [entry("testing", answer="新口径：以今日公告为准。")])
        await complete(own, one, script_version=1, script_key="testing")
        # 2: accepted and completed under v2, cites v2: not stale.
        await go_available(own)  # out of its wrap-up
        two = await take(own)
        await complete(own, two, script_version=2, script_key="testing")
        await own.send(type="status", state="break")
        # 3: the helper, accepted under v2, cites v1 (an old printout): stale (cited).
        await go_available(lent)
        three = await take(lent)
        await complete(lent, three, script_version=1)
        # 4: the helper, accepted under v2, v3 published, cites nothing: stale (accepted).
        await go_available(lent)
        four = await take(lent)
        await publish(service, admin, [entry("testing"), entry("more")])
        await complete(lent, four)

    url = f"{BOOK}/stale?date={today(service)}"
    listed = (await service.http.get(url, headers=service.auth(coordinator))).json()
    assert listed["count"] == 3
    rows = [
        (t["call_id"], t["agent"], t["helper_city"], t["script_version"],
         t["script_version_at_accept"], t["script_version_at_complete"])
        for t in listed["tickets"]
    ]  # fmt: skip
    assert rows == [
        (one, "local", None, 1, 1, 2),
        (three, "helper", XUZHOU, 1, 2, 2),
        (four, "helper", XUZHOU, None, 2, 3),
    ]
    assert two not in {t["call_id"] for t in listed["tickets"]}
    assert (await service.http.get(url, headers=service.auth(admin))).json()["count"] == 3
    # A helper city's admin sees those its own agents answered; another city's admin none.
    mine = (await service.http.get(url, headers=service.auth(helper_admin))).json()
    assert [t["call_id"] for t in mine["tickets"]] == [three, four]
    assert (await service.http.get(url, headers=service.auth(other_admin))).json()["count"] == 0
    # The call record shows the server's versions beside the cited one.
    read = (await service.http.get(f"/api/v1/calls/{one}", headers=service.auth(admin))).json()
    assert (read["script_version"], read["script_version_at_accept"]) == (1, 1)
    assert read["script_version_at_complete"] == 2


async def test_an_ack_on_one_instance_lifts_the_hold_on_another(shared_backend: Backend) -> None:
    """Two instances on one database and Redis: the agent's console on A, the dispatcher on B
    offering; the required publish on B and the ack on A both reach the other instance."""
    async with (
        run_service(shared_backend.settings(instance_id="a", offer_timeout_s=15.0)) as a,
        run_service(shared_backend.settings(instance_id="b", offer_timeout_s=15.0)) as b,
    ):
        admin = await b.add_user(Role.CITY_ADMIN, NANJING)
        cti = await b.add_user(Role.CTI)
        agent = await a.add_user(Role.AGENT, NANJING)
        await publish(b, admin, [entry("testing")])
        async with a.console(agent) as console:
            await console.send(type="scripts.ack", city=NANJING, version=1)
            await console.available()
            await publish(b, admin, [entry("testing"), entry("new")], required=True)
            assert (await frame_of(console, "scripts.updated"))["required"] is True
            call = await b.post_call(cti, NANJING)
            assert await offer_or_nothing(console, 1.0) is None
            await console.send(type="scripts.ack", city=NANJING, version=2)
            offer = await offer_or_nothing(console, 3)
            assert offer is not None
            assert offer["call"]["id"] == call["id"]
