"""The reciprocity ledger over HTTP, against seat-hours computed by hand from a small fixed day.

2021-07-25 (Asia/Shanghai): Nanjing hosts a surge from 08:00 to 12:00, Suzhou in wave 1 (from
08:00), Wuxi in wave 2 (from 09:30). Calls and their histories are written straight into the
database with exact times, as the call lifecycle records them.

Seat time, by hand (an agent holds a call from each offer to the call's next event, and a
completed call adds its wrap-up):

- Nanjing 09:00, sz1: offered 09:00:10, connected 09:00:20, completed 09:10:20, wrapped up
  09:11:20: 10 + 600 + 60 = 670 s for Suzhou.
- Nanjing 09:40: offered to wx1 09:40:00, declined 09:40:30 (30 s for Wuxi); offered to sz1
  09:41:00, connected 09:41:10, completed 10:01:10, no wrap-up: 10 + 1200 = 1210 s for Suzhou.
- Nanjing 10:00: offered to wx1 10:00:05, connected 10:00:15, transferred 10:30:15: 10 + 1800 =
  1810 s for Wuxi; then nj1 (Nanjing's own) answers it: Wuxi did not end it, nj1 did.
- Wuxi 11:00, nj1: offered 11:00:00, connected 11:00:10, completed 11:06:10, wrapped up
  11:06:40: 10 + 360 + 30 = 400 s that Nanjing lent Wuxi back.
- Nanjing 2021-07-26 00:30, sz1: 600 s of talk, outside a one-day range.

So Suzhou -> Nanjing 1880 s (2 calls answered), Wuxi -> Nanjing 1840 s (0 answered: the call it
took was transferred and answered by nj1), Nanjing -> Wuxi 400 s (1 call).

Own service level while lending (own calls received while a helper of an activated wave, to the
surge's end; answered within 20 s / answered or abandoned after 5 s): Suzhou 08:30 in 10 s (in
time), 09:00 in 30 s (late), 10:00 abandoned after 3 s (not judged), 11:00 abandoned after 60 s
(late), 07:00 and 13:00 outside the surge: 1 of 3. Wuxi: 09:00 before its wave, 10:00 in 5 s,
the 11:00 call above in 10 s: 2 of 2.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook

from surge.auth.models import Role, User
from surge.calls.models import Call, CallEvent
from surge.db import create_engine, create_sessionmaker
from surge.seats.models import Agent
from surge.settings import Settings
from surge.surges.models import Surge, SurgeWave, SurgeWaveCity
from tests.api.test_bad_input import error_of
from tests.api.test_reports import NANJING, SUZHOU, WUXI, at
from tests.helpers import LiveService

S = timedelta(seconds=1)


def served(
    city: str,
    received: datetime,
    steps: list[tuple[float, str, str | None]],
    *,
    wrap_up_s: float | None = None,
) -> tuple[Call, list[CallEvent]]:
    """A call and its history: `steps` are (seconds after receipt, new status, agent name)."""
    row = Call(city_code=city, caller="13812345678", channel="phone", priority=0,
               received_at=received, status="queued")  # fmt: skip
    events = [CallEvent(at=received, from_status=None, to_status="queued")]
    before = "queued"
    for after_s, status, agent in steps:
        moment = received + after_s * S
        events.append(CallEvent(at=moment, from_status=before, to_status=status,
                                agent_id=AGENTS[agent] if agent else None))  # fmt: skip
        before = status
        if status == "connected":
            row.agent_id, row.connected_at = AGENTS[agent] if agent else None, moment
        if status == "completed":
            row.ended_at, row.disposition = moment, "answered"
            if wrap_up_s is not None:
                row.wrapped_up_at = moment + wrap_up_s * S
    row.status = before
    return row, events


def own(city: str, received: datetime, *, waited: float | None = None,
        abandoned_after: float | None = None) -> tuple[Call, list[CallEvent]]:  # fmt: skip
    """A lender's own call, answered after `waited` or abandoned (no helper in it)."""
    row = Call(city_code=city, caller="13812345678", channel="phone", priority=0,
               received_at=received, status="queued")  # fmt: skip
    if waited is not None:
        row.status, row.connected_at = "completed", received + waited * S
        row.ended_at = row.connected_at + 60 * S
    if abandoned_after is not None:
        row.status, row.ended_at = "abandoned", received + abandoned_after * S
    return row, []


AGENTS: dict[str, int] = {}


def the_day() -> list[tuple[Call, list[CallEvent]]]:
    return [
        served(NANJING, at(9, 0), [(10, "offered", "sz1"), (20, "connected", "sz1"),
                                   (620, "completed", "sz1")], wrap_up_s=60),
        served(NANJING, at(9, 40), [(0, "offered", "wx1"), (30, "queued", "wx1"),
                                    (60, "offered", "sz1"), (70, "connected", "sz1"),
                                    (1270, "completed", "sz1")]),
        served(NANJING, at(10, 0), [(5, "offered", "wx1"), (15, "connected", "wx1"),
                                    (1815, "queued", "wx1"), (1875, "offered", "nj1"),
                                    (1880, "connected", "nj1"), (2480, "completed", "nj1")]),
        served(WUXI, at(11, 0), [(0, "offered", "nj1"), (10, "connected", "nj1"),
                                 (370, "completed", "nj1")], wrap_up_s=30),
        served(NANJING, at(0, 30, day=26), [(0, "offered", "sz1"), (0, "connected", "sz1"),
                                            (600, "completed", "sz1")]),
        own(SUZHOU, at(8, 30), waited=10),
        own(SUZHOU, at(9, 0), waited=30),
        own(SUZHOU, at(10, 0), abandoned_after=3),
        own(SUZHOU, at(11, 0), abandoned_after=60),
        own(SUZHOU, at(7, 0), waited=5),
        own(SUZHOU, at(13, 0), waited=5),
        own(WUXI, at(9, 0), waited=50),
        own(WUXI, at(10, 0), waited=5),
    ]  # fmt: skip


async def load(settings: Settings) -> None:
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            for name, city in [("sz1", SUZHOU), ("wx1", WUXI), ("nj1", NANJING)]:
                user = User(username=name, password_hash="-", role=Role.AGENT, city_code=city)
                session.add(user)
                await session.flush()
                agent = Agent(user_id=user.id, city_code=city, name=name, endpoint="-")
                session.add(agent)
                await session.flush()
                AGENTS[name] = agent.id
            surge = Surge(host_city=NANJING, status="ended", overflow_after_s=0,
                          created_by="coordinator", created_at=at(8, 0),
                          ended_at=at(12, 0))  # fmt: skip
            for number, (city, activated) in enumerate(
                [(SUZHOU, at(8, 0)), (WUXI, at(9, 30))], start=1
            ):
                wave = SurgeWave(number=number, seats_per_city=5, activated_at=activated)
                wave.cities = [SurgeWaveCity(city_code=city)]
                surge.waves.append(wave)
            session.add(surge)
            for row, events in the_day():
                session.add(row)
                await session.flush()
                for event in events:
                    event.call_id = row.id
                session.add_all(events)
    finally:
        await engine.dispose()


async def get(service: LiveService, who: str, **params: Any) -> Any:
    return await service.http.get(
        "/api/v1/reports/ledger", params=params, headers=service.auth(who)
    )


async def ledger(service: LiveService, who: str, **params: Any) -> dict[str, Any]:
    response = await get(service, who, **{"from": "2021-07-25", "to": "2021-07-25", **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def pairs(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["lender"], row["host"]): row for row in body["pairs"]}


async def test_the_ledger_matches_the_hand_count(service: LiveService) -> None:
    await load(service.settings)
    coordinator = await service.add_user(Role.COORDINATOR)

    body = await ledger(service, coordinator)

    assert (body["from"], body["to"], body["scope"]) == ("2021-07-25", "2021-07-25", "province")
    by_pair = pairs(body)
    assert list(by_pair) == [(NANJING, WUXI), (WUXI, NANJING), (SUZHOU, NANJING)]
    suzhou = by_pair[(SUZHOU, NANJING)]
    assert suzhou["seat_hours_lent"] == pytest.approx(1880 / 3600)
    assert suzhou["seat_hours_received"] == 0
    assert suzhou["balance_hours"] == pytest.approx(1880 / 3600)
    assert (suzhou["calls_answered"], suzhou["calls_answered_back"]) == (2, 0)
    assert suzhou["lender_calls_while_lending"] == 3
    assert suzhou["lender_service_level_while_lending"] == pytest.approx(1 / 3)
    assert (suzhou["lender_name"], suzhou["host_name"]) == ("苏州", "南京")
    wuxi = by_pair[(WUXI, NANJING)]
    assert wuxi["seat_hours_lent"] == pytest.approx(1840 / 3600)
    assert wuxi["seat_hours_received"] == pytest.approx(400 / 3600)
    assert wuxi["balance_hours"] == pytest.approx(1440 / 3600)
    assert (wuxi["calls_answered"], wuxi["calls_answered_back"]) == (0, 1)
    assert wuxi["lender_calls_while_lending"] == 2
    assert wuxi["lender_service_level_while_lending"] == pytest.approx(1.0)
    back = by_pair[(NANJING, WUXI)]
    assert back["seat_hours_lent"] == pytest.approx(400 / 3600)
    assert (back["calls_answered"], back["lender_calls_while_lending"]) == (1, 0)
    assert back["lender_service_level_while_lending"] is None  # Nanjing helped no Wuxi surge
    cities = {row["code"]: row for row in body["cities"]}
    assert cities[NANJING]["seat_hours_lent"] == pytest.approx(400 / 3600)
    assert cities[NANJING]["seat_hours_received"] == pytest.approx(3720 / 3600)
    assert cities[NANJING]["balance_hours"] == pytest.approx(-3320 / 3600)
    nanjing = cities[NANJING]
    assert (nanjing["calls_answered_for_others"], nanjing["calls_answered_by_others"]) == (1, 2)
    assert cities[SUZHOU]["seat_hours_lent"] == pytest.approx(1880 / 3600)
    assert set(body["metadata"]["definitions"]) == {"pairs", "cities"}

    two_days = await ledger(service, coordinator, to="2021-07-26")
    assert pairs(two_days)[(SUZHOU, NANJING)]["seat_hours_lent"] == pytest.approx(2480 / 3600)
    assert pairs(two_days)[(SUZHOU, NANJING)]["calls_answered"] == 3

    # A city admin sees the pairs its city is in, and only its own balance.
    suzhou_admin = await service.add_user(Role.CITY_ADMIN, SUZHOU)
    mine = await ledger(service, suzhou_admin)
    assert list(pairs(mine)) == [(SUZHOU, NANJING)]
    assert [row["code"] for row in mine["cities"]] == [SUZHOU]
    nanjing_admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    assert len((await ledger(service, nanjing_admin))["pairs"]) == 3
    error_of(
        await get(service, suzhou_admin, **{"from": "2021-07-25", "to": "2021-07-25",
                                            "city": NANJING}),
        403, "forbidden",
    )  # fmt: skip
    coordinator_for_wuxi = await ledger(service, coordinator, city=WUXI)
    assert list(pairs(coordinator_for_wuxi)) == [(NANJING, WUXI), (WUXI, NANJING)]

    # CSV (UTF-8 with BOM, Chinese headers or keys) and XLSX read back the same figures.
    csv_response = await get(service, coordinator, **{"from": "2021-07-25", "to": "2021-07-25",
                                                       "format": "csv"})  # fmt: skip
    assert csv_response.status_code == 200
    assert csv_response.content.startswith(b"\xef\xbb\xbf")
    assert (
        "surge-ledger-2021-07-25-2021-07-25-province-pairs.csv"
        in (csv_response.headers["content-disposition"])
    )
    table = list(csv.DictReader(io.StringIO(csv_response.content.decode("utf-8-sig"))))
    row = next(r for r in table if r["支援城市代码"] == SUZHOU)
    assert (row["受援城市代码"], row["出借坐席时数"], row["代接量"]) == (NANJING, "0.5", "2")
    assert row["出借期间本市服务水平"] == "0.3333"
    cities_csv = await get(service, coordinator, **{"from": "2021-07-25", "to": "2021-07-25",
                                                    "format": "csv", "part": "cities",
                                                    "lang": "en"})  # fmt: skip
    text = cities_csv.content.decode("utf-8-sig")
    by_city = {r["code"]: r for r in csv.DictReader(io.StringIO(text))}
    assert by_city[NANJING]["seat_hours_received"] == "1.0"
    assert by_city[NANJING]["balance_hours"] == "-0.9"
    xlsx = await get(service, coordinator, **{"from": "2021-07-25", "to": "2021-07-25",
                                              "format": "xlsx"})  # fmt: skip
    assert xlsx.status_code == 200
    book = load_workbook(io.BytesIO(xlsx.content))
    assert book.sheetnames == ["城市互助", "城市收支", "指标说明"]
    sheet = list(book["城市互助"].iter_rows(values_only=True))
    header = list(sheet[0])
    suzhou_row = next(r for r in sheet[1:] if r[header.index("支援城市代码")] == SUZHOU)
    assert suzhou_row[header.index("出借坐席时数")] == 0.5
    assert suzhou_row[header.index("出借期间本市服务水平")] == pytest.approx(0.3333)
    share = header.index("出借期间本市服务水平") + 1
    assert book["城市互助"].cell(row=2, column=share).number_format == "0.0%"


LEDGER_BAD: list[tuple[dict[str, str], int, str]] = [
    ({}, 422, "invalid_request"),
    ({"from": "2021-07-25"}, 422, "invalid_request"),
    ({"from": "2021-07-26", "to": "2021-07-25"}, 422, "invalid_request"),  # from after to
    ({"from": "2021-02-30", "to": "2021-03-01"}, 422, "invalid_request"),
    ({"from": "20210701", "to": "2021-07-25"}, 422, "invalid_request"),
    ({"from": "2021-07-01", "to": "2999-01-01"}, 422, "invalid_request"),
    ({"from": "1969-12-31", "to": "1970-01-02"}, 422, "invalid_request"),
    ({"from": "2021-01-01", "to": "2021-04-03"}, 422, "invalid_request"),  # 92 days + 1
    ({"from": "2021-07-25", "to": "2021-07-25", "city": "999999"}, 422, "unknown_city"),
    ({"from": "2021-07-25", "to": "2021-07-25", "format": "pdf"}, 422, "invalid_request"),
    ({"from": "2021-07-25", "to": "2021-07-25", "format": "csv", "part": "hourly"}, 422,
     "invalid_request"),
]  # fmt: skip


async def test_bad_ledger_requests(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    for params, status, code in LEDGER_BAD:
        error_of(await get(service, coordinator, **params), status, code)
    too_long = await get(service, coordinator, **{"from": "2021-01-01", "to": "2021-04-03"})
    assert "at most 92" in too_long.json()["error"]["message"]
    quarter = await get(service, coordinator, **{"from": "2021-01-01", "to": "2021-04-02"})
    assert quarter.status_code == 200  # 92 days is the bound, included
    agent = await service.add_user(Role.AGENT, SUZHOU)
    cti = await service.add_user(Role.CTI)
    for who in (agent, cti):
        error_of(await get(service, who, **{"from": "2021-07-25", "to": "2021-07-25"}), 403,
                 "forbidden")  # fmt: skip
