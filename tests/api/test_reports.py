"""The daily report over HTTP, checked against figures computed by hand from a small fixed day.

The day is 2021-07-25 in Asia/Shanghai. Nanjing hosts two surges that day (Suzhou and Wuxi help
in the first, Wuxi and Changzhou in the second, so Wuxi is in two surges on one day); Suzhou
also helps Yangzhou. Calls are written straight into the database with exact times, the way the
call lifecycle records them, so that every figure below can be worked out on paper.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import json
import math
import re
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from surge import erlang
from surge.auth.models import Role, User
from surge.calls.models import Call, CallEvent
from surge.db import create_engine, create_sessionmaker
from surge.reports.schemas import LedgerPart, Part
from surge.seats.models import Agent
from surge.settings import Settings
from surge.surges.models import Surge, SurgeWave, SurgeWaveCity
from tests.api.test_bad_input import error_of
from tests.conftest import Backend
from tests.helpers import LiveService, run_service

SHANGHAI = ZoneInfo("Asia/Shanghai")
NANJING, WUXI, CHANGZHOU, SUZHOU, NANTONG, YANGZHOU, TAIZHOU = (
    "320100", "320200", "320400", "320500", "320600", "321000", "321200",
)  # fmt: skip
DAY = "2021-07-25"


def at(hour: int, minute: int = 0, second: int = 0, *, day: int = 25) -> datetime:
    """A local time in July 2021, as the UTC the database stores."""
    return datetime(2021, 7, day, hour, minute, second, tzinfo=SHANGHAI).astimezone(UTC)


@dataclass
class Seat:
    name: str
    city: str
    id: int = 0


SEATS = {
    "nj1": Seat("nj1", NANJING),
    "nj2": Seat("nj2", NANJING),
    "sz1": Seat("sz1", SUZHOU),
    "sz2": Seat("sz2", SUZHOU),
    "wx1": Seat("wx1", WUXI),
}


def call(
    city: str,
    received: datetime,
    *,
    waited: float | None = None,
    handled: float | None = None,
    abandoned_after: float | None = None,
    seat: str | None = None,
    disposition: str = "answered",
    category: str | None = None,
    score: int | None = None,
    satisfied: bool | None = None,
    offered_first: bool = False,
    scripts: tuple[int | None, int | None, int | None] = (None, None, None),
) -> tuple[Call, list[CallEvent]]:
    """A call and its history: answered (and completed if handled), abandoned, or waiting.

    `scripts`: the version the agent cited, and the host's versions at accept and completion.
    """
    agent = SEATS[seat].id if seat else None
    row = Call(city_code=city, caller="13812345678", channel="phone", priority=0)
    row.script_version, row.script_version_at_accept, row.script_version_at_complete = scripts
    row.received_at = received
    events = [CallEvent(at=received, from_status=None, to_status="queued")]
    if abandoned_after is not None:
        row.status = "abandoned"
        row.ended_at = received + timedelta(seconds=abandoned_after)
        if offered_first:
            offered = received + timedelta(seconds=abandoned_after / 2)
            events.append(CallEvent(at=offered, from_status="queued", to_status="offered"))
        events.append(
            CallEvent(
                at=row.ended_at,
                from_status="offered" if offered_first else "queued",
                to_status="abandoned",
            )
        )
    elif waited is not None:
        connected = received + timedelta(seconds=waited)
        row.agent_id, row.connected_at, row.status = agent, connected, "connected"
        events += [
            CallEvent(at=connected, from_status="queued", to_status="offered", agent_id=agent),
            CallEvent(at=connected, from_status="offered", to_status="connected", agent_id=agent),
        ]
        if handled is not None:
            row.status, row.ended_at = "completed", connected + timedelta(seconds=handled)
            row.disposition, row.category_code = disposition, category
            events.append(
                CallEvent(at=row.ended_at, from_status="connected", to_status="completed")
            )
        if score is not None or satisfied is not None:
            row.satisfied = satisfied if satisfied is not None else (score or 0) >= 4
            row.feedback_score, row.feedback_at = score, connected + timedelta(hours=1)
    else:
        row.status = "queued"
    return row, events


def the_day() -> list[tuple[Call, list[CallEvent]]]:
    return [
        # Nanjing, the host.
        # Script versions (cited, at accept, at completion): stale when the first or second is
        # below the third. Nanjing: 3 stale (9:00 nj1; 9:10 and 10:30 by Suzhou); Yangzhou: 1
        # (by Suzhou); none for Wuxi's, Suzhou's own, the call still on the line, the 24th's.
        call(NANJING, at(9, 0), waited=10, handled=300, seat="nj1", category="0101", score=5,
             scripts=(1, 1, 2)),
        call(NANJING, at(9, 10), waited=30, handled=240, seat="sz1", category="0202",
             disposition="transferred", score=4, scripts=(2, 1, 2)),
        call(NANJING, at(9, 20), abandoned_after=3),
        call(NANJING, at(10, 0), abandoned_after=60, offered_first=True),
        call(NANJING, at(23, 59, 50), waited=20, handled=200, seat="wx1", category="0102",
             satisfied=False, scripts=(2, 2, 2)),  # crosses midnight: the 25th, hour 23
        call(NANJING, at(10, 30), waited=5, handled=600, seat="sz2", scripts=(None, 2, 3)),
        call(NANJING, at(11, 0)),  # still waiting
        call(NANJING, at(11, 5), waited=40, seat="nj2", scripts=(None, 1, None)),  # on the line
        call(NANJING, at(23, 59, 30, day=24), waited=35, handled=100, seat="nj1",
             category="0101", scripts=(1, 1, 2)),  # the 24th, answered on the 25th
        call(NANJING, at(0, 0, 0, day=26), waited=1, handled=100, seat="nj1"),  # the 26th
        # Yangzhou, helped by Suzhou; Suzhou's own call.
        call(YANGZHOU, at(14, 0), waited=15, handled=600, seat="sz1", category="0101",
             scripts=(None, 0, 1)),  # accepted before the first publish, completed after it
        call(SUZHOU, at(15, 0), waited=2, handled=120, seat="sz1", category="0201",
             scripts=(1, 1, 1)),
    ]  # fmt: skip


def surges() -> list[Surge]:
    def surge(host: str, created: datetime, ended: datetime | None, *waves: Any) -> Surge:
        made = Surge(
            host_city=host,
            status="ended" if ended else "active",
            overflow_after_s=0,
            allow_shared_helpers=True,
            created_by="coordinator",
            created_at=created,
            ended_at=ended,
        )
        for number, (cities, activated) in enumerate(waves, start=1):
            wave = SurgeWave(number=number, seats_per_city=5, activated_at=activated)
            wave.cities = [SurgeWaveCity(city_code=code) for code in cities]
            made.waves.append(wave)
        return made

    return [
        surge(NANJING, at(8, 0, day=22), at(12, 0, day=24), ([NANTONG], at(8, 0, day=22))),
        surge(NANJING, at(8, 0), at(12, 0), ([SUZHOU], at(8, 0)), ([WUXI], at(9, 30))),
        surge(NANJING, at(20, 0), None, ([WUXI, CHANGZHOU], at(20, 0)), ([TAIZHOU], None)),
        surge(YANGZHOU, at(13, 0), at(18, 0), ([SUZHOU], at(13, 0))),
    ]


async def load_the_day(settings: Settings) -> list[int]:
    """Agents, surges and calls of the day in the database (cities seeded); the surges' ids."""
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            for seat in SEATS.values():  # agents who never log in here: no password to hash
                user = User(
                    username=seat.name, password_hash="-", role=Role.AGENT, city_code=seat.city
                )
                session.add(user)
                await session.flush()
                agent = Agent(user_id=user.id, city_code=seat.city, name=seat.name, endpoint="-")
                session.add(agent)
                await session.flush()
                seat.id = agent.id
            made = surges()
            session.add_all(made)
            for row, events in the_day():
                session.add(row)
                await session.flush()
                for event in events:
                    event.call_id = row.id
                session.add_all(events)
        return [surge.id for surge in made]
    finally:
        await engine.dispose()


@pytest.fixture
async def day_service(backend: Backend) -> AsyncIterator[tuple[LiveService, list[int]]]:
    async with run_service(backend.settings()) as live:
        surge_ids = await load_the_day(live.settings)
        yield live, surge_ids


async def report(service: LiveService, who: str, **params: Any) -> dict[str, Any]:
    response = await service.http.get(
        "/api/v1/reports/daily", params={"date": DAY, **params}, headers=service.auth(who)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def by_code(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["code"]: row for row in body["cities"]}


async def check_the_host_citys_figures(service: LiveService, surge_ids: list[int]) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)

    nanjing = by_code(await report(service, coordinator))[NANJING]

    assert nanjing["received"] == 8
    # Written straight into the database, with no caller key: each call is a caller of its own.
    assert (nanjing["unique_callers"], nanjing["repeat_attempts"]) == (8, 0)
    assert nanjing["answered"] == 5
    assert nanjing["abandoned"] == 2
    assert (nanjing["abandoned_short"], nanjing["abandoned_long"]) == (1, 1)
    assert nanjing["open"] == 1
    assert nanjing["connection_rate"] == pytest.approx(5 / 8)
    assert nanjing["abandonment_rate"] == pytest.approx(2 / 8)
    assert nanjing["asa_s"] == pytest.approx((10 + 30 + 20 + 5 + 40) / 5)
    assert nanjing["wait_p90_s"] == pytest.approx(40)  # rank ceil(0.9 x 5) = 5 of 5, 10, 20, 30, 40
    assert nanjing["service_level"] == pytest.approx(3 / 6)  # 10, 20, 5 s of 5 answered + 1 late
    assert nanjing["aht_s"] == pytest.approx((300 + 240 + 200 + 600) / 4)
    assert nanjing["answered_by_helpers"] == 3
    assert nanjing["helper_share"] == pytest.approx(3 / 5)
    assert nanjing["answered_for_others"] == 0
    assert (nanjing["answered_online"], nanjing["transferred"]) == (3, 1)
    assert nanjing["online_rate"] == pytest.approx(3 / 4)
    assert nanjing["consultation"] == 2
    assert nanjing["consultation_aht_s"] == pytest.approx((300 + 200) / 2)
    assert (nanjing["other"], nanjing["other_aht_s"]) == (1, pytest.approx(240))
    assert nanjing["unclassified"] == 1
    assert (nanjing["feedback"], nanjing["satisfied"]) == (3, 2)
    assert nanjing["satisfaction_rate"] == pytest.approx(2 / 3)
    assert nanjing["agents_active"] == 2  # nj1, nj2
    assert nanjing["seats_active"] == 5  # nj1, nj2, sz1, sz2, wx1
    assert nanjing["seats"] == 113


async def check_each_helper_city_has_its_row(service: LiveService, surge_ids: list[int]) -> None:
    _, first, second, yangzhou = surge_ids
    coordinator = await service.add_user(Role.COORDINATOR)

    cities = by_code(await report(service, coordinator))
    helpers = {row["code"]: row for row in cities[NANJING]["helpers"]}

    assert [row["code"] for row in cities[NANJING]["helpers"]] == [SUZHOU, WUXI, CHANGZHOU]
    suzhou = helpers[SUZHOU]
    assert (suzhou["host"], suzhou["answered"], suzhou["agents"]) == (NANJING, 2, 2)
    assert suzhou["share"] == pytest.approx(2 / 5)
    assert suzhou["asa_s"] == pytest.approx((30 + 5) / 2)
    assert suzhou["aht_s"] == pytest.approx((240 + 600) / 2)
    assert suzhou["handling_hours"] == pytest.approx(840 / 3600)
    assert suzhou["surges"] == [first]
    wuxi = helpers[WUXI]
    assert (wuxi["answered"], wuxi["agents"], wuxi["aht_s"]) == (1, 1, pytest.approx(200))
    assert wuxi["surges"] == [first, second]  # one helper city, two surges, one day
    changzhou = helpers[CHANGZHOU]  # in a surge, answered nothing
    assert (changzhou["answered"], changzhou["share"], changzhou["asa_s"]) == (0, 0.0, None)
    assert changzhou["surges"] == [second]

    assert [(r["code"], r["answered"], r["surges"]) for r in cities[YANGZHOU]["helpers"]] == [
        (SUZHOU, 1, [yangzhou])
    ]
    assert cities[SUZHOU]["answered_for_others"] == 3
    assert cities[WUXI]["answered_for_others"] == 1
    assert cities[SUZHOU]["agents_active"] == 2
    assert cities[SUZHOU]["seats_active"] == 1
    assert cities[WUXI]["agents_active"] == 1
    assert cities[WUXI]["received"] == 0
    assert cities[SUZHOU]["helpers"] == []


async def check_hours_and_midnight(service: LiveService, surge_ids: list[int]) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)

    body = await report(service, coordinator, city=NANJING)

    hourly = body["cities"][0]["hourly"]
    assert len(hourly) == 24
    assert hourly[0]["hour"] == "2021-07-25T00:00:00+08:00"
    assert hourly[9] == {
        "hour": "2021-07-25T09:00:00+08:00",
        "received": 3,
        "answered": 2,
        "abandoned": 1,
        "answered_by_helpers": 1,
        "connection_rate": pytest.approx(2 / 3),
        "asa_s": pytest.approx(20),
        "service_level": pytest.approx(1 / 2),
        "aht_s": pytest.approx(270),
    }
    assert (hourly[10]["received"], hourly[10]["service_level"]) == (2, pytest.approx(1 / 2))
    assert (hourly[11]["received"], hourly[11]["asa_s"], hourly[11]["aht_s"]) == (2, 40, None)
    assert (hourly[23]["received"], hourly[23]["asa_s"], hourly[23]["service_level"]) == (
        1,
        pytest.approx(20),
        1.0,
    )
    assert sum(hour["received"] for hour in hourly) == 8
    quiet = hourly[3]
    assert (quiet["received"], quiet["connection_rate"], quiet["asa_s"]) == (0, None, None)

    before = by_code(await report(service, coordinator, date="2021-07-24"))[NANJING]
    assert (before["received"], before["answered"], before["asa_s"]) == (1, 1, 35)
    assert before["hourly"][23]["received"] == 1
    after = by_code(await report(service, coordinator, date="2021-07-26"))[NANJING]
    assert (after["received"], after["wait_p90_s"]) == (1, 1)


async def check_province_totals(service: LiveService, surge_ids: list[int]) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)

    body = await report(service, coordinator)

    assert body["scope"] == "province"
    assert len(body["cities"]) == 13
    province = body["province"]
    assert (province["code"], province["name"]) == (None, "全省")
    assert (province["received"], province["answered"], province["abandoned"]) == (10, 7, 2)
    assert province["asa_s"] == pytest.approx((105 + 15 + 2) / 7)
    assert province["wait_p90_s"] == pytest.approx(40)  # rank 7 of 2, 5, 10, 15, 20, 30, 40
    assert province["service_level"] == pytest.approx(5 / 8)
    assert province["aht_s"] == pytest.approx((300 + 240 + 200 + 600 + 600 + 120) / 6)
    assert province["answered_by_helpers"] == province["answered_for_others"] == 4
    assert province["agents_active"] == province["seats_active"] == 5
    assert province["seats"] == sum(city["seats"] for city in body["cities"])
    assert province["staffing"] is None
    assert sum(hour["received"] for hour in province["hourly"]) == 10
    assert {(h["host"], h["code"]) for h in province["helpers"]} == {
        (NANJING, SUZHOU), (NANJING, WUXI), (NANJING, CHANGZHOU), (YANGZHOU, SUZHOU),
    }  # fmt: skip
    definitions = body["metadata"]["definitions"]
    assert set(definitions) == {"summary", "helpers", "hourly", "staffing"}
    figures = {key for key, value in province.items() if not isinstance(value, list)}
    assert set(definitions["summary"]) >= figures - {"name_en", "staffing"}
    assert "answered ÷ received" in definitions["summary"]["connection_rate"]["definition"]
    assert body["metadata"]["service_level_s"] == 20


async def check_staffing_advice(service: LiveService, surge_ids: list[int]) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)

    staffing = by_code(await report(service, coordinator))[NANJING]["staffing"]

    # Two abandonments; waits 105 s (answered) + 3 + 60 s (abandoned): patience 168 / 2 = 84 s.
    assert staffing["method"] == "erlang_a"
    assert staffing["patience_s"] == pytest.approx(84)
    assert staffing["aht_s"] == pytest.approx(335)
    assert staffing["for_date"] == "2021-07-26"
    hours = staffing["hours"]
    assert hours[9]["hour"] == "2021-07-26T09:00:00+08:00"
    forecast = [hour["forecast_calls"] for hour in hours]
    assert forecast[9:12] == [3, 2, 2]
    assert forecast[23] == 1
    assert sum(forecast) == 8
    # 3 calls of 335 s in an hour: one agent answers ~73% in 20 s (Erlang C), two ~97%.
    assert hours[9]["agents_needed"] == 2
    assert hours[23]["agents_needed"] == 1
    assert hours[3]["agents_needed"] == 0
    load = erlang.Load(rate_per_s=2 / 3600, aht_s=335)
    expected = erlang.agents_for_service_level(load, target=0.8, within_s=20, patience_s=84)
    assert hours[10]["agents_needed"] == expected
    assert all(hour["own_agents"] == 113 and hour["helper_seats"] == 0 for hour in hours)
    assert staffing["peak_agents_needed"] == 2
    assert staffing["agent_hours_needed"] == 2 + expected * 2 + 1

    quiet = by_code(await report(service, coordinator))[NANTONG]["staffing"]
    assert (quiet["method"], quiet["peak_agents_needed"], quiet["aht_s"]) == ("erlang_c", 0, 300)


async def check_a_day_with_no_calls(service: LiveService, surge_ids: list[int]) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)

    body = await report(service, coordinator, date="2021-07-01")

    for row in [*body["cities"], body["province"]]:
        assert row["received"] == row["answered"] == row["abandoned"] == 0
        assert row["connection_rate"] is row["asa_s"] is row["wait_p90_s"] is None
        assert row["service_level"] is row["satisfaction_rate"] is None
        assert len(row["hourly"]) == 24
    assert body["cities"][0]["staffing"]["agent_hours_needed"] == 0


async def check_csv_columns_and_chinese(service: LiveService, surge_ids: list[int]) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)

    response = await service.http.get(
        "/api/v1/reports/daily",
        params={"date": DAY, "format": "csv"},
        headers=service.auth(coordinator),
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "surge-daily-2021-07-25-province-summary.csv" in response.headers["content-disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel looks for
    table = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    header = table[0]
    assert header[:5] == ["城市代码", "城市", "呼入量", "接通量", "放弃量"]
    assert {"接通率", "满意率", "援助接通占比"} <= set(header)
    assert len(table) == 1 + 1 + 13  # header, province, 13 cities
    rows = {line[0]: dict(zip(header, line, strict=True)) for line in table[1:]}
    assert rows["province"]["城市"] == "全省"
    assert rows[NANJING]["城市"] == "南京"
    assert rows[NANJING]["呼入量"] == "8"
    assert float(rows[NANJING]["接通率"]) == pytest.approx(0.625)
    assert rows[WUXI]["接通率"] == ""  # no calls: no rate

    english = await service.http.get(
        "/api/v1/reports/daily",
        params={"date": DAY, "format": "csv", "part": "helpers", "lang": "en", "city": NANJING},
        headers=service.auth(coordinator),
    )
    table = list(csv.reader(io.StringIO(english.content.decode("utf-8-sig"))))
    assert table[0][:5] == ["host", "host_name", "code", "name", "answered"]
    assert [line[2] for line in table[1:]] == [SUZHOU, WUXI, CHANGZHOU]
    assert table[1][1] == "南京"


async def check_xlsx_reads_back(service: LiveService, surge_ids: list[int]) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)

    response = await service.http.get(
        "/api/v1/reports/daily",
        params={"date": DAY, "format": "xlsx"},
        headers=service.auth(coordinator),
    )

    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["概要", "援助城市", "分时", "明日排班建议", "指标说明"]
    summary = list(book["概要"].iter_rows(values_only=True))
    header = summary[0]
    nanjing = dict(zip(header, next(r for r in summary if r[0] == NANJING), strict=True))
    assert (nanjing["城市"], nanjing["呼入量"], nanjing["接通量"]) == ("南京", 8, 5)
    assert nanjing["接通率"] == pytest.approx(0.625)
    assert book["概要"].cell(row=2, column=header.index("接通率") + 1).number_format == "0.0%"
    assert book["分时"].max_row == 1 + 24 * 14  # the province's hours, then each city's
    helpers = list(book["援助城市"].iter_rows(values_only=True))
    assert len(helpers) == 1 + 4
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        charts = [
            archive.read(name).decode("utf-8")
            for name in archive.namelist()
            if name.startswith("xl/charts/chart")
        ]
    assert len(charts) == 2
    assert any("分时呼入与接通" in chart for chart in charts)  # the hourly chart
    assert any("明日所需坐席" in chart for chart in charts)
    definitions = [row[1] for row in book["指标说明"].iter_rows(values_only=True)]
    assert "connection_rate" in definitions


async def check_stale_tickets(service: LiveService, surge_ids: list[int]) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)

    body = await report(service, coordinator)

    cities = by_code(body)
    assert [cities[code]["stale_tickets"] for code in (NANJING, YANGZHOU, SUZHOU, WUXI)] == [
        3, 1, 0, 0,
    ]  # fmt: skip
    assert body["province"]["stale_tickets"] == 4
    helpers = {row["code"]: row["stale_tickets"] for row in cities[NANJING]["helpers"]}
    assert helpers == {SUZHOU: 2, WUXI: 0, CHANGZHOU: 0}
    assert [row["stale_tickets"] for row in cities[YANGZHOU]["helpers"]] == [1]
    summary = await service.http.get(
        "/api/v1/reports/daily",
        params={"date": DAY, "format": "csv"},
        headers=service.auth(coordinator),
    )
    table = list(csv.reader(io.StringIO(summary.content.decode("utf-8-sig"))))
    rows = {line[0]: dict(zip(table[0], line, strict=True)) for line in table[1:]}
    assert (rows[NANJING]["口径过期工单量"], rows["province"]["口径过期工单量"]) == ("3", "4")
    english = await service.http.get(
        "/api/v1/reports/daily",
        params={"date": DAY, "format": "csv", "part": "helpers", "lang": "en", "city": NANJING},
        headers=service.auth(coordinator),
    )
    table = list(csv.reader(io.StringIO(english.content.decode("utf-8-sig"))))
    assert [(line[2], line[table[0].index("stale_tickets")]) for line in table[1:]] == [
        (SUZHOU, "2"), (WUXI, "0"), (CHANGZHOU, "0"),
    ]  # fmt: skip
    book = load_workbook(io.BytesIO((await service.http.get(
        "/api/v1/reports/daily", params={"date": DAY, "format": "xlsx"},
        headers=service.auth(coordinator),
    )).content))  # fmt: skip
    sheet = list(book["概要"].iter_rows(values_only=True))
    nanjing = dict(zip(sheet[0], next(r for r in sheet if r[0] == NANJING), strict=True))
    assert nanjing["口径过期工单量"] == 3
    # The same tickets, listed for the day by the scripts' stale view.
    listed = await service.http.get(
        f"/api/v1/cities/{NANJING}/scripts/stale",
        params={"date": DAY},
        headers=service.auth(coordinator),
    )
    tickets = listed.json()["tickets"]
    assert [(t["agent"], t["helper_city"], t["script_version"], t["script_version_at_accept"],
             t["script_version_at_complete"]) for t in tickets] == [
        ("nj1", None, 1, 1, 2), ("sz1", SUZHOU, 2, 1, 2), ("sz2", SUZHOU, None, 2, 3),
    ]  # fmt: skip


async def check_a_city_admins_report(service: LiveService, surge_ids: list[int]) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)

    body = await report(service, admin)  # a city admin gets its own city by default

    assert body["scope"] == NANJING
    assert [row["code"] for row in body["cities"]] == [NANJING]
    assert body["province"] is None
    assert math.isclose(body["cities"][0]["connection_rate"], 0.625)


async def check_who_may_read_which_report(service: LiveService, surge_ids: list[int]) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    agent = await service.add_user(Role.AGENT, NANJING)
    cti = await service.add_user(Role.CTI)

    def get(who: str, **params: Any) -> Any:
        return service.http.get(
            "/api/v1/reports/daily", params={"date": DAY, **params}, headers=service.auth(who)
        )

    error_of(await get(admin, city=SUZHOU), 403, "forbidden")
    error_of(await get(agent), 403, "forbidden")
    error_of(await get(cti), 403, "forbidden")
    unauthenticated = await service.http.get("/api/v1/reports/daily", params={"date": DAY})
    error_of(unauthenticated, 401, "unauthorized")


async def test_the_fixed_day_matches_the_hand_count(
    day_service: tuple[LiveService, list[int]],
) -> None:
    """One service and one data set for every figure and format (the checks only read)."""
    service, surge_ids = day_service
    for check in (
        check_the_host_citys_figures,
        check_each_helper_city_has_its_row,
        check_hours_and_midnight,
        check_province_totals,
        check_staffing_advice,
        check_a_day_with_no_calls,
        check_csv_columns_and_chinese,
        check_xlsx_reads_back,
        check_stale_tickets,
        check_a_city_admins_report,
        check_who_may_read_which_report,
    ):
        await check(service, surge_ids)


BAD_REQUESTS: list[tuple[dict[str, str], int, str]] = [
    ({}, 422, "invalid_request"),
    ({"date": "2021-02-30"}, 422, "invalid_request"),
    ({"date": "yesterday"}, 422, "invalid_request"),
    ({"date": "2999-01-01"}, 422, "invalid_request"),
    # Only YYYY-MM-DD: a date type alone would also take these as some day.
    ({"date": "20210725"}, 422, "invalid_request"),
    ({"date": "2021-W29-7"}, 422, "invalid_request"),
    ({"date": "1627142400"}, 422, "invalid_request"),
    ({"date": f"{DAY}T00:00:00"}, 422, "invalid_request"),
    # Before 1901 Shanghai was +08:05: year 1 would start before the calendar does.
    ({"date": "0001-01-01"}, 422, "invalid_request"),
    ({"date": "1969-12-31"}, 422, "invalid_request"),
    ({"date": DAY, "city": "999999"}, 422, "unknown_city"),
    ({"date": DAY, "city": "3201"}, 422, "invalid_request"),
    ({"date": DAY, "city": "３２０１００"}, 422, "invalid_request"),  # full-width digits
    ({"date": DAY, "format": "pdf"}, 422, "invalid_request"),
    ({"date": DAY, "format": "csv", "part": "everything"}, 422, "invalid_request"),
    ({"date": DAY, "format": "csv", "lang": "fr"}, 422, "invalid_request"),
]


async def test_bad_report_requests(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)

    for params, status, code in BAD_REQUESTS:
        response = await service.http.get(
            "/api/v1/reports/daily", params=params, headers=service.auth(coordinator)
        )
        error_of(response, status, code)

    refused = await service.http.get(
        "/api/v1/reports/daily", params={"date": "20210725"}, headers=service.auth(coordinator)
    )
    assert error_of(refused, 422, "invalid_request")["message"] == (
        "query.date: expected a day written YYYY-MM-DD, like 2021-07-25"
    )
    early = await service.http.get(
        "/api/v1/reports/daily", params={"date": "1969-12-31"}, headers=service.auth(coordinator)
    )
    assert error_of(early, 422, "invalid_request")["message"] == (
        "query.date: reports begin on 1970-01-01"
    )


async def test_todays_report_counts_calls_taken_through_the_service(service: LiveService) -> None:
    """End to end: calls posted, answered over the websocket, rated, then reported."""
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, SUZHOU)
    coordinator = await service.add_user(Role.COORDINATOR)
    answered = await service.answer_call(cti, agent, SUZHOU, category_code="0202")
    rated = await service.http.post(
        f"/api/v1/calls/{answered['id']}/feedback", json={"score": 5}, headers=service.auth(cti)
    )
    assert rated.status_code == 201
    waiting = await service.post_call(cti, SUZHOU)
    await service.http.post(f"/api/v1/calls/{waiting['id']}/abandon", headers=service.auth(cti))

    today = datetime.now(SHANGHAI).date().isoformat()
    suzhou = by_code(await report(service, coordinator, date=today))[SUZHOU]

    assert (suzhou["received"], suzhou["answered"], suzhou["abandoned"]) == (2, 1, 1)
    assert (suzhou["other"], suzhou["satisfied"], suzhou["agents_active"]) == (1, 1, 1)
    assert suzhou["aht_s"] >= 0


async def test_repeat_callers_are_counted_by_the_days_key_never_the_number(
    service: LiveService,
) -> None:
    """Nanjing: A, A, B, C, A (3 callers, 2 repeats); Wuxi: A, D (2, 0). The province: 7 calls
    from A, B, C, D (4 callers, 3 repeats: A calling Wuxi after Nanjing is a repeat there)."""
    cti = await service.add_user(Role.CTI)
    coordinator = await service.add_user(Role.COORDINATOR)
    a, b, c, d = "13900000001", "13900000002", "13900000003", "13900000004"
    for city, caller in [(NANJING, a), (NANJING, a), (NANJING, b), (NANJING, c), (NANJING, a),
                         (WUXI, a), (WUXI, d)]:  # fmt: skip
        await service.post_call(cti, city, caller=caller)

    today = datetime.now(SHANGHAI).date().isoformat()
    body = await report(service, coordinator, date=today)
    cities = by_code(body)

    nanjing, wuxi, province = cities[NANJING], cities[WUXI], body["province"]
    assert (nanjing["received"], nanjing["unique_callers"], nanjing["repeat_attempts"]) == (5, 3, 2)
    assert (wuxi["received"], wuxi["unique_callers"], wuxi["repeat_attempts"]) == (2, 2, 0)
    assert (province["unique_callers"], province["repeat_attempts"]) == (4, 3)
    assert cities[SUZHOU]["unique_callers"] == cities[SUZHOU]["repeat_attempts"] == 0
    csv_body = await service.http.get(
        "/api/v1/reports/daily",
        params={"date": today, "format": "csv"},
        headers=service.auth(coordinator),
    )
    rows = list(csv.DictReader(io.StringIO(csv_body.content.decode("utf-8-sig"))))
    by_city = {row["城市代码"]: row for row in rows}
    assert (by_city[NANJING]["来电人数"], by_city[NANJING]["重复呼入量"]) == ("3", "2")
    assert (by_city["province"]["来电人数"], by_city["province"]["重复呼入量"]) == ("4", "3")
    assert not any(number in csv_body.text + str(body) for number in (a, b, c, d))

    # The key on the call is HMAC-SHA256 under the day's salt (HMAC of the secret over the date).
    secret = service.settings.secret_key.get_secret_value().encode()
    salt = hmac.new(secret, f"surge.caller-day:{today}".encode(), hashlib.sha256).digest()
    expected = int.from_bytes(hmac.new(salt, a.encode(), hashlib.sha256).digest()[:8], "big",
                              signed=True)  # fmt: skip
    engine = create_engine(service.settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            keys = (await session.execute(select(Call.caller_key).where(Call.caller == a))).all()
    finally:
        await engine.dispose()
    assert [key for (key,) in keys] == [expected] * 4


def decimals(value: float) -> int:
    """How many decimal places a float's shortest representation has (`0.807`: 3)."""
    exponent = Decimal(repr(value)).as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def figures(value: Any, key: str = "") -> Iterator[tuple[str, float]]:
    """Every float in a JSON document, with its key."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield from figures(item, name)
    elif isinstance(value, list):
        for item in value:
            yield from figures(item, key)
    elif isinstance(value, float):
        yield key, value


def places(key: str) -> int:
    """The decimal places docs/REPORT.md gives a figure: hours 9, rates and seconds 6."""
    return 9 if "hours" in key else 6


@pytest.mark.parametrize(
    ("value", "places"),
    [(0.807, 3), (0.806999921798706, 15), (0.1 + 0.2, 17), (1e-06, 6), (5.0, 1), (240.0, 1)],
)
def test_decimals_counts_what_a_reader_sees(value: float, places: int) -> None:
    assert decimals(value) == places


async def test_figures_of_calls_taken_through_the_service_carry_no_float_noise(
    service: LiveService,
) -> None:
    """Real times (microseconds apart, seconds since 1970 subtracted in the database) and sums
    of them: no figure in any format has more than its documented decimal places (float noise
    such as 1.3370001316070557 for 1.337 s, or 0.30000000000000004)."""
    cti = await service.add_user(Role.CTI)
    coordinator = await service.add_user(Role.COORDINATOR)
    agents = [await service.add_user(Role.AGENT, city) for city in (NANJING, SUZHOU)]
    started = await service.http.post(
        "/api/v1/surges",
        json={"host_city": NANJING, "waves": [{"cities": [SUZHOU], "seats_per_city": 1}]},
        headers=service.auth(coordinator),
    )
    assert started.status_code == 201, started.text
    surge_id = started.json()["id"]
    activated = await service.http.post(
        f"/api/v1/surges/{surge_id}/waves/1/activate", headers=service.auth(coordinator)
    )
    assert activated.status_code == 200, activated.text
    pace = iter([0.013, 0.071, 0.029, 0.113, 0.047, 0.089, 0.031, 0.067] * 4)

    async def take(agent: str, calls: int) -> None:
        async with service.console(agent) as console:
            await console.send(type="status", state="available")
            while calls:
                frame = await console.recv(10)
                if frame["type"] == "offer":
                    await asyncio.sleep(next(pace))
                    await console.send(type="accept", offer_id=frame["offer_id"])
                elif frame["type"] == "call.connected":
                    await asyncio.sleep(next(pace))
                    await console.send(type="complete", call_id=frame["call_id"],
                                       disposition="answered", category_code="0101")  # fmt: skip
                elif frame["type"] == "call.completed":
                    calls -= 1
                    await console.send(type="status", state="available")

    takers = [asyncio.create_task(take(agent, 3)) for agent in agents]
    posted = [await service.post_call(cti, NANJING, caller=f"1390000000{i}") for i in range(8)]
    await asyncio.wait_for(asyncio.gather(*takers), 30)
    for call, score in zip(posted, [5, 4, 1, 5, 3, 2, 5, 4], strict=True):
        state = await service.http.get(f"/api/v1/calls/{call['id']}", headers=service.auth(cti))
        if state.json()["status"] == "completed":
            await service.http.post(f"/api/v1/calls/{call['id']}/feedback",
                                    json={"score": score}, headers=service.auth(cti))  # fmt: skip
        else:
            await service.http.post(f"/api/v1/calls/{call['id']}/abandon",
                                    headers=service.auth(cti))  # fmt: skip
    today = datetime.now(SHANGHAI).date().isoformat()

    async def read(path: str, **params: str) -> bytes:
        response = await service.http.get(path, params=params, headers=service.auth(coordinator))
        assert response.status_code == 200, (path, params, response.text)
        return response.content

    daily, ledger = "/api/v1/reports/daily", "/api/v1/reports/ledger"
    documents = {
        "daily": json.loads(await read(daily, date=today)),
        "ledger": json.loads(await read(ledger, **{"from": today, "to": today})),
    }
    assert documents["ledger"]["pairs"], "a helper answered: the ledger has a pair"
    found = [figure for document in documents.values() for figure in figures(document)]
    assert len(found) > 30
    assert [(key, value) for key, value in found if decimals(value) > places(key)] == []
    cells: list[Any] = []
    for path, parts, when in (
        (daily, Part, {"date": today}),
        (ledger, LedgerPart, {"from": today, "to": today}),
    ):
        for part in parts:
            text = (await read(path, **when, format="csv", part=part.value)).decode("utf-8-sig")
            cells += [cell for row in csv.reader(io.StringIO(text)) for cell in row]
        book = load_workbook(io.BytesIO(await read(path, **when, format="xlsx")))
        cells += [cell for sheet in book for row in sheet.iter_rows(values_only=True)
                  for cell in row]  # fmt: skip
    numbers = [float(cell) for cell in cells if re.fullmatch(r"-?\d+\.\d+", str(cell))]
    assert numbers
    assert [value for value in numbers if decimals(value) > 4] == []  # CSV and XLSX: 4 at most
