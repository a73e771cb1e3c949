"""The ticket list, GET /calls, over HTTP on both backends: scope, filters, paging, CSV, bad input.

A small known day (2021-07-25 in Asia/Shanghai) is written straight into the database with exact
times, the way the call lifecycle records them: Nanjing hosts, Suzhou's and Wuxi's agents help,
Suzhou also helps Yangzhou. Paging while calls arrive posts real calls through POST /calls.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from surge.auth.models import Role, User
from surge.calls.models import Call
from surge.db import create_engine, create_sessionmaker
from surge.seats.models import Agent
from surge.settings import Settings
from tests.api.test_bad_input import error_of
from tests.conftest import Backend
from tests.helpers import LiveService, run_service

SHANGHAI = ZoneInfo("Asia/Shanghai")
NANJING, WUXI, SUZHOU, YANGZHOU = "320100", "320200", "320500", "321000"


def at(hour: int, minute: int = 0, *, day: int = 25) -> datetime:
    """A local time in July 2021, as the UTC the database stores."""
    return datetime(2021, 7, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


@dataclass(frozen=True)
class Ticket:
    """One call of the day; `seat` is the agent who handled it (or was offered it)."""

    name: str
    city: str
    received: datetime
    caller: str
    status: str = "completed"
    seat: str | None = None
    connected: bool = True
    category: str | None = None
    summary: str | None = None


SEATS = {"nj1": NANJING, "sz1": SUZHOU, "wx1": WUXI}
DAY = [
    Ticket("nj-own", NANJING, at(9), "13800000001", seat="nj1", category="0101",
           summary="核酸检测点在哪里"),
    Ticket("nj-by-suzhou", NANJING, at(9, 10), "13800000002", seat="sz1", category="0202",
           summary="Bus ROUTE 5 detour"),
    Ticket("nj-abandoned", NANJING, at(9, 20), "13800000003", status="abandoned",
           connected=False),
    Ticket("nj-by-wuxi", NANJING, at(10), "13800000004", seat="wx1", category="0102",
           summary="健康码变黄"),
    # Offered to a Suzhou agent, then the caller hung up: Suzhou never served it.
    Ticket("nj-offered-to-suzhou", NANJING, at(10, 30), "13800000005", status="abandoned",
           seat="sz1", connected=False),
    Ticket("sz-own", SUZHOU, at(11), "13900000006", seat="sz1", category="0201",
           summary="停车收费"),
    Ticket("wx-own", WUXI, at(12), "13900000007", seat="wx1", category="0101"),
    Ticket("yz-by-suzhou", YANGZHOU, at(14), "13900000008", seat="sz1", category="0101",
           summary="疫苗接种"),
    Ticket("nj-day-before", NANJING, at(23, 59, day=24), "13800000009", seat="nj1"),
    Ticket("nj-waiting", NANJING, at(23, 30), "13800000010", status="queued", connected=False),
]  # fmt: skip


async def write_the_day(settings: Settings) -> dict[str, int]:
    """Agents and calls of the day in the database (cities seeded); the calls' ids by name."""
    engine = create_engine(settings.database_url)
    ids: dict[str, int] = {}
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            agents: dict[str, int] = {}
            for seat, city in SEATS.items():
                user = User(username=seat, password_hash="-", role=Role.AGENT, city_code=city)
                session.add(user)
                await session.flush()
                agent = Agent(user_id=user.id, city_code=city, name=seat, endpoint="-")
                session.add(agent)
                await session.flush()
                agents[seat] = agent.id
            for ticket in DAY:
                row = Call(
                    city_code=ticket.city,
                    caller=ticket.caller,
                    channel="phone",
                    priority=0,
                    status=ticket.status,
                    received_at=ticket.received,
                    agent_id=agents[ticket.seat] if ticket.seat else None,
                    category_code=ticket.category,
                    summary=ticket.summary,
                )
                if ticket.connected:
                    row.connected_at = ticket.received + timedelta(seconds=10)
                if ticket.status != "queued":
                    row.ended_at = ticket.received + timedelta(seconds=200)
                    row.disposition = "answered" if ticket.connected else None
                session.add(row)
                await session.flush()
                ids[ticket.name] = row.id
        return ids
    finally:
        await engine.dispose()


@pytest.fixture
async def day(backend: Backend) -> AsyncIterator[tuple[LiveService, dict[str, int]]]:
    async with run_service(backend.settings()) as live:
        yield live, await write_the_day(live.settings)


async def tickets(service: LiveService, who: str, **params: Any) -> dict[str, Any]:
    response = await service.http.get("/api/v1/calls", params=params, headers=service.auth(who))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"items", "next_cursor"}
    return body


def names(body: dict[str, Any], ids: dict[str, int]) -> list[str]:
    by_id = {v: k for k, v in ids.items()}
    return [by_id[item["id"]] for item in body["items"]]


NEWEST_FIRST = [
    "nj-waiting", "yz-by-suzhou", "wx-own", "sz-own", "nj-offered-to-suzhou", "nj-by-wuxi",
    "nj-abandoned", "nj-by-suzhou", "nj-own", "nj-day-before",
]  # fmt: skip


async def test_the_coordinator_sees_every_call_newest_first_with_who_served_it(
    day: tuple[LiveService, dict[str, int]],
) -> None:
    service, ids = day
    coordinator = await service.add_user(Role.COORDINATOR)

    body = await tickets(service, coordinator)

    assert names(body, ids) == NEWEST_FIRST
    assert body["next_cursor"] is None
    items = {item["id"]: item for item in body["items"]}
    by_suzhou = items[ids["nj-by-suzhou"]]
    assert by_suzhou["city"] == NANJING
    assert by_suzhou["served_by"] == SUZHOU
    assert by_suzhou["caller"] == "13800000002"  # the province sees every number
    assert by_suzhou["summary"] == "Bus ROUTE 5 detour"
    assert by_suzhou["category_code"] == "0202"
    assert "history" not in by_suzhou
    assert items[ids["nj-offered-to-suzhou"]]["served_by"] is None  # offered is not served
    assert items[ids["nj-abandoned"]]["served_by"] is None
    assert items[ids["nj-own"]]["served_by"] == NANJING


async def test_a_city_admin_sees_its_calls_and_masked_the_calls_its_agents_served(
    day: tuple[LiveService, dict[str, int]],
) -> None:
    service, ids = day
    suzhou = await service.add_user(Role.CITY_ADMIN, SUZHOU)
    nanjing = await service.add_user(Role.CITY_ADMIN, NANJING)

    seen = await tickets(service, suzhou)

    assert names(seen, ids) == ["yz-by-suzhou", "sz-own", "nj-by-suzhou"]
    callers = {item["id"]: (item["caller"], item["served_by"]) for item in seen["items"]}
    assert callers[ids["sz-own"]] == ("13900000006", SUZHOU)
    assert callers[ids["nj-by-suzhou"]] == ("138****0002", SUZHOU)  # another host's caller
    assert callers[ids["yz-by-suzhou"]] == ("139****0008", SUZHOU)

    host = await tickets(service, nanjing)
    assert names(host, ids) == [
        "nj-waiting", "nj-offered-to-suzhou", "nj-by-wuxi", "nj-abandoned", "nj-by-suzhou",
        "nj-own", "nj-day-before",
    ]  # fmt: skip
    assert {item["served_by"] for item in host["items"]} == {NANJING, SUZHOU, WUXI, None}
    assert all("*" not in item["caller"] for item in host["items"])

    # Every city's admin: its own calls in full, others' only where its agents served, masked.
    for city in (NANJING, WUXI, SUZHOU, YANGZHOU, "320300"):
        admin = await service.add_user(Role.CITY_ADMIN, city)
        for item in (await tickets(service, admin))["items"]:
            if item["city"] != city:
                assert item["served_by"] == city
                assert "****" in item["caller"]
            else:
                assert "*" not in item["caller"]

    # The filters narrow the scope, never widen it.
    assert names(await tickets(service, suzhou, city=NANJING), ids) == ["nj-by-suzhou"]
    assert names(await tickets(service, suzhou, city=WUXI), ids) == []
    assert names(await tickets(service, nanjing, city=SUZHOU), ids) == []
    assert names(await tickets(service, nanjing, served_by=SUZHOU), ids) == ["nj-by-suzhou"]


async def test_other_roles_follow_the_call_reads_rules(
    day: tuple[LiveService, dict[str, int]],
) -> None:
    service, ids = day
    cti = await service.add_user(Role.CTI, WUXI)
    agent = await service.add_user(Role.AGENT, NANJING)

    assert names(await tickets(service, cti), ids) == ["wx-own"]
    error_of(await service.http.get("/api/v1/calls", headers=service.auth(agent)), 403, "forbidden")
    error_of(await service.http.get("/api/v1/calls"), 401, "unauthorized")


async def test_filters(day: tuple[LiveService, dict[str, int]]) -> None:
    service, ids = day
    coordinator = await service.add_user(Role.COORDINATOR)

    async def listed(**params: Any) -> list[str]:
        return names(await tickets(service, coordinator, **params), ids)

    assert await listed(city=NANJING, status="abandoned") == [
        "nj-offered-to-suzhou",
        "nj-abandoned",
    ]
    assert await listed(served_by=SUZHOU) == ["yz-by-suzhou", "sz-own", "nj-by-suzhou"]
    assert await listed(served_by=WUXI, city=NANJING) == ["nj-by-wuxi"]
    assert await listed(category="0101") == ["yz-by-suzhou", "wx-own", "nj-own"]
    assert await listed(category="01") == ["yz-by-suzhou", "wx-own", "nj-by-wuxi", "nj-own"]
    # Dates are local days (Asia/Shanghai), `to` included; times carry their offset.
    assert await listed(**{"from": "2021-07-25", "to": "2021-07-25"}) == NEWEST_FIRST[:-1]
    assert await listed(**{"from": "2021-07-24", "to": "2021-07-24"}) == ["nj-day-before"]
    assert await listed(to="2021-07-24") == ["nj-day-before"]
    hours = {"from": "2021-07-25T11:00:00+08:00", "to": "2021-07-25T14:00:00+08:00"}
    assert await listed(**hours) == ["wx-own", "sz-own"]
    assert await listed(**{"from": "2021-07-25T03:00:00Z"}) == NEWEST_FIRST[:4]
    # Free text: the summary, the category's name, the number.
    assert await listed(q="核酸") == ["yz-by-suzhou", "wx-own", "nj-own"]  # 0101: 核酸检测咨询
    assert await listed(q="检测点") == ["nj-own"]
    assert await listed(q="route 5") == ["nj-by-suzhou"]
    assert await listed(q="疫苗") == ["yz-by-suzhou"]  # the summary
    assert await listed(q="健康码") == ["nj-by-wuxi"]  # 0102 is 隔离与健康码咨询
    assert await listed(q="交通") == ["sz-own", "nj-by-suzhou"]  # 0201, 0202: 交通出行
    assert await listed(q="1380000000") == [
        "nj-offered-to-suzhou", "nj-by-wuxi", "nj-abandoned", "nj-by-suzhou", "nj-own",
        "nj-day-before",
    ]  # fmt: skip
    assert await listed(q="100%_") == []  # wildcards are text
    assert await listed(q="9" * 30) == []  # a number beyond any id is only text
    assert await listed(q=str(ids["wx-own"])) == ["wx-own"]  # the ticket's id
    assert await listed(q="13900000006") == ["sz-own"]

    suzhou = await service.add_user(Role.CITY_ADMIN, SUZHOU)
    # A helper city's admin cannot find another host's caller by number.
    assert names(await tickets(service, suzhou, q="13800000002"), ids) == []
    assert names(await tickets(service, suzhou, q="route"), ids) == ["nj-by-suzhou"]


async def test_pages_follow_the_cursor(day: tuple[LiveService, dict[str, int]]) -> None:
    service, ids = day
    coordinator = await service.add_user(Role.COORDINATOR)

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        body = await tickets(service, coordinator, **params)
        assert len(body["items"]) <= 3
        seen += names(body, ids)
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == NEWEST_FIRST
    assert pages == 4


async def test_paging_while_calls_arrive_has_no_duplicates_and_no_gaps(
    service: LiveService,
) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    cti = await service.add_user(Role.CTI)
    before = [(await service.post_call(cti, NANJING, external_id=f"b{n}"))["id"] for n in range(9)]

    seen: list[int] = []
    cursor: str | None = None
    arrived: list[int] = []
    while True:
        params: dict[str, Any] = {"limit": 2, "city": NANJING}
        if cursor:
            params["cursor"] = cursor
        body = await tickets(service, coordinator, **params)
        seen += [item["id"] for item in body["items"]]
        for n in range(2):  # new calls keep coming between pages
            call = await service.post_call(cti, NANJING, external_id=f"a{len(arrived)}-{n}")
            arrived.append(call["id"])
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert seen == sorted(before, reverse=True)  # each once, none missing, newest first
    first = await tickets(service, coordinator, city=NANJING, limit=500)
    assert [item["id"] for item in first["items"]][: len(arrived)] == sorted(arrived, reverse=True)


async def test_calls_received_at_the_same_instant_page_by_id(backend: Backend) -> None:
    async with run_service(backend.settings()) as service:
        instant = at(9)
        engine = create_engine(service.settings.database_url)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                rows = [
                    Call(
                        city_code=NANJING,
                        caller="13812345678",
                        channel="phone",
                        status="queued",
                        received_at=instant,
                    )
                    for _ in range(5)
                ]
                session.add_all(rows)
                await session.flush()
                made = sorted((row.id for row in rows), reverse=True)
        finally:
            await engine.dispose()
        coordinator = await service.add_user(Role.COORDINATOR)
        seen: list[int] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            body = await tickets(service, coordinator, **params)
            seen += [item["id"] for item in body["items"]]
            if (cursor := body["next_cursor"]) is None:
                break
        assert seen == made


def read_csv(content: bytes) -> list[dict[str, str]]:
    assert content.startswith(b"\xef\xbb\xbf")  # the BOM Excel looks for
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"), newline="")))


async def test_csv_has_a_bom_a_header_and_the_same_filters(
    day: tuple[LiveService, dict[str, int]],
) -> None:
    service, ids = day
    suzhou = await service.add_user(Role.CITY_ADMIN, SUZHOU)

    response = await service.http.get(
        "/api/v1/calls", params={"format": "csv", "lang": "en"}, headers=service.auth(suzhou)
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith(f'attachment; filename="surge-tickets-{SUZHOU}-')
    rows = read_csv(response.content)
    assert [int(row["id"]) for row in rows] == [
        ids["yz-by-suzhou"], ids["sz-own"], ids["nj-by-suzhou"],
    ]  # fmt: skip
    first = rows[2]
    assert first["city"] == NANJING
    assert first["served_by"] == SUZHOU
    assert first["caller"] == "138****0002"
    assert first["summary"] == "Bus ROUTE 5 detour"
    assert first["category_code"] == "0202"
    assert first["received_at"] == "2021-07-25 09:10:00"  # local time
    assert first["status"] == "completed"

    chinese = await service.http.get(
        "/api/v1/calls",
        params={"format": "csv", "q": "停车"},
        headers=service.auth(suzhou),
    )
    table = list(csv.reader(io.StringIO(chinese.content.decode("utf-8-sig"), newline="")))
    assert table[0][:3] == ["工单编号", "来电时间", "来电城市"]
    assert [line[0] for line in table[1:]] == [str(ids["sz-own"])]


async def test_csv_of_a_large_day_streams_every_row(backend: Backend) -> None:
    async with run_service(backend.settings()) as service:
        engine = create_engine(service.settings.database_url)
        start = at(0)
        total = 2_345
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                session.add_all(
                    Call(
                        city_code=NANJING,
                        caller=f"138{n:08d}",
                        channel="phone",
                        status="abandoned",
                        received_at=start + timedelta(seconds=n // 3),
                        summary='=HYPERLINK("http://evil")' if n == 0 else None,
                    )
                    for n in range(total)
                )
        finally:
            await engine.dispose()
        admin = await service.add_user(Role.CITY_ADMIN, NANJING)
        response = await service.http.get(
            "/api/v1/calls", params={"format": "csv", "lang": "en"}, headers=service.auth(admin)
        )
        assert response.status_code == 200
        rows = read_csv(response.content)
        assert len(rows) == total
        assert len({row["id"] for row in rows}) == total
        assert rows[-1]["summary"] == '\'=HYPERLINK("http://evil")'  # never a formula in Excel


def cursor_of(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


BAD_QUERIES: list[tuple[dict[str, Any], str]] = [
    ({"status": "lost_in_space"}, "invalid_request"),
    ({"city": "999999"}, "unknown_city"),
    ({"city": "Nanjing"}, "invalid_request"),
    ({"served_by": "999999"}, "unknown_city"),
    ({"category": "9999"}, "unknown_category"),
    ({"category": "abc"}, "invalid_request"),
    ({"format": "xml"}, "invalid_request"),
    ({"lang": "fr"}, "invalid_request"),
    ({"limit": 0}, "invalid_request"),
    ({"limit": 501}, "invalid_request"),
    ({"limit": 2**70}, "invalid_request"),
    ({"limit": "ten"}, "invalid_request"),
    ({"cursor": "not a cursor"}, "invalid_cursor"),
    ({"cursor": "x" * 500}, "invalid_cursor"),
    ({"cursor": cursor_of(f"1627174800000000.{2**64}")}, "invalid_cursor"),
    ({"cursor": cursor_of(f"{2**70}.5")}, "invalid_cursor"),
    ({"cursor": cursor_of("1627174800000000.0")}, "invalid_cursor"),
    ({"cursor": cursor_of("1627174800000000.-3")}, "invalid_cursor"),
    ({"from": "2021-07-26", "to": "2021-07-25"}, "invalid_request"),
    ({"from": "2021-07-25T10:00:00+08:00", "to": "2021-07-25T09:00:00+08:00"}, "invalid_request"),
    ({"from": "2021-07-25T10:00:00"}, "invalid_request"),  # no offset: which clock?
    ({"from": "2021-07-25T10:00:00 08:00"}, "invalid_request"),  # a '+' sent unencoded
    ({"from": "2021-13-40"}, "invalid_request"),
    ({"from": "1627174800"}, "invalid_request"),
    ({"from": "1969-12-31"}, "invalid_request"),
    ({"to": "9999-12-31"}, "invalid_request"),
    ({"to": "0001-01-01T00:00:00+01:00"}, "invalid_request"),
    ({"q": "x" * 201}, "invalid_request"),
    ({"q": "\x00"}, "invalid_request"),
]


async def test_bad_queries_are_refused_in_the_error_shape(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    for params, code in BAD_QUERIES:
        for fmt in ("json", "csv"):
            response = await service.http.get(
                "/api/v1/calls",
                params={"format": fmt, **params},
                headers=service.auth(coordinator),
            )
            assert response.status_code == 422, (params, fmt, response.text)
            error_of(response, 422, code)


async def test_a_cursor_from_the_api_works_on_both_formats(
    day: tuple[LiveService, dict[str, int]],
) -> None:
    service, ids = day
    coordinator = await service.add_user(Role.COORDINATOR)
    first = await tickets(service, coordinator, limit=4)

    response = await service.http.get(
        "/api/v1/calls",
        params={"cursor": first["next_cursor"], "format": "csv", "lang": "en"},
        headers=service.auth(coordinator),
    )

    assert [int(row["id"]) for row in read_csv(response.content)] == [
        ids[name] for name in NEWEST_FIRST[4:]
    ]


async def test_posting_calls_still_works_beside_the_list(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI, NANJING)
    coordinator = await service.add_user(Role.COORDINATOR)
    posted = await service.http.post(
        "/api/v1/calls",
        json={"city": NANJING, "caller": "13812345678", "channel": "phone"},
        headers=service.auth(cti),
    )
    assert posted.status_code == 201, posted.text

    listed = await tickets(service, coordinator)

    assert [item["id"] for item in listed["items"]] == [posted.json()["id"]]
    assert listed["items"][0]["status"] == "queued"
    # The list is in the OpenAPI document beside the post.
    schema = (await service.http.get("/openapi.json")).json()
    assert set(schema["paths"]["/api/v1/calls"]) == {"get", "post"}
