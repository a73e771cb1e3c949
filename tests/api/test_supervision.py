"""Supervision through HTTP and websockets (API-2 "Supervision"): the live agent list, forced
logout, releases refused, and notices to a surge's or a city's consoles."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from surge.auth.models import Role
from tests.helpers import Console, LiveService

NANJING = "320100"
WUXI = "320200"
XUZHOU = "320300"
AGENT_FIELDS = {
    "id", "name", "city", "state", "since", "call_id", "serving_host", "scripts_version",
    "instance",
}  # fmt: skip


async def until(console: Console, kind: str, within: float = 5.0) -> dict[str, Any]:
    """Read the console until a frame of type `kind`."""
    deadline = time.monotonic() + within
    while True:
        frame = await console.recv(within=max(0.01, deadline - time.monotonic()))
        if frame["type"] == kind:
            return frame


def error_of(response: Any, status: int, code: str) -> None:
    """The response is the contract's error body with this status and code."""
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


async def start_surge(service: LiveService, coordinator: str) -> dict[str, Any]:
    """Nanjing hosts a surge helped by Xuzhou."""
    body = {"host_city": NANJING, "waves": [{"cities": [XUZHOU], "seats_per_city": 1}],
            "overflow_after_s": 0}  # fmt: skip
    made = await service.http.post("/api/v1/surges", json=body, headers=service.auth(coordinator))
    assert made.status_code == 201, made.text
    surge: dict[str, Any] = made.json()
    return surge


async def agents(service: LiveService, who: str, **query: str) -> dict[str, dict[str, Any]]:
    """GET /agents by agent name."""
    listed = await service.http.get("/api/v1/agents", params=query, headers=service.auth(who))
    assert listed.status_code == 200, listed.text
    rows: list[dict[str, Any]] = listed.json()
    assert all(set(row) == AGENT_FIELDS for row in rows)
    return {row["name"]: row for row in rows}


async def test_the_agent_list_is_live_and_scoped(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    nanjing = await service.add_user(Role.CITY_ADMIN, NANJING)
    wuxi = await service.add_user(Role.CITY_ADMIN, WUXI)
    cti = await service.add_user(Role.CTI, NANJING)
    on_duty = await service.add_user(Role.AGENT, NANJING)
    home = await service.add_user(Role.AGENT, NANJING)
    helper = await service.add_user(Role.AGENT, XUZHOU)
    idle_helper = await service.add_user(Role.AGENT, XUZHOU)
    elsewhere = await service.add_user(Role.AGENT, WUXI)
    await start_surge(service, coordinator)
    async with service.console(on_duty) as console, service.console(helper) as lent:
        await console.available()
        call = await service.post_call(cti, NANJING)
        offer = await until(console, "offer")
        await console.send(type="accept", offer_id=offer["offer_id"])
        await until(console, "call.connected")
        everyone = await agents(service, coordinator)
        assert set(everyone) >= {on_duty, home, helper, idle_helper, elsewhere}
        busy = everyone[on_duty]
        assert (busy["state"], busy["call_id"], busy["serving_host"], busy["city"]) == (
            "busy", call["id"], NANJING, NANJING,
        )  # fmt: skip
        assert busy["instance"] == service.settings.instance_id
        assert busy["since"] is not None
        assert (everyone[home]["state"], everyone[home]["since"]) == ("offline", None)
        assert everyone[helper]["state"] == "break"
        assert everyone[helper]["serving_host"] is None
        # Nanjing's admin: its own agents (offline too) and the helpers' agents connected now.
        own = await agents(service, nanjing)
        assert set(own) == {on_duty, home, helper}
        assert own == await agents(service, coordinator, city=NANJING)
        assert set(await agents(service, wuxi)) == {elsewhere}
        await lent.send(type="status", state="available")
        assert (await until(lent, "state"))["state"] == "available"
        assert (await agents(service, nanjing))[helper]["state"] == "available"
        # The helper takes a Nanjing call, then logs off with it in hand: still listed.
        second = await service.post_call(cti, NANJING)
        offered = await until(lent, "offer")
        await lent.send(type="accept", offer_id=offered["offer_id"])
        await until(lent, "call.connected")
        assert (await agents(service, nanjing))[helper]["serving_host"] == NANJING
        await lent.socket.close()
        deadline = time.monotonic() + 5
        while (gone := (await agents(service, nanjing))[helper])["state"] != "offline":
            assert time.monotonic() < deadline, gone
            await asyncio.sleep(0.05)
        assert (gone["call_id"], gone["serving_host"]) == (second["id"], NANJING)
        assert helper not in await agents(service, wuxi)
        for who, query, status, code in (
            (wuxi, {"city": NANJING}, 403, "forbidden"),
            (cti, {}, 403, "forbidden"),
            (on_duty, {}, 403, "forbidden"),
            (coordinator, {"city": "999999"}, 422, "unknown_city"),
            (coordinator, {"city": "nanjing"}, 422, "invalid_request"),
        ):
            refused = await service.http.get(
                "/api/v1/agents", params=query, headers=service.auth(who)
            )
            error_of(refused, status, code)
        unauthenticated = await service.http.get("/api/v1/agents")
        error_of(unauthenticated, 401, "unauthorized")


async def test_a_logout_closes_the_console_4408_and_requeues_its_offer_in_place(
    service: LiveService,
) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    wuxi = await service.add_user(Role.CITY_ADMIN, WUXI)
    cti = await service.add_user(Role.CTI, NANJING)
    first = await service.add_user(Role.AGENT, NANJING)
    second = await service.add_user(Role.AGENT, NANJING)
    url = f"{service.ws_url}/ws/cti?token={service.tokens[cti]}"
    async with websockets.connect(url) as socket:
        stream = Console(socket)
        await stream.expect("hello")
        async with service.console(first) as console:
            await console.available()
            agent_id = console.hello["agent_id"]
            ahead = await service.post_call(cti, NANJING)
            behind = await service.post_call(cti, NANJING)
            offer = await until(console, "offer")
            assert offer["call"]["id"] == ahead["id"]
            logout = f"/api/v1/agents/{agent_id}/logout"
            error_of(await service.http.post(logout, headers=service.auth(wuxi)), 403, "forbidden")
            error_of(await service.http.post(logout, headers=service.auth(cti)), 403, "forbidden")
            done = await service.http.post(logout, headers=service.auth(admin))
            assert done.status_code == 200, done.text
            assert (done.json()["name"], done.json()["state"]) == (first, "offline")
            revoked = await until(console, "offer.revoked")
            assert revoked == {
                "type": "offer.revoked",
                "offer_id": offer["offer_id"],
                "reason": "logged_out",
            }
            with pytest.raises(ConnectionClosed):
                await console.drain()
            assert console.socket.close_code == 4408
        requeued = await until(stream, "call.requeued")
        assert (requeued["call_id"], requeued["reason"]) == (ahead["id"], "logged_out")
        # Back at its place: the next agent is offered it before the call behind it.
        async with service.console(second) as other:
            await other.available()
            again = await until(other, "offer")
            assert again["call"]["id"] == ahead["id"] != behind["id"]
    again_out = await service.http.post(logout, headers=service.auth(coordinator))
    error_of(again_out, 409, "agent_not_present")
    error_of(
        await service.http.post("/api/v1/agents/999999/logout", headers=service.auth(coordinator)),
        404,
        "not_found",
    )
    error_of(
        await service.http.post("/api/v1/agents/0/logout", headers=service.auth(coordinator)),
        422,
        "invalid_request",
    )
    history = await service.http.get(f"/api/v1/calls/{ahead['id']}", headers=service.auth(cti))
    assert "logged_out" in [event["reason"] for event in history.json()["history"]]
    audit = (await service.http.get("/api/v1/audit", headers=service.auth(coordinator))).json()
    logged = [entry for entry in audit if entry["action"] == "agent.logged_out"]
    assert [(e["actor"], e["detail"]["agent_id"], e["detail"]["state"]) for e in logged] == [
        (admin, agent_id, "offered")
    ]


async def test_a_release_of_a_call_that_is_not_connected_is_refused(service: LiveService) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    cti = await service.add_user(Role.CTI, NANJING)
    waiting = await service.post_call(cti, NANJING)
    body = {"reason": "stuck"}
    auth = service.auth(admin)
    post = service.http.post
    error_of(await post(f"/api/v1/calls/{waiting['id']}/release", json=body, headers=auth), 409,
             "call_not_connected")  # fmt: skip
    error_of(await post("/api/v1/calls/999999/release", json=body, headers=auth), 404, "not_found")
    error_of(await post(f"/api/v1/calls/{waiting['id']}/release", json={}, headers=auth), 422,
             "invalid_request")  # fmt: skip
    agent = await service.add_user(Role.AGENT, NANJING)
    error_of(
        await post(f"/api/v1/calls/{waiting['id']}/release", json=body,
                   headers=service.auth(agent)),
        403,
        "forbidden",
    )  # fmt: skip


async def test_a_surge_notice_reaches_everyone_serving_it_now_and_on_reconnect(
    service: LiveService,
) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    host_admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    helper_admin = await service.add_user(Role.CITY_ADMIN, XUZHOU)
    host_agent = await service.add_user(Role.AGENT, NANJING)
    helper_agent = await service.add_user(Role.AGENT, XUZHOU)
    bystander = await service.add_user(Role.AGENT, WUXI)
    surge = await start_surge(service, coordinator)
    path = f"/api/v1/surges/{surge['id']}/notices"
    text = "12:00 起，消费券咨询一律按新口径答复 / new voucher rule from noon"
    async with (
        service.console(host_agent) as host,
        service.console(helper_agent) as helper,
        service.console(bystander) as other,
    ):
        await until(helper, "surge.joined")
        posted = await service.http.post(
            path, json={"text": text}, headers=service.auth(coordinator)
        )
        assert posted.status_code == 201, posted.text
        notice = posted.json()
        assert (notice["from"], notice["text"], notice["surge_id"], notice["city"]) == (
            coordinator, text, surge["id"], None,
        )  # fmt: skip
        posted_at = datetime.fromisoformat(notice["at"])
        for console in (host, helper):
            frame = await until(console, "notice")
            assert abs((datetime.fromisoformat(frame["at"]) - posted_at).total_seconds()) < 1
            assert frame == {
                "type": "notice",
                "id": notice["id"],
                "from": coordinator,
                "text": text,
                "at": frame["at"],
                "surge_id": surge["id"],
            }
        await other.silent()
        by_host = await service.http.post(
            path, json={"text": "  second  "}, headers=service.auth(host_admin)
        )
        assert by_host.status_code == 201, by_host.text
        assert by_host.json()["text"] == "second"
        await until(helper, "notice")
    async with service.console(helper_agent) as back:
        await back.expect("surge.joined")
        again = [await back.expect("notice"), await back.expect("notice")]
        assert [(n["id"], n["text"]) for n in again] == [
            (notice["id"], text),
            (by_host.json()["id"], "second"),
        ]
    post = service.http.post
    for who, body, status, code in (
        (helper_admin, {"text": "x"}, 403, "forbidden"),
        (host_agent, {"text": "x"}, 403, "forbidden"),
        (coordinator, {"text": "   "}, 422, "invalid_request"),
        (coordinator, {"text": "长" * 2001}, 422, "invalid_request"),
        (coordinator, {"text": "x" * 100 * 1024}, 413, "payload_too_large"),
        (coordinator, {"text": 5}, 422, "invalid_request"),
        (coordinator, {}, 422, "invalid_request"),
    ):
        error_of(await post(path, json=body, headers=service.auth(who)), status, code)
    error_of(await post("/api/v1/surges/99999/notices", json={"text": "x"},
                        headers=service.auth(coordinator)), 404, "not_found")  # fmt: skip
    ended = await post(f"/api/v1/surges/{surge['id']}/end", headers=service.auth(coordinator))
    assert ended.status_code == 200
    error_of(await post(path, json={"text": "late"}, headers=service.auth(coordinator)), 409,
             "surge_ended")  # fmt: skip
    async with service.console(helper_agent) as after:  # the surge no longer runs
        await after.silent()
    audit = (await service.http.get("/api/v1/audit", headers=service.auth(coordinator))).json()
    sent = [e for e in audit if e["action"] == "notice.sent"]
    assert [(e["actor"], e["surge_id"], e["detail"]["notice_id"]) for e in reversed(sent)] == [
        (coordinator, surge["id"], notice["id"]),
        (host_admin, surge["id"], by_host.json()["id"]),
    ]


async def test_a_city_notice_reaches_the_citys_consoles_and_the_last_20_come_back(
    service: LiveService,
) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    wuxi = await service.add_user(Role.CITY_ADMIN, WUXI)
    agent = await service.add_user(Role.AGENT, NANJING)
    bystander = await service.add_user(Role.AGENT, WUXI)
    path = f"/api/v1/cities/{NANJING}/notices"
    async with service.console(agent) as console, service.console(bystander) as other:
        posted = await service.http.post(path, json={"text": "系统 14:00 升级"},
                                         headers=service.auth(admin))  # fmt: skip
        assert posted.status_code == 201, posted.text
        frame = await console.expect("notice")
        assert (frame["id"], frame["city"], frame["from"]) == (posted.json()["id"], NANJING, admin)
        assert "surge_id" not in frame
        await other.silent()
    for n in range(21):
        made = await service.http.post(path, json={"text": f"n{n}"}, headers=service.auth(admin))
        assert made.status_code == 201
    async with service.console(agent) as back:
        kept = [await back.expect("notice") for _ in range(20)]
        assert [n["text"] for n in kept] == [f"n{n}" for n in range(1, 21)]
        await back.silent()
    post = service.http.post
    for who, where, status, code in (
        (coordinator, path, 403, "forbidden"),
        (wuxi, path, 403, "forbidden"),
        (agent, path, 403, "forbidden"),
        (admin, "/api/v1/cities/999999/notices", 422, "unknown_city"),
        (admin, "/api/v1/cities/nanjing/notices", 422, "invalid_request"),
    ):
        error_of(await post(where, json={"text": "x"}, headers=service.auth(who)), status, code)
    audit = (await service.http.get("/api/v1/audit", headers=service.auth(coordinator))).json()
    assert sum(e["action"] == "notice.sent" for e in audit) == 22


async def test_a_lost_agent_is_logged_out_and_its_call_released(service: LiveService) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    cti = await service.add_user(Role.CTI, NANJING)
    agent = await service.add_user(Role.AGENT, NANJING)
    async with service.console(agent) as console:
        await console.available()
        agent_id = console.hello["agent_id"]
        call = await service.post_call(cti, NANJING)
        offer = await until(console, "offer")
        await console.send(type="accept", offer_id=offer["offer_id"])
        await until(console, "call.connected")
        console.socket.transport.abort()  # gone without a closing handshake: lost
    deadline = time.monotonic() + 5
    while (row := (await agents(service, admin))[agent])["state"] != "lost":
        assert time.monotonic() < deadline, row
        await asyncio.sleep(0.05)
    assert row["call_id"] == call["id"]
    done = await service.http.post(f"/api/v1/agents/{agent_id}/logout", headers=service.auth(admin))
    assert done.status_code == 200, done.text
    assert (done.json()["state"], done.json()["call_id"]) == ("offline", call["id"])
    release = await service.http.post(
        f"/api/v1/calls/{call['id']}/release", json={"reason": "签出后释放"},
        headers=service.auth(admin),
    )  # fmt: skip
    assert release.status_code == 200, release.text
    assert release.json()["disposition"] == "released"
    assert (await agents(service, admin))[agent]["call_id"] is None
