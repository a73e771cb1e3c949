"""Hot issues: GET /hotspots and the `hotspot` frame, from tickets completed on a real console.

The baseline (tickets of two hours ago) is written in the database; the hour's tickets are
completed by an agent over /ws/agent, so their category and summary are what the console sent.
Rules of these tests: 4 tickets in the hour and in the baseline, 2 on a term, lift 3, rise 5
points, floor 1 % (`SURGE_HOTSPOT_*`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import websockets

from surge.auth.models import Role
from surge.calls.models import Call
from surge.db import create_engine, create_sessionmaker
from tests.api.test_bad_input import error_of
from tests.conftest import Backend
from tests.helpers import Console, LiveService, run_service

NANJING, WUXI = "320100", "320200"
RULES: dict[str, Any] = {
    "hotspot_min_tickets": 4,
    "hotspot_min_count": 2,
    "hotspot_check_s": 0.3,
}


@pytest.fixture
async def live(backend: Backend) -> AsyncIterator[LiveService]:
    """A service with small-sample rules and a check every 0.3 s."""
    async with run_service(backend.settings(**RULES)) as service:
        yield service


async def baseline(live: LiveService) -> None:
    """Two hours ago: 10 tickets in Nanjing and 10 in Wuxi, all about social security cards."""
    ended = datetime.now(UTC) - timedelta(hours=2)
    engine = create_engine(live.settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            for city in (NANJING, WUXI):
                for _ in range(10):
                    session.add(
                        Call(
                            city_code=city, caller="13812345678", channel="phone",
                            status="completed", received_at=ended - timedelta(minutes=5),
                            connected_at=ended - timedelta(minutes=4), ended_at=ended,
                            disposition="answered", category_code="0301", summary="社保卡补办",
                        )
                    )  # fmt: skip
    finally:
        await engine.dispose()


async def complete(live: LiveService, tickets: list[tuple[str, str]]) -> None:
    """A Nanjing agent answers one call per (category, summary) and completes its ticket."""
    cti = await live.add_user(Role.CTI)
    agent = await live.add_user(Role.AGENT, NANJING)
    async with live.console(agent) as console:
        await console.available()
        for category, summary in tickets:
            call = await live.post_call(cti, NANJING)
            offer = await console.expect("offer")
            await console.send(type="accept", offer_id=offer["offer_id"])
            await console.expect("call.connected")
            await console.send(type="complete", call_id=call["id"], disposition="answered",
                               category_code=category, summary=summary)  # fmt: skip
            await console.expect("call.completed")
            await console.expect("state")  # available again (no wrap-up in these tests)


async def the_hour(live: LiveService) -> None:
    """This hour in Nanjing: 3 tickets on the metro stopping (0201 travel rules), 1 as usual."""
    await complete(live, [("0201", "地铁停运")] * 3 + [("0301", "社保卡补办")])


# Nanjing's hour: 0201 on 3 of 4 tickets (75 %) against a baseline that never saw it (the 1 %
# floor): lift 75, rise 74 points. 地铁, 铁停 and 停运 each on the same 3 tickets: one issue,
# 停运 kept (first by key). 0301: 1 of 4 (25 %) against 100 %: not hot. Wuxi: no hour at all.
# Pooled, the province's hour is Nanjing's (4 tickets, baseline 20): the same figures.
TRAVEL = {
    "kind": "category", "key": "0201", "label": {"zh": "出行政策咨询", "en": "Travel rules"},
    "count": 3, "share": 0.75, "baseline_share": 0.01, "lift": 75.0, "rise": 0.74,
}  # fmt: skip
STOPPED = {**TRAVEL, "kind": "term", "key": "停运", "label": {"zh": "停运", "en": "停运"}}


def province(spot: dict[str, Any]) -> dict[str, Any]:
    return {**spot, "cities": [NANJING], "province": True}


async def hotspots(live: LiveService, user: str, query: str = "") -> Any:
    response = await live.http.get(f"/api/v1/hotspots{query}", headers=live.auth(user))
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_hour_against_its_baseline_province_wide_and_per_city(live: LiveService) -> None:
    coordinator = await live.add_user(Role.COORDINATOR)
    admin = await live.add_user(Role.CITY_ADMIN, NANJING)
    await baseline(live)
    assert await hotspots(live, coordinator) == []
    await the_hour(live)
    assert await hotspots(live, coordinator) == [province(TRAVEL), province(STOPPED)]
    in_nanjing = [{**s, "cities": [NANJING], "province": False} for s in (TRAVEL, STOPPED)]
    assert await hotspots(live, coordinator, f"?city={NANJING}") == in_nanjing
    assert await hotspots(live, coordinator, f"?city={WUXI}") == []
    assert await hotspots(live, admin) == in_nanjing  # a city admin: its own city by default
    assert await hotspots(live, admin, f"?city={NANJING}") == in_nanjing


async def test_a_small_hour_is_no_alert(live: LiveService) -> None:
    coordinator = await live.add_user(Role.COORDINATOR)
    await baseline(live)
    await complete(live, [("0201", "地铁停运")] * 3)  # 3 tickets: under the guard's 4
    assert await hotspots(live, coordinator) == []


async def test_hotspots_are_for_coordinators_and_their_own_city_admins(live: LiveService) -> None:
    coordinator = await live.add_user(Role.COORDINATOR)
    admin = await live.add_user(Role.CITY_ADMIN, NANJING)
    agent = await live.add_user(Role.AGENT, NANJING)
    get = live.http.get
    error_of(await get(f"/api/v1/hotspots?city={WUXI}", headers=live.auth(admin)), 403, "forbidden")
    error_of(await get("/api/v1/hotspots", headers=live.auth(agent)), 403, "forbidden")
    error_of(await get("/api/v1/hotspots?city=999999", headers=live.auth(coordinator)), 404,
             "not_found")  # fmt: skip
    error_of(await get("/api/v1/hotspots?city=nj", headers=live.auth(coordinator)), 422,
             "invalid_request")  # fmt: skip
    error_of(await get("/api/v1/hotspots"), 401, "unauthorized")


@asynccontextmanager
async def admin_stream(live: LiveService, user: str) -> AsyncIterator[Console]:
    """A coordinator's or a city admin's /ws/admin, after its `hello`."""
    async with websockets.connect(f"{live.ws_url}/ws/admin?token={live.tokens[user]}") as ws:
        stream = Console(ws)
        hello = await stream.expect("hello")
        assert hello["role"] in {"coordinator", "city_admin"}
        yield stream


async def alerts(stream: Console, *, within: float = 5.0) -> list[dict[str, Any]]:
    """The `hotspot` frames of the first check that sends any, then a second of nothing more."""
    first = await stream.expect("hotspot", within=within)
    found = [first]
    while True:
        try:
            found.append(await stream.expect("hotspot", within=0.2))
        except TimeoutError:
            break
    await stream.silent(0.7)  # still hot at the next two checks: not sent again
    return found


async def test_coordinators_are_told_once_when_a_hotspot_appears(live: LiveService) -> None:
    coordinator = await live.add_user(Role.COORDINATOR)
    await baseline(live)
    admin = await live.add_user(Role.CITY_ADMIN, NANJING)
    async with (
        admin_stream(live, coordinator) as stream,
        admin_stream(live, admin) as city_stream,
    ):
        await stream.silent(0.4)  # a check runs; nothing is hot
        await the_hour(live)
        told = await alerts(stream)
        await city_stream.silent(0.2)  # the province's alerts are the coordinators' alone
    assert [frame["hotspot"] for frame in told] == [province(TRAVEL), province(STOPPED)]
    assert all(datetime.fromisoformat(frame["at"]).tzinfo is not None for frame in told)


async def test_the_admin_stream_is_read_only_and_for_supervisors(live: LiveService) -> None:
    coordinator = await live.add_user(Role.COORDINATOR)
    agent = await live.add_user(Role.AGENT, NANJING)
    async with admin_stream(live, coordinator) as stream:
        await stream.send(type="status", state="available")
        assert (await stream.expect("error"))["code"] == "read_only"
    async with websockets.connect(f"{live.ws_url}/ws/admin?token={live.tokens[agent]}") as ws:
        assert json.loads(await ws.recv())["code"] == "forbidden"
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 4403


async def test_every_instance_tells_its_coordinators(shared_backend: Backend) -> None:
    async with (
        run_service(shared_backend.settings(instance_id="a", **RULES)) as one,
        run_service(shared_backend.settings(instance_id="b", **RULES)) as two,
    ):
        first = await one.add_user(Role.COORDINATOR)
        second = await two.add_user(Role.COORDINATOR)
        await baseline(one)
        async with admin_stream(one, first) as a, admin_stream(two, second) as b:
            await the_hour(one)
            told_a, told_b = await asyncio.gather(alerts(a), alerts(b))
    for told in (told_a, told_b):  # one of the two instances checked, each check once
        assert [frame["hotspot"] for frame in told] == [province(TRAVEL), province(STOPPED)]


async def test_a_disabled_coordinators_stream_is_closed(live: LiveService) -> None:
    manager = await live.add_user(Role.COORDINATOR)
    watcher = await live.add_user(Role.COORDINATOR)
    users = (await live.http.get("/api/v1/users", headers=live.auth(manager))).json()
    (user_id,) = [user["id"] for user in users if user["username"] == watcher]
    async with admin_stream(live, watcher) as stream:
        changed = await live.http.patch(
            f"/api/v1/users/{user_id}", json={"disabled": True}, headers=live.auth(manager)
        )
        assert changed.status_code == 200, changed.text
        assert (await stream.expect("error"))["code"] == "unauthorized"
        with pytest.raises(websockets.ConnectionClosed):
            await stream.drain()
        assert stream.socket.close_code == 4401
