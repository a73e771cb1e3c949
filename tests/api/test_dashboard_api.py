"""What the coordinator's dashboard reads beyond the board: pressure history, calls per helper."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from surge.auth.models import Role
from tests.api.test_bad_input import error_of
from tests.api.test_surges import next_offer, start_surge
from tests.helpers import LiveService

NANJING, XUZHOU, SUZHOU = "320100", "320300", "320500"


async def history(service: LiveService, user: str, query: str) -> dict[str, Any]:
    """GET /pressure/history and return the body."""
    response = await service.http.get(
        f"/api/v1/pressure/history?{query}", headers=service.auth(user)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_pressure_history_follows_a_citys_queue(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    cti = await service.add_user(Role.CTI)
    for _ in range(2):
        await service.post_call(cti, NANJING)

    deadline = time.monotonic() + 3 * service.settings.pressure_interval_s
    while True:  # the monitor surveys on its own schedule
        body = await history(service, coordinator, f"city={NANJING}&minutes=5")
        if body["samples"] and body["samples"][-1]["waiting"] == 2:
            break
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.2)

    assert (body["city"], body["minutes"]) == (NANJING, 5)
    last = body["samples"][-1]
    assert set(last) == {"at", "waiting", "longest_wait_s", "agents_free", "agents_busy", "score"}
    assert (last["agents_free"], last["agents_busy"]) == (0, 0)
    assert last["longest_wait_s"] >= 0
    times = [datetime.fromisoformat(sample["at"]) for sample in body["samples"]]
    assert times == sorted(times)
    assert all(moment.utcoffset() is not None for moment in times)
    quiet = await history(service, coordinator, f"city={SUZHOU}")
    assert quiet["minutes"] == 60
    assert quiet["samples"]
    assert {sample["waiting"] for sample in quiet["samples"]} == {0}


BAD_HISTORY_QUERIES: list[tuple[str, str]] = [
    ("", "invalid_request"),
    ("city=Nanjing", "invalid_request"),
    ("city=３２０１００", "invalid_request"),  # full-width digits are not a code
    ("city=999999", "unknown_city"),
    (f"city={NANJING}&minutes=0", "invalid_request"),
    (f"city={NANJING}&minutes=61", "invalid_request"),
    (f"city={NANJING}&minutes=soon", "invalid_request"),
]


async def test_bad_history_requests_are_refused(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    for query, code in BAD_HISTORY_QUERIES:
        response = await service.http.get(
            f"/api/v1/pressure/history?{query}", headers=service.auth(coordinator)
        )
        assert response.status_code == 422, (query, response.text)
        error_of(response, 422, code)


async def test_only_the_coordinator_reads_the_history(service: LiveService) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    agent = await service.add_user(Role.AGENT, NANJING)
    for user in (admin, agent):
        response = await service.http.get(
            f"/api/v1/pressure/history?city={NANJING}", headers=service.auth(user)
        )
        error_of(response, 403, "forbidden")
    error_of(await service.http.get(f"/api/v1/pressure/history?city={NANJING}"), 401,
             "unauthorized")  # fmt: skip


async def test_the_surge_counts_the_calls_each_helper_answered(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    cti = await service.add_user(Role.CTI)
    helper = await service.add_user(Role.AGENT, XUZHOU)
    own = await service.add_user(Role.AGENT, NANJING)
    waves = [{"cities": [XUZHOU], "seats_per_city": 2}, {"cities": [SUZHOU], "seats_per_city": 1}]
    surge = await start_surge(service, coordinator, waves=waves)
    assert [h["answered"] for w in surge["waves"] for h in w["helpers"]] == [0, 0]

    async with service.console(helper) as console:
        await console.expect("surge.joined")
        await console.available()
        for _ in range(2):
            call = await service.post_call(cti, NANJING)
            offer = await next_offer(console)
            assert offer["call"]["id"] == call["id"]
            await console.send(type="accept", offer_id=offer["offer_id"])
            await console.expect("call.connected")
            await console.send(type="complete", call_id=call["id"], disposition="answered")
            await console.expect("call.completed")
    await service.answer_call(cti, own, NANJING)  # the host's own agents are not helpers

    url = f"/api/v1/surges/{surge['id']}"
    read = (await service.http.get(url, headers=service.auth(coordinator))).json()
    helpers = {h["city"]: h for w in read["waves"] for h in w["helpers"]}
    assert helpers[XUZHOU] == {"city": XUZHOU, "seats": 2, "in_use": 0, "answered": 2,
                               "lending": True, "lending_reason": None}  # fmt: skip
    # Wave 2 is not active: its helper is not lending, nor refused.
    assert helpers[SUZHOU] == {"city": SUZHOU, "seats": 1, "in_use": 0, "answered": 0,
                               "lending": None, "lending_reason": None}  # fmt: skip

    ended = await service.http.post(f"{url}/end", headers=service.auth(coordinator))
    after = [h["answered"] for w in ended.json()["waves"] for h in w["helpers"]]
    assert after == [2, 0]  # an ended surge keeps its tally
    listed = await service.http.get("/api/v1/surges", headers=service.auth(coordinator))
    assert [h["answered"] for w in listed.json()[0]["waves"] for h in w["helpers"]] == [2, 0]
