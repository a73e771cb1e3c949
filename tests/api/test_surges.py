"""Surge mode over the real service: helpers' agents take the host's overflow, within limits."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from surge.auth.models import Role
from tests.api.test_bad_input import error_of
from tests.conftest import Backend
from tests.helpers import Console, LiveService, run_service

NANJING, XUZHOU, SUZHOU, WUXI = "320100", "320300", "320500", "320200"


async def start_surge(service: LiveService, coordinator: str, **body: Any) -> dict[str, Any]:
    """POST /surges and return the surge."""
    payload = {"host_city": NANJING, "waves": [{"cities": [XUZHOU], "seats_per_city": 1}],
               "overflow_after_s": 0, **body}  # fmt: skip
    response = await service.http.post(
        "/api/v1/surges", json=payload, headers=service.auth(coordinator)
    )
    assert response.status_code == 201, response.text
    surge: dict[str, Any] = response.json()
    return surge


async def next_offer(console: Console) -> dict[str, Any]:
    """Skip state and surge notices until the next offer."""
    return await next_frame(console, "offer")


async def next_frame(console: Console, kind: str, within: float = 5.0) -> dict[str, Any]:
    """Skip state and surge notices until the next frame of `kind`."""
    while (frame := await console.recv(within))["type"] != kind:
        assert frame["type"] in ("state", "surge.joined", "surge.left"), frame
    return frame


async def read_surge(service: LiveService, coordinator: str, surge_id: int) -> dict[str, Any]:
    """GET /surges/{id}."""
    response = await service.http.get(
        f"/api/v1/surges/{surge_id}", headers=service.auth(coordinator)
    )
    assert response.status_code == 200, response.text
    surge: dict[str, Any] = response.json()
    return surge


async def wait_until_ended(
    service: LiveService, coordinator: str, surge_id: int, within: float = 5.0
) -> dict[str, Any]:
    """Poll the surge until its last helper call is done and it reads `ended`."""
    deadline = time.monotonic() + within
    while (surge := await read_surge(service, coordinator, surge_id))["status"] != "ended":
        assert surge["status"] == "draining", surge
        assert time.monotonic() < deadline, f"surge {surge_id} still draining after {within} s"
        await asyncio.sleep(0.1)
    return surge


async def test_helper_agents_take_the_hosts_calls_with_masked_numbers(
    service: LiveService,
) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    cti = await service.add_user(Role.CTI)
    helper = await service.add_user(Role.AGENT, XUZHOU)
    async with service.console(helper) as console:
        await console.available()
        surge = await start_surge(service, coordinator, reason="Nanjing is swamped")
        assert surge["status"] == "active"
        assert [w["active"] for w in surge["waves"]] == [True]
        joined = await console.expect("surge.joined")
        assert joined == {
            "type": "surge.joined",
            "surge_id": surge["id"],
            "host_city": NANJING,
            "scripts_version": 0,  # the host has published no scripts yet
        }

        call = await service.post_call(cti, NANJING, caller="13812345678")
        offer = await next_offer(console)
        assert offer["surge_id"] == surge["id"]
        assert offer["call"]["id"] == call["id"]
        assert offer["call"]["caller"] == "138****5678"
        await console.send(type="accept", offer_id=offer["offer_id"])
        connected = await console.expect("call.connected")
        assert connected["call"]["caller"] == "138****5678"
        mine = await service.http.get(f"/api/v1/calls/{call['id']}", headers=service.auth(helper))
        assert mine.json()["caller"] == "138****5678"
        whole = await service.http.get(f"/api/v1/calls/{call['id']}", headers=service.auth(cti))
        assert whole.json()["caller"] == "13812345678"
        live = await service.http.get(
            f"/api/v1/surges/{surge['id']}", headers=service.auth(coordinator)
        )
        helpers = live.json()["waves"][0]["helpers"]
        assert helpers == [
            {"city": XUZHOU, "seats": 1, "in_use": 1, "answered": 1, "lending": False,
             "lending_reason": "quota full"}
        ]  # fmt: skip


async def test_quota_holds_and_own_calls_come_first(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    cti = await service.add_user(Role.CTI)
    first = await service.add_user(Role.AGENT, XUZHOU)
    second = await service.add_user(Role.AGENT, XUZHOU)
    await start_surge(service, coordinator)  # Xuzhou lends one seat
    host_calls = [await service.post_call(cti, NANJING) for _ in range(3)]
    own = await service.post_call(cti, XUZHOU)
    async with service.console(first) as one, service.console(second) as two:
        for console in (one, two):  # connecting during a surge, they are told at once
            assert (await console.expect("surge.joined"))["host_city"] == NANJING
        await one.available()
        offer_one = await next_offer(one)
        assert offer_one["call"]["id"] == own["id"]  # its own city's call first
        assert offer_one["surge_id"] is None
        await two.available()
        offer_two = await next_offer(two)
        assert offer_two["call"]["id"] == host_calls[0]["id"]
        await one.send(type="accept", offer_id=offer_one["offer_id"])
        await one.expect("call.connected")
        await one.send(type="complete", call_id=own["id"], disposition="answered")
        await one.expect("call.completed")
        # Xuzhou's one seat for Nanjing is in use: its free agent gets nothing more.
        assert (await one.expect("state"))["state"] == "available"
        await one.silent(0.8)
        await two.send(type="decline", offer_id=offer_two["offer_id"])
        # The seat is free again: the declined call (back at its place) goes to the other agent.
        assert (await next_offer(one))["call"]["id"] == host_calls[0]["id"]


async def test_a_helper_reloading_its_console_mid_call_keeps_its_seat(
    service: LiveService,
) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    cti = await service.add_user(Role.CTI)
    first = await service.add_user(Role.AGENT, XUZHOU)
    second = await service.add_user(Role.AGENT, XUZHOU)
    await start_surge(service, coordinator)  # Xuzhou lends one seat
    async with service.console(first) as console:
        await console.expect("surge.joined")
        await console.available()
        call = await service.post_call(cti, NANJING)
        offer = await next_offer(console)
        await console.send(type="accept", offer_id=offer["offer_id"])
        await next_frame(console, "call.connected")
    # The console is closed (a reload); the call goes on, and so does the seat it takes.
    async with service.console(second) as other:
        await other.expect("surge.joined")
        await other.available()
        await service.post_call(cti, NANJING)
        await other.silent(0.8)
        async with service.console(first) as back:
            assert back.hello["call"]["id"] == call["id"]
            await back.send(type="complete", call_id=call["id"], disposition="answered")
            await next_frame(back, "call.completed")
        assert (await next_offer(other))["surge_id"] is not None


async def test_ending_a_surge_stops_new_offers_but_calls_in_hand_finish(
    service: LiveService,
) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    cti = await service.add_user(Role.CTI)
    helper = await service.add_user(Role.AGENT, XUZHOU)
    surge = await start_surge(service, coordinator)
    async with service.console(helper) as console:
        assert (await console.expect("surge.joined"))["surge_id"] == surge["id"]
        await console.available()  # (joined at connect: the surge was already running)
        call = await service.post_call(cti, NANJING)
        offer = await next_offer(console)
        await console.send(type="accept", offer_id=offer["offer_id"])
        await console.expect("call.connected")
        ended = await service.http.post(
            f"/api/v1/surges/{surge['id']}/end",
            json={"reason": "queue is back to normal"},
            headers=service.auth(coordinator),
        )
        assert ended.json()["status"] == "draining"  # a helper still has a call in hand
        assert ended.json()["ended_at"] is None
        assert (await console.expect("surge.left"))["surge_id"] == surge["id"]
        await console.send(type="complete", call_id=call["id"], disposition="answered")
        await console.expect("call.completed")
        await service.post_call(cti, NANJING)
        assert (await console.expect("state"))["state"] == "available"
        await console.silent(0.8)
    done = await wait_until_ended(service, coordinator, surge["id"])
    assert done["ended_at"] is not None
    assert done["ended_by"] == coordinator


async def test_ending_a_surge_revokes_helper_offers_at_once_and_drains(
    service: LiveService,
) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    cti = await service.add_user(Role.CTI)
    holder = await service.add_user(Role.AGENT, XUZHOU)
    worker = await service.add_user(Role.AGENT, XUZHOU)
    local = await service.add_user(Role.AGENT, NANJING)
    waves = [{"cities": [XUZHOU], "seats_per_city": 2}]
    surge = await start_surge(service, coordinator, waves=waves)
    async with service.console(worker) as busy, service.console(holder) as pending:
        for console in (busy, pending):
            assert (await console.expect("surge.joined"))["surge_id"] == surge["id"]
        await busy.available()
        in_hand = await service.post_call(cti, NANJING)
        taken = await next_offer(busy)
        await busy.send(type="accept", offer_id=taken["offer_id"])
        await next_frame(busy, "call.connected")
        await pending.available()
        waiting = await service.post_call(cti, NANJING)
        held = await next_offer(pending)
        assert held["call"]["id"] == waiting["id"]

        started = time.monotonic()
        ended = await service.http.post(
            f"/api/v1/surges/{surge['id']}/end", headers=service.auth(coordinator)
        )
        assert ended.status_code == 200, ended.text
        assert ended.json()["status"] == "draining"
        revoked = await next_frame(pending, "offer.revoked", within=1.0)
        assert revoked == {
            "type": "offer.revoked",
            "offer_id": held["offer_id"],
            "reason": "surge_ended",
        }
        assert time.monotonic() - started < 1.0
        await pending.send(type="accept", offer_id=held["offer_id"])  # too late: refused
        refused = await next_frame(pending, "error")
        assert refused["code"] == "offer_unavailable"
        # A draining surge still holds its host: no second surge for it meanwhile.
        again = await service.http.post(
            "/api/v1/surges",
            json={"host_city": NANJING, "waves": [{"cities": [SUZHOU], "seats_per_city": 1}]},
            headers=service.auth(coordinator),
        )
        error_of(again, 409, "host_in_surge")
        # The call went back to its place and goes to the host's own agent, not to a helper.
        async with service.console(local) as host_agent:
            await host_agent.available()
            offer = await next_offer(host_agent)
            assert offer["call"]["id"] == waiting["id"]
            assert offer["surge_id"] is None
        while True:  # the helper with no call gets nothing more of the host's
            try:
                frame = await pending.recv(0.5)
            except TimeoutError:
                break
            assert frame["type"] in ("state", "surge.left"), frame
        assert (await read_surge(service, coordinator, surge["id"]))["status"] == "draining"
        scripts = await service.http.get(
            f"/api/v1/cities/{NANJING}/scripts", headers=service.auth(worker)
        )
        assert scripts.status_code == 200  # the call in hand is answered with the host's scripts
        elsewhere = await service.http.post(
            "/api/v1/surges",
            json={"host_city": WUXI, "waves": [{"cities": [XUZHOU], "seats_per_city": 1}]},
            headers=service.auth(coordinator),
        )
        assert elsewhere.status_code == 201, elsewhere.text  # its helpers may help elsewhere
        await busy.send(type="complete", call_id=in_hand["id"], disposition="answered")
        await next_frame(busy, "call.completed")
    done = await wait_until_ended(service, coordinator, surge["id"])
    assert done["ended_at"] is not None
    history = (
        await service.http.get(f"/api/v1/calls/{waiting['id']}", headers=service.auth(cti))
    ).json()["history"]
    assert ("offered", "queued", "surge_ended") in [
        (e["from_status"], e["to_status"], e["reason"]) for e in history
    ]
    log = (await service.http.get("/api/v1/audit", headers=service.auth(coordinator))).json()
    assert [(e["action"], e["actor"]) for e in log if e["surge_id"] == surge["id"]][:2] == [
        ("surge.drained", "system"),
        ("surge.ended", coordinator),
    ]


async def test_a_surge_with_no_helper_call_in_hand_ends_at_once(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    surge = await start_surge(service, coordinator)
    ended = await service.http.post(
        f"/api/v1/surges/{surge['id']}/end", headers=service.auth(coordinator)
    )
    assert ended.json()["status"] == "draining"
    done = await wait_until_ended(service, coordinator, surge["id"], within=2.0)
    assert done["ended_at"] is not None
    listed = await service.http.get("/api/v1/surges?active=true", headers=service.auth(coordinator))
    assert listed.json() == []


async def test_later_waves_join_when_activated(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    cti = await service.add_user(Role.CTI)
    late = await service.add_user(Role.AGENT, SUZHOU)
    waves = [{"cities": [XUZHOU], "seats_per_city": 1}, {"cities": [SUZHOU], "seats_per_city": 2}]
    surge = await start_surge(service, coordinator, waves=waves)
    await service.post_call(cti, NANJING)
    async with service.console(late) as console:
        await console.available()
        await console.silent(0.8)  # wave 2 is not active yet
        response = await service.http.post(
            f"/api/v1/surges/{surge['id']}/waves/2/activate", headers=service.auth(coordinator)
        )
        assert [w["active"] for w in response.json()["waves"]] == [True, True]
        # The notice and the first offer may come in either order (another instance, or this
        # one's periodic re-read, may see the new wave before the notice goes out).
        frames = {f["type"]: f for f in [await console.recv(), await console.recv()]}
        assert set(frames) == {"surge.joined", "offer"}
        assert frames["surge.joined"]["surge_id"] == frames["offer"]["surge_id"] == surge["id"]
    async with service.console(late) as console:  # a reconnecting helper is told again
        assert (await console.expect("surge.joined"))["host_city"] == NANJING


BAD_SURGES: list[tuple[dict[str, Any], int, str]] = [
    ({"host_city": "999999"}, 422, "unknown_city"),
    ({"waves": [{"cities": ["999999"], "seats_per_city": 1}]}, 422, "unknown_city"),
    ({"waves": [{"cities": [NANJING], "seats_per_city": 1}]}, 422, "invalid_request"),
    (
        {
            "waves": [
                {"cities": [XUZHOU], "seats_per_city": 1},
                {"cities": [XUZHOU], "seats_per_city": 1},
            ]
        },
        422,
        "invalid_request",
    ),
    ({"waves": [{"cities": [], "seats_per_city": 1}]}, 422, "invalid_request"),
    ({"waves": [{"cities": [XUZHOU], "seats_per_city": 0}]}, 422, "invalid_request"),
    ({"waves": []}, 422, "invalid_request"),
    ({"severity": 0}, 422, "invalid_request"),
    ({"severity": 10.5}, 422, "invalid_request"),
    ({"severity": None}, 422, "invalid_request"),
    ({"waves": [{"cities": [XUZHOU], "seats_per_city": 1, "reserve": -1}]}, 422, "invalid_request"),
    (
        {"waves": [{"cities": [XUZHOU], "seats_per_city": 1, "reserve": 10**4 + 1}]},
        422,
        "invalid_request",
    ),
    ({"overflow_after_s": -1}, 422, "invalid_request"),
    ({"host_city": "Nanjing"}, 422, "invalid_request"),
]


async def test_bad_surge_requests_are_refused(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    for body, status, code in BAD_SURGES:
        payload = {"host_city": NANJING, "waves": [{"cities": [XUZHOU], "seats_per_city": 1}],
                   "overflow_after_s": 0, **body}  # fmt: skip
        response = await service.http.post(
            "/api/v1/surges", json=payload, headers=service.auth(coordinator)
        )
        assert response.status_code == status, (body, response.text)
        error_of(response, status, code)


async def test_conflicting_surges_and_states(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    agent = await service.add_user(Role.AGENT, XUZHOU)
    auth = service.auth(coordinator)
    surge = await start_surge(service, coordinator)

    def body(host: str, helper: str, **extra: Any) -> dict[str, Any]:
        return {"host_city": host, "waves": [{"cities": [helper], "seats_per_city": 1}], **extra}

    post = service.http.post
    error_of(await post("/api/v1/surges", json=body(NANJING, SUZHOU), headers=auth), 409,
             "host_in_surge")  # fmt: skip
    error_of(await post("/api/v1/surges", json=body(XUZHOU, SUZHOU), headers=auth), 409,
             "host_in_surge")  # fmt: skip
    error_of(await post("/api/v1/surges", json=body(WUXI, NANJING), headers=auth), 409,
             "helper_in_surge")  # fmt: skip
    error_of(await post("/api/v1/surges", json=body(WUXI, XUZHOU), headers=auth), 409,
             "helper_in_surge")  # fmt: skip
    shared = await post(
        "/api/v1/surges", json=body(WUXI, XUZHOU, allow_shared_helpers=True), headers=auth
    )
    assert shared.status_code == 201
    sid = surge["id"]
    error_of(await post(f"/api/v1/surges/{sid}/waves/7/activate", headers=auth), 404, "not_found")
    error_of(await post("/api/v1/surges/4242/end", headers=auth), 404, "not_found")
    error_of(await post(f"/api/v1/surges/{sid}/end", headers=service.auth(admin)), 403,
             "forbidden")  # fmt: skip
    error_of(await service.http.get("/api/v1/surges", headers=service.auth(agent)), 403,
             "forbidden")  # fmt: skip
    listed = await service.http.get("/api/v1/surges?active=true", headers=service.auth(admin))
    assert {s["host_city"] for s in listed.json()} == {NANJING, WUXI}
    assert (await post(f"/api/v1/surges/{sid}/end", headers=auth)).json()["status"] in (
        "draining",
        "ended",
    )
    assert (await post(f"/api/v1/surges/{sid}/end", headers=auth)).status_code == 200
    error_of(await post(f"/api/v1/surges/{sid}/waves/1/activate", headers=auth), 409,
             "surge_ended")  # fmt: skip
    await wait_until_ended(service, coordinator, sid)
    error_of(await post(f"/api/v1/surges/{sid}/waves/1/activate", headers=auth), 409,
             "surge_ended")  # fmt: skip
    again = await post("/api/v1/surges", json=body(NANJING, SUZHOU), headers=auth)
    assert again.status_code == 201  # the host may be helped again once its surge ended


async def test_audit_log_records_who_did_what_and_why(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR, name="province-coordinator")
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    waves = [{"cities": [XUZHOU], "seats_per_city": 1}, {"cities": [SUZHOU], "seats_per_city": 1}]
    surge = await start_surge(service, coordinator, reason="10x normal arrivals", waves=waves)
    auth = service.auth(coordinator)
    await service.http.post(
        f"/api/v1/surges/{surge['id']}/waves/2/activate",
        json={"reason": "still rising"},
        headers=auth,
    )
    await service.http.post(f"/api/v1/surges/{surge['id']}/end", headers=auth)
    await wait_until_ended(service, coordinator, surge["id"])
    surge_actions = ["surge.created", "wave.activated", "surge.ended", "surge.drained"]
    log = (
        await service.http.get("/api/v1/audit", params={"action": surge_actions}, headers=auth)
    ).json()  # not the creation of the users
    assert [(e["action"], e["actor"], e["reason"]) for e in log] == [
        ("surge.drained", "system", None),
        ("surge.ended", "province-coordinator", None),
        ("wave.activated", "province-coordinator", "still rising"),
        ("surge.created", "province-coordinator", "10x normal arrivals"),
    ]
    assert all(e["surge_id"] == surge["id"] for e in log)
    assert log[2]["detail"] == {"wave": 2, "cities": [SUZHOU]}
    page = await service.http.get(f"/api/v1/audit?before_id={log[1]['id']}&limit=1", headers=auth)
    assert [e["action"] for e in page.json()] == ["wave.activated"]
    error_of(await service.http.get("/api/v1/audit", headers=service.auth(admin)), 403, "forbidden")


async def offer_or_nothing(console: Console, within: float = 1.0) -> dict[str, Any] | None:
    """The next offer this console gets within `within` seconds, if any."""
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        try:
            frame = await console.recv(left)
        except TimeoutError:
            return None
        if frame["type"] == "offer":
            return frame
    return None


async def helper_lending(service: LiveService, user: str, surge_id: int) -> dict[str, Any]:
    """The first helper of the surge's first wave, as GET /surges/{id} shows it."""
    response = await service.http.get(f"/api/v1/surges/{surge_id}", headers=service.auth(user))
    assert response.status_code == 200, response.text
    helper: dict[str, Any] = response.json()["waves"][0]["helpers"][0]
    return helper


async def test_a_helper_keeps_its_reserve_for_its_own_callers(service: LiveService) -> None:
    # The case: 3 Wuxi calls waiting and 4 Wuxi agents freed together. With a reserve
    # of 1, the 4th agent stays free for Wuxi's next caller instead of taking a Nanjing call.
    coordinator = await service.add_user(Role.COORDINATOR)
    cti = await service.add_user(Role.CTI)
    agents = [await service.add_user(Role.AGENT, WUXI) for _ in range(4)]
    surge = await start_surge(
        service,
        coordinator,
        waves=[{"cities": [WUXI], "seats_per_city": 4, "reserve": 1}],
        severity=2.5,
    )
    assert (surge["severity"], surge["waves"][0]["reserve"]) == (2.5, 1)
    host_calls = [await service.post_call(cti, NANJING) for _ in range(2)]
    own = [await service.post_call(cti, WUXI) for _ in range(3)]
    helper = await helper_lending(service, coordinator, surge["id"])
    assert (helper["lending"], helper["lending_reason"]) == (False, "own calls waiting")
    async with contextlib.AsyncExitStack() as stack:
        consoles = [await stack.enter_async_context(service.console(a)) for a in agents]
        for console in consoles:
            await console.send(type="status", state="available")
        offers = await asyncio.gather(*(offer_or_nothing(c) for c in consoles))
        offered = [o["call"]["id"] for o in offers if o is not None]
        assert sorted(offered) == sorted(call["id"] for call in own), offers
        assert all(o is None or o["surge_id"] is None for o in offers)
        helper = await helper_lending(service, coordinator, surge["id"])
        assert (helper["lending"], helper["lending_reason"]) == (False, "reserve")
        # One of them finishes its own call: two are free, so one may serve Nanjing.
        index = next(i for i, o in enumerate(offers) if o is not None)
        first, offer = consoles[index], offers[index]
        assert offer is not None
        await first.send(type="accept", offer_id=offer["offer_id"])
        await first.expect("call.connected")
        await first.send(type="complete", call_id=offer["call"]["id"], disposition="answered")
        await first.expect("call.completed")
        lent = await asyncio.gather(*(offer_or_nothing(c) for c in consoles))
        host = [o for o in lent if o is not None]
        assert [o["call"]["id"] for o in host] == [host_calls[0]["id"]], lent
        assert host[0]["surge_id"] == surge["id"]
        helper = await helper_lending(service, coordinator, surge["id"])
        assert (helper["lending"], helper["lending_reason"]) == (False, "reserve")


async def test_a_helper_under_its_own_service_level_stops_lending(backend: Backend) -> None:
    # A 0.2 s service-level time: Wuxi's own calls answered after 0.5 s are late.
    async with run_service(backend.settings(service_level_s=0.2)) as service:
        coordinator = await service.add_user(Role.COORDINATOR)
        cti = await service.add_user(Role.CTI)
        agent = await service.add_user(Role.AGENT, WUXI)
        surge = await start_surge(service, coordinator,
                                  waves=[{"cities": [WUXI], "seats_per_city": 2}])  # fmt: skip
        async with service.console(agent) as console:
            await console.expect("surge.joined")
            for _ in range(3):  # three late calls of three: 0.70 (the small-sample rule)
                call = await service.post_call(cti, WUXI)
                await asyncio.sleep(0.5)
                await console.available()
                offer = await next_offer(console)
                assert offer["call"]["id"] == call["id"]
                await console.send(type="accept", offer_id=offer["offer_id"])
                await console.expect("call.connected")
                await console.send(type="complete", call_id=call["id"], disposition="answered")
                await console.expect("call.completed")
                assert (await console.expect("state"))["state"] == "available"
                await console.send(type="status", state="break")
                await console.expect("state")
            await console.available()
            deadline = time.monotonic() + 8  # own service levels are cached for a few seconds
            while (helper := await helper_lending(service, coordinator, surge["id"]))["lending"]:
                assert time.monotonic() < deadline, helper
                await asyncio.sleep(0.2)
            assert helper["lending_reason"] == "own service level 0.70 under 0.80"
            await service.post_call(cti, NANJING)
            assert await offer_or_nothing(console) is None


async def test_two_hosts_sharing_a_helper_longest_wait_first(service: LiveService) -> None:
    # The case: the older Nanjing surge took every Wuxi agent while Yangzhou's callers
    # waited longer. Now a shared helper's free agent takes the longest-waiting call.
    yangzhou = "321000"
    coordinator = await service.add_user(Role.COORDINATOR)
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, WUXI)
    wave = {"cities": [WUXI], "seats_per_city": 4}
    first = await start_surge(service, coordinator, waves=[wave])
    second = await start_surge(
        service, coordinator, host_city=yangzhou, waves=[wave], allow_shared_helpers=True
    )
    waited = await service.post_call(cti, yangzhou)
    await asyncio.sleep(0.3)
    fresh = [await service.post_call(cti, NANJING) for _ in range(2)]
    async with service.console(agent) as console:
        joined = {(await console.expect("surge.joined"))["surge_id"] for _ in range(2)}
        assert joined == {first["id"], second["id"]}
        await console.available()
        offer = await next_offer(console)
        assert (offer["call"]["id"], offer["surge_id"]) == (waited["id"], second["id"])
        await console.send(type="accept", offer_id=offer["offer_id"])
        await console.expect("call.connected")
        await console.send(type="complete", call_id=waited["id"], disposition="answered")
        await console.expect("call.completed")
        # Then Nanjing's calls, whose wait is now the longest.
        assert (await next_offer(console))["call"]["id"] == fresh[0]["id"]
