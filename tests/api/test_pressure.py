"""Pressure readings, the elected city and helper proposals, from live calls and agents."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from surge.auth.models import Role
from surge.calls.models import Call
from surge.cities.monitor import recent_figures
from surge.db import create_engine, create_sessionmaker
from tests.api.test_bad_input import error_of
from tests.api.test_scripts import entry
from tests.conftest import Backend
from tests.helpers import LiveService, run_service, seed

NANJING, XUZHOU, SUZHOU = "320100", "320300", "320500"


@pytest.fixture
async def quick(backend: Backend) -> AsyncIterator[LiveService]:
    """A service that surveys pressure five times a second."""
    async with run_service(backend.settings(pressure_interval_s=0.2)) as live:
        yield live


async def board(service: LiveService, coordinator: str) -> dict[str, Any]:
    """A fresh GET /pressure (after the next survey)."""
    await asyncio.sleep(0.5)
    response = await service.http.get("/api/v1/pressure", headers=service.auth(coordinator))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_quiet_province_elects_nobody(quick: LiveService) -> None:
    coordinator = await quick.add_user(Role.COORDINATOR)
    result = await board(quick, coordinator)
    assert result["elected"] is None
    assert len(result["cities"]) == 13
    assert all(not city["over"] and city["reasons"] == [] for city in result["cities"])


async def test_a_swamped_city_is_elected_and_helpers_are_proposed(quick: LiveService) -> None:
    coordinator = await quick.add_user(Role.COORDINATOR)
    cti = await quick.add_user(Role.CTI)
    helpers = [await quick.add_user(Role.AGENT, XUZHOU) for _ in range(3)]
    # 100 calls in minutes against a normal 150 an hour, and no agent to take them.
    await asyncio.gather(*(quick.post_call(cti, NANJING) for _ in range(100)))
    async with quick.console(helpers[0]) as a, quick.console(helpers[1]) as b:
        await a.available()
        await b.available()
        result = await board(quick, coordinator)
        top = result["cities"][0]
        assert result["elected"] == NANJING
        assert top["code"] == NANJING
        assert top["over"] is True
        assert top["waiting"] == 100
        assert top["arrival_ratio"] > 2
        assert top["connection_rate"] == 0.0
        # 100 calls in the quarter: 400 an hour against no agent; Xuzhou's two agents free
        # (at the default 300 s, 24 calls an hour) are the province's only free capacity.
        assert (top["capacity_per_hour"], top["demand_per_hour"]) == (0, 400)
        assert top["shortfall_per_hour"] == 376
        xuzhou = reading_of(result, XUZHOU)
        assert (xuzhou["capacity_per_hour"], xuzhou["shortfall_per_hour"]) == (24, 0)
        text = " ".join(top["reasons"])
        assert "arrivals" in text
        assert "connection rate 0%" in text
        # The same reasons, in order, as codes with their figures (docs/REASONS.md).
        codes = [reason["code"] for reason in top["reason_codes"]]
        assert len(codes) == len(top["reasons"])
        assert {"arrivals", "connection_rate", "no_agents"} <= set(codes)
        rate = top["reason_codes"][codes.index("connection_rate")]["params"]
        assert rate == {"rate": 0.0, "threshold_rate": 0.8}
        assert top["reason_codes"][codes.index("no_agents")]["params"] == {"waiting": 100}
        scores = [city["score"] for city in result["cities"]]
        assert scores == sorted(scores, reverse=True)

        response = await quick.http.get(
            f"/api/v1/surges/proposal?host={NANJING}", headers=quick.auth(coordinator)
        )
        proposal = response.json()
        assert response.status_code == 200, proposal
        assert proposal["host_city"] == NANJING
        offered = [h for wave in proposal["waves"] for h in wave["helpers"]]
        assert offered[0] == {"city": XUZHOU, "spare": 2, "suggested_seats": 2}
        assert SUZHOU not in {h["city"] for h in offered}  # nobody logged in there
        # The proposal is ready to send as it is.
        started = await quick.http.post(
            "/api/v1/surges",
            json={"host_city": NANJING, "waves": [
                {"cities": w["cities"], "seats_per_city": w["seats_per_city"]}
                for w in proposal["waves"]
            ]},
            headers=quick.auth(coordinator),
        )  # fmt: skip
        assert started.status_code == 201
        again = await quick.http.get(
            f"/api/v1/surges/proposal?host={SUZHOU}", headers=quick.auth(coordinator)
        )
        assert again.json()["unavailable"][XUZHOU].startswith("helping surge")
        surge_id = started.json()["id"]
        assert again.json()["unavailable_codes"][XUZHOU] == {
            "code": "helping_surge", "params": {"surge_id": surge_id},
        }  # fmt: skip
        assert again.json()["unavailable_codes"][NANJING] == {
            "code": "host_of_surge", "params": {"surge_id": surge_id},
        }  # fmt: skip


async def test_pressure_and_proposals_are_for_the_coordinator(quick: LiveService) -> None:
    admin = await quick.add_user(Role.CITY_ADMIN, NANJING)
    coordinator = await quick.add_user(Role.COORDINATOR)
    error_of(await quick.http.get("/api/v1/pressure", headers=quick.auth(admin)), 403, "forbidden")
    get = quick.http.get
    auth = quick.auth(coordinator)
    error_of(await get("/api/v1/surges/proposal?host=999999", headers=auth), 422, "unknown_city")
    error_of(await get("/api/v1/surges/proposal?host=nj", headers=auth), 422, "invalid_request")
    error_of(await get("/api/v1/surges/proposal", headers=auth), 422, "invalid_request")


async def test_recent_figures_are_aggregated_in_sql(backend: Backend) -> None:
    settings = backend.settings()
    await seed(settings)
    engine = create_engine(settings.database_url)
    now = datetime.now(UTC)
    calls = [  # (received minutes ago, handled seconds or None, answered?)
        (5, 240.0, True), (10, 360.0, True), (20, None, True), (40, None, False), (90, 60.0, True),
    ]  # fmt: skip
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            for minutes, handled, was_answered in calls:
                arrived = now - timedelta(minutes=minutes)
                connected = arrived + timedelta(seconds=30) if was_answered else None
                status = "completed" if handled else "connected" if was_answered else "queued"
                session.add(
                    Call(
                        city_code=NANJING, caller="13812345678", channel="phone",
                        status=status,
                        received_at=arrived, connected_at=connected,
                        ended_at=connected + timedelta(seconds=handled)
                        if connected and handled else None,
                    )
                )  # fmt: skip
        async with create_sessionmaker(engine)() as session:
            figures = await recent_figures(session=session, now=now)
    finally:
        await engine.dispose()
    quarter, received, answered, aht = figures[NANJING]
    assert (quarter, received, answered) == (2, 4, 3)  # the 90-minute-old call is outside
    assert aht == pytest.approx(300.0)  # (240 + 360) / 2: only completed calls in the hour


async def test_autopilot_starts_a_surge_and_its_next_wave_when_allowed(backend: Backend) -> None:
    settings = backend.settings(
        pressure_interval_s=0.2, auto_surge=True, auto_next_wave_after_s=0.6
    )
    async with run_service(settings) as service:
        coordinator = await service.add_user(Role.COORDINATOR)
        cti = await service.add_user(Role.CTI)
        # Four cities with an agent each: the first wave takes three, the second the fourth.
        cities = ("320200", XUZHOU, "320400", SUZHOU)
        helpers = [await service.add_user(Role.AGENT, city) for city in cities]
        async with contextlib.AsyncExitStack() as stack:
            consoles = [await stack.enter_async_context(service.console(h)) for h in helpers]
            for console in consoles:
                await console.available()
            await asyncio.gather(*(service.post_call(cti, NANJING) for _ in range(100)))
            joined = await consoles[1].expect("surge.joined", within=5)
            assert joined["host_city"] == NANJING
            auth = service.auth(coordinator)
            for _ in range(50):  # the second wave follows while Nanjing stays over
                surges = (await service.http.get("/api/v1/surges", headers=auth)).json()
                if all(wave["active"] for wave in surges[0]["waves"]):
                    break
                await asyncio.sleep(0.1)
            (surge,) = surges
            assert surge["created_by"] == "system"
            assert [w["active"] for w in surge["waves"]] == [True, True]
            log = (
                await service.http.get("/api/v1/audit", params={"actor": "system"}, headers=auth)
            ).json()
            assert [(e["action"], e["actor"]) for e in log] == [
                ("wave.activated", "system"),
                ("surge.created", "system"),
            ]
            assert log[1]["reason"].startswith("elected automatically: ")
            assert "over the thresholds for 0.6 s" in log[0]["reason"]


async def test_autopilot_is_off_by_default(quick: LiveService) -> None:
    coordinator = await quick.add_user(Role.COORDINATOR)
    cti = await quick.add_user(Role.CTI)
    await quick.add_user(Role.AGENT, XUZHOU)
    await asyncio.gather(*(quick.post_call(cti, NANJING) for _ in range(100)))
    assert (await board(quick, coordinator))["elected"] == NANJING
    surges = await quick.http.get("/api/v1/surges", headers=quick.auth(coordinator))
    assert surges.json() == []


YANGZHOU, WUXI = "321000", "320200"


def reading_of(result: dict[str, Any], code: str) -> dict[str, Any]:
    """One city's reading on the board."""
    found: dict[str, Any] = next(city for city in result["cities"] if city["code"] == code)
    return found


async def test_a_drained_city_gives_the_election_to_one_with_calls_waiting(
    quick: LiveService,
) -> None:
    coordinator = await quick.add_user(Role.COORDINATOR)
    cti = await quick.add_user(Role.CTI)
    calls = await asyncio.gather(*(quick.post_call(cti, YANGZHOU) for _ in range(100)))
    assert (await board(quick, coordinator))["elected"] == YANGZHOU
    for call in calls:  # every Yangzhou caller hangs up: its queue is empty
        response = await quick.http.post(
            f"/api/v1/calls/{call['id']}/abandon", headers=quick.auth(cti)
        )
        assert response.status_code == 200, response.text
    await asyncio.gather(*(quick.post_call(cti, NANJING) for _ in range(80)))
    result = await board(quick, coordinator)
    yangzhou, nanjing = reading_of(result, YANGZHOU), reading_of(result, NANJING)
    assert (yangzhou["waiting"], yangzhou["over"]) == (0, False)
    assert (nanjing["waiting"], nanjing["over"]) == (80, True)
    assert result["elected"] == NANJING
    assert result["cities"][0]["code"] == NANJING


async def test_an_empty_city_is_not_over_on_two_calls(quick: LiveService) -> None:
    coordinator = await quick.add_user(Role.COORDINATOR)
    cti = await quick.add_user(Role.CTI)
    agent = await quick.add_user(Role.AGENT, WUXI)
    await quick.answer_call(cti, agent, WUXI)  # answered at once, then the agent logs out
    call = await quick.post_call(cti, WUXI)
    response = await quick.http.post(f"/api/v1/calls/{call['id']}/abandon", headers=quick.auth(cti))
    assert response.status_code == 200, response.text
    wuxi = reading_of(await board(quick, coordinator), WUXI)
    assert (wuxi["waiting"], wuxi["agents_free"], wuxi["agents_busy"]) == (0, 0, 0)
    assert wuxi["connection_rate"] == 0.5
    assert wuxi["over"] is False
    assert wuxi["reasons"] == []


async def surge_release(service: LiveService, coordinator: str, surge_id: int) -> dict[str, Any]:
    """GET /surges/{id} and return its `release`."""
    response = await service.http.get(
        f"/api/v1/surges/{surge_id}", headers=service.auth(coordinator)
    )
    assert response.status_code == 200, response.text
    release: dict[str, Any] = response.json()["release"]
    return release


async def test_a_surge_suggests_its_release_once_the_host_stays_calm(backend: Backend) -> None:
    settings = backend.settings(pressure_interval_s=0.1, release_after_s=0.8)
    async with run_service(settings) as service:
        coordinator = await service.add_user(Role.COORDINATOR)
        cti = await service.add_user(Role.CTI)
        created = await service.http.post(
            "/api/v1/surges",
            json={"host_city": WUXI, "waves": [{"cities": [XUZHOU], "seats_per_city": 2}]},
            headers=service.auth(coordinator),
        )
        assert created.status_code == 201, created.text
        surge = created.json()
        assert surge["release"]["suggested"] is False  # the clock starts with the surge
        for _ in range(40):
            release = await surge_release(service, coordinator, surge["id"])
            if release["suggested"]:
                break
            assert "s needed" in release["reasons"][0], release
            await asyncio.sleep(0.1)
        assert release["suggested"] is True, release
        assert "under the release threshold 0.75" in release["reasons"][0]
        # Thirty callers and nobody of Wuxi's own: the suggestion is withdrawn at once.
        await asyncio.gather(*(service.post_call(cti, WUXI) for _ in range(30)))
        await asyncio.sleep(0.4)
        release = await surge_release(service, coordinator, surge["id"])
        assert release["suggested"] is False
        assert "at or over the release threshold 0.75" in release["reasons"][0]
        assert "no agent logged in for the 30 calls waiting" in release["reasons"]
        over = release["reason_codes"][0]
        assert (over["code"], over["params"]["threshold"]) == ("release_over", 0.75)
        assert over["params"]["score"] >= 0.75
        assert {"code": "no_agents", "params": {"waiting": 30}} in release["reason_codes"]
        ended = await service.http.post(
            f"/api/v1/surges/{surge['id']}/end", headers=service.auth(coordinator)
        )
        status = ended.json()["status"]
        assert ended.json()["release"] == {
            "suggested": False,
            "reasons": [f"the surge is {status}"],
            "reason_codes": [{"code": f"surge_{status}", "params": {}}],
        }


async def test_autopilot_does_not_start_again_for_a_drained_city(backend: Backend) -> None:
    async with run_service(backend.settings(pressure_interval_s=0.1, auto_surge=True)) as service:
        coordinator = await service.add_user(Role.COORDINATOR)
        cti = await service.add_user(Role.CTI)
        helper = await service.add_user(Role.AGENT, XUZHOU)
        auth = service.auth(coordinator)
        async with service.console(helper) as console:
            await console.available()
            calls = await asyncio.gather(*(service.post_call(cti, YANGZHOU) for _ in range(60)))
            await console.expect("surge.joined", within=5)
        # The helper's console closed: its offer goes back to the queue; then every caller hangs up.
        for _ in range(50):
            cities = (await service.http.get("/api/v1/cities", headers=auth)).json()
            if next(c for c in cities if c["code"] == YANGZHOU)["waiting"] == len(calls):
                break
            await asyncio.sleep(0.05)
        for call in calls:
            response = await service.http.post(
                f"/api/v1/calls/{call['id']}/abandon", headers=service.auth(cti)
            )
            assert response.status_code == 200, response.text
        async with service.console(helper) as console:
            await console.expect("surge.joined")
            await console.available()  # Xuzhou could help again
            result = await board(service, coordinator)
            assert result["elected"] == YANGZHOU  # drained, kept by the hysteresis
            assert reading_of(result, YANGZHOU)["over"] is False
            (surge,) = (await service.http.get("/api/v1/surges", headers=auth)).json()
            ended = await service.http.post(f"/api/v1/surges/{surge['id']}/end", headers=auth)
            assert ended.status_code == 200, ended.text
            await asyncio.sleep(0.6)
            surges = (await service.http.get("/api/v1/surges", headers=auth)).json()
            assert [s["id"] for s in surges] == [surge["id"]]


async def test_an_automatic_surge_tells_its_helpers_the_hosts_scripts_version(
    backend: Backend,
) -> None:
    # A helper joining a surge the autopilot started hears the host's current scripts version,
    # as one joining a coordinator's surge does.
    async with run_service(backend.settings(pressure_interval_s=0.1, auto_surge=True)) as service:
        admin = await service.add_user(Role.CITY_ADMIN, YANGZHOU)
        cti = await service.add_user(Role.CTI)
        helper = await service.add_user(Role.AGENT, XUZHOU)
        book = f"/api/v1/cities/{YANGZHOU}/scripts"
        answers = {"entries": [entry("testing")]}
        published = await service.http.post(book, json=answers, headers=service.auth(admin))
        assert published.status_code == 201, published.text
        async with service.console(helper) as console:
            await console.available()
            await asyncio.gather(*(service.post_call(cti, YANGZHOU) for _ in range(60)))
            joined = await console.expect("surge.joined", within=5)
            assert joined == {
                "type": "surge.joined",
                "surge_id": joined["surge_id"],
                "host_city": YANGZHOU,
                "scripts_version": 1,
            }
