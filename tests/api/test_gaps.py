"""Knowledge gaps: raised from the call in hand, grouped by similar question, live to the host's
admins, closed by the publish that answers them, which tells the agents who raised them."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import websockets

from surge.auth.models import Role
from tests.api.test_bad_input import error_of
from tests.api.test_scripts import entry, publish
from tests.api.test_surges import next_frame, start_surge
from tests.conftest import Backend
from tests.helpers import Console, LiveService, run_service

NANJING, XUZHOU, WUXI = "320100", "320300", "320200"
GAPS = f"/api/v1/cities/{NANJING}/scripts/gaps"


@asynccontextmanager
async def admin_stream(service: LiveService, user: str) -> AsyncIterator[Console]:
    """Open a supervisor's `/ws/admin` stream (after its `hello`)."""
    url = f"{service.ws_url}/ws/admin?token={service.tokens[user]}"
    async with websockets.connect(url) as socket:
        stream = Console(socket)
        stream.hello = await stream.expect("hello")
        yield stream


async def take_call(service: LiveService, console: Console, cti: str, city: str) -> int:
    """Post a call of `city` and have the (available) console accept it; its id."""
    call = await service.post_call(cti, city)
    offer = await next_frame(console, "offer")
    assert offer["call"]["id"] == call["id"]
    await console.send(type="accept", offer_id=offer["offer_id"])
    await next_frame(console, "call.connected")
    call_id: int = call["id"]
    return call_id


async def open_gaps(service: LiveService, user: str, **params: str) -> list[dict[str, Any]]:
    response = await service.http.get(GAPS, params=params, headers=service.auth(user))
    assert response.status_code == 200, response.text
    groups: list[dict[str, Any]] = response.json()
    return groups


async def test_gaps_are_grouped_live_and_closed_by_the_publish_that_answers_them(
    service: LiveService,
) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    coordinator = await service.add_user(Role.COORDINATOR)
    cti = await service.add_user(Role.CTI)
    helper = await service.add_user(Role.AGENT, XUZHOU)
    own = await service.add_user(Role.AGENT, NANJING)
    await publish(service, admin, [entry("testing")])
    await start_surge(service, coordinator)
    async with (
        admin_stream(service, admin) as stream,
        admin_stream(service, coordinator) as province,
        service.console(helper) as theirs,
    ):
        assert stream.hello == {"type": "hello", "role": "city_admin", "city": NANJING}
        assert province.hello == {"type": "hello", "role": "coordinator", "city": None}
        await theirs.expect("surge.joined")
        await theirs.available()
        helped = await take_call(service, theirs, cti, NANJING)
        question = "  最近的核酸检测点在哪里？ "
        await theirs.send(type="gap", call_id=helped, question=question, note="来电人在江宁区")
        recorded = await next_frame(theirs, "gap.recorded")
        assert recorded == {
            "type": "gap.recorded", "call_id": helped, "city": NANJING,
            "question": "最近的核酸检测点在哪里？",
        }  # fmt: skip
        raised = await stream.expect("gap.raised")
        assert (raised["city"], raised["question"], raised["raised_by"]) == (
            NANJING, "最近的核酸检测点在哪里？", XUZHOU,
        )  # fmt: skip
        group = raised["group"]
        assert (group["count"], group["cities"], group["status"]) == (1, [XUZHOU], "open")
        assert group["answered_version"] is None
        assert (await province.expect("gap.raised"))["group"]["id"] == group["id"]
        await theirs.send(type="complete", call_id=helped, disposition="answered")
        await next_frame(theirs, "call.completed")

        async with service.console(own) as mine:
            await mine.available()
            local = await take_call(service, mine, cti, NANJING)
            # A `complete` may carry the gap: it joins the similar group.
            await mine.send(
                type="complete", call_id=local, disposition="answered",
                gap={"question": "核酸检测点在哪"},
            )  # fmt: skip
            await next_frame(mine, "call.completed")
            assert (await next_frame(mine, "gap.recorded"))["call_id"] == local
            joined = await stream.expect("gap.raised")
            assert joined["group"]["id"] == group["id"]
            assert (joined["group"]["count"], joined["group"]["cities"]) == (2, [NANJING, XUZHOU])
            assert joined["raised_by"] == NANJING
            other = await take_call(service, mine, cti, NANJING)
            await mine.send(type="gap", call_id=other, question="Is the ring road open tonight?")
            await next_frame(mine, "gap.recorded")
            fresh = (await stream.expect("gap.raised"))["group"]
            assert (fresh["id"] != group["id"], fresh["count"]) == (True, 1)

            listed = await open_gaps(service, admin)
            assert [(g["id"], g["count"], g["question"]) for g in listed] == [
                (group["id"], 2, "最近的核酸检测点在哪里？"),
                (fresh["id"], 1, "Is the ring road open tonight?"),
            ]
            assert listed[0]["first_at"] <= listed[0]["last_at"]
            assert listed == await open_gaps(service, coordinator, status="open")

            answered = await publish(
                service, admin, [entry("testing"), entry("sites", title="检测点位")],
                answers_gaps=[group["id"]],
            )  # fmt: skip
            assert answered["version"] == 2
            for console, call_id, question in (
                (theirs, helped, "最近的核酸检测点在哪里？"),
                (mine, local, "核酸检测点在哪"),
            ):
                # The scripts update first, then what it answers.
                assert (await next_frame(console, "scripts.updated"))["version"] == 2
                told = await console.expect("gap.answered")
                assert told == {
                    "type": "gap.answered", "city": NANJING, "version": 2,
                    "call_id": call_id, "question": question,
                }  # fmt: skip
            await mine.silent()
    assert [g["id"] for g in await open_gaps(service, admin)] == [fresh["id"]]
    closed = await open_gaps(service, admin, status="answered")
    assert [(g["id"], g["status"], g["answered_version"], g["count"]) for g in closed] == [
        (group["id"], "answered", 2, 2)
    ]
    # The daily report: 3 gaps raised on Nanjing's calls (1 by a Xuzhou helper), the 2 of the
    # answered group closed; Xuzhou raised 1 for another city.
    today = {"date": datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()}
    response = await service.http.get(
        "/api/v1/reports/daily", params=today, headers=service.auth(coordinator)
    )
    body = response.json()
    figures = ("gaps_raised", "gaps_raised_for_others", "gaps_closed")
    cities = {row["code"]: row for row in body["cities"]}
    assert [cities[NANJING][key] for key in figures] == [3, 0, 2]
    assert [cities[XUZHOU][key] for key in figures] == [0, 1, 0]
    assert [body["province"][key] for key in figures] == [3, 1, 2]
    (helping,) = cities[NANJING]["helpers"]
    assert (helping["code"], helping["gaps_raised"]) == (XUZHOU, 1)
    table = await service.http.get(
        "/api/v1/reports/daily", params={**today, "format": "csv"},
        headers=service.auth(coordinator),
    )  # fmt: skip
    lines = list(csv.reader(io.StringIO(table.content.decode("utf-8-sig"))))
    rows = {line[0]: dict(zip(lines[0], line, strict=True)) for line in lines[1:]}
    assert (rows[NANJING]["口径缺口反馈量"], rows[NANJING]["口径缺口答复量"]) == ("3", "2")


async def test_a_gap_is_raised_only_on_the_call_in_hand(backend: Backend) -> None:
    async with run_service(backend.settings(wrap_up_s=30.0)) as service:
        admin = await service.add_user(Role.CITY_ADMIN, NANJING)
        cti = await service.add_user(Role.CTI)
        agent = await service.add_user(Role.AGENT, NANJING)
        other = await service.add_user(Role.AGENT, NANJING)
        async with admin_stream(service, admin) as stream, service.console(agent) as console:
            await console.available()
            call_id = await take_call(service, console, cti, NANJING)
            waiting = await service.post_call(cti, NANJING)  # nobody's call yet
            refused: list[tuple[dict[str, Any], str]] = [
                ({"call_id": waiting["id"], "question": "问题"}, "call_not_in_hand"),
                ({"call_id": 999_999, "question": "问题"}, "call_not_in_hand"),
                ({"call_id": call_id, "question": "   "}, "invalid_request"),
                ({"call_id": call_id, "question": "问" * 501}, "invalid_request"),
                ({"call_id": call_id, "question": "问题", "note": "注" * 1001}, "invalid_request"),
                ({"call_id": call_id}, "invalid_request"),
                ({"call_id": 2**63, "question": "问题"}, "invalid_request"),
            ]
            for message, code in refused:
                await console.send(type="gap", **message)
                assert (await console.expect("error"))["code"] == code, message
            # A bad gap refuses the whole ticket: the call stays in hand.
            await console.send(
                type="complete", call_id=call_id, disposition="answered", gap={"question": ""}
            )
            assert (await console.expect("error"))["code"] == "invalid_request"
            # The longest question is taken; during the wrap-up the call is still in hand.
            await console.send(type="complete", call_id=call_id, disposition="answered")
            await next_frame(console, "call.completed")
            assert (await console.expect("state"))["state"] == "wrap_up"
            await console.send(type="gap", call_id=call_id, question="问" * 500)
            assert (await console.expect("gap.recorded"))["question"] == "问" * 500
            assert (await stream.expect("gap.raised"))["group"]["count"] == 1
            await console.available()  # the wrap-up is over: the call is no longer in hand
            offer = await console.expect("offer")  # the waiting call: offered, not in hand yet
            for unheld in (call_id, waiting["id"]):
                await console.send(type="gap", call_id=unheld, question="又一个问题")
                assert (await console.expect("error"))["code"] == "call_not_in_hand"
            assert offer["call"]["id"] == waiting["id"]
            # Another agent may not raise one on it either.
            async with service.console(other) as stranger:
                await stranger.send(type="gap", call_id=call_id, question="问题")
                assert (await stranger.expect("error"))["code"] == "call_not_in_hand"
            await stream.silent()
        assert [g["question"] for g in await open_gaps(service, admin)] == ["问" * 500]


async def test_who_sees_the_gaps_and_what_a_publish_may_answer(service: LiveService) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    wuxi_admin = await service.add_user(Role.CITY_ADMIN, WUXI)
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    wuxi_agent = await service.add_user(Role.AGENT, WUXI)
    for name, city in ((agent, NANJING), (wuxi_agent, WUXI)):
        async with service.console(name) as console:
            await console.available()
            call_id = await take_call(service, console, cti, city)
            await console.send(type="gap", call_id=call_id, question=f"{city} 的新问题")
            await console.expect("gap.recorded")
    (nanjing_gap,) = await open_gaps(service, admin)
    wuxi_gaps = await service.http.get(
        f"/api/v1/cities/{WUXI}/scripts/gaps", headers=service.auth(wuxi_admin)
    )
    (wuxi_gap,) = wuxi_gaps.json()
    # Another city's admin, an agent: refused; a bad status or limit: 422; an unknown city: 422.
    for user in (wuxi_admin, agent):
        error_of(await service.http.get(GAPS, headers=service.auth(user)), 403, "forbidden")
    for params in ({"status": "closed"}, {"limit": "0"}, {"limit": "1001"}):
        response = await service.http.get(GAPS, params=params, headers=service.auth(admin))
        error_of(response, 422, "invalid_request")
    unknown_city = await service.http.get(
        "/api/v1/cities/999999/scripts/gaps", headers=service.auth(admin)
    )
    assert unknown_city.status_code in (403, 404, 422), unknown_city.text
    # A publish naming another city's gap, an unknown one or a bad id publishes nothing.
    await publish(service, admin, [entry("testing")], answers_gaps=[nanjing_gap["id"]])
    bad: list[tuple[list[Any], int, str]] = [
        ([wuxi_gap["id"]], 422, "unknown_gap"),
        ([123_456], 422, "unknown_gap"),
        ([nanjing_gap["id"]], 409, "gap_answered"),
        (["1"], 422, "invalid_request"),
        ([0], 422, "invalid_request"),
        ([2**31], 422, "invalid_request"),
    ]
    for answers, status, code in bad:
        response = await service.http.post(
            f"/api/v1/cities/{NANJING}/scripts",
            json={"entries": [entry("testing")], "answers_gaps": answers},
            headers=service.auth(admin),
        )
        error_of(response, status, code)
    versions = await service.http.get(
        f"/api/v1/cities/{NANJING}/scripts/versions", headers=service.auth(admin)
    )
    assert [v["version"] for v in versions.json()] == [1]
    still = await service.http.get(
        f"/api/v1/cities/{WUXI}/scripts/gaps", headers=service.auth(wuxi_admin)
    )
    assert [g["id"] for g in still.json()] == [wuxi_gap["id"]]


async def test_the_admin_stream_is_for_supervisors(service: LiveService) -> None:
    for role in (Role.AGENT, Role.CTI):
        user = await service.add_user(role, NANJING)
        url = f"{service.ws_url}/ws/admin?token={service.tokens[user]}"
        async with websockets.connect(url) as socket:
            stream = Console(socket)
            assert (await stream.expect("error"))["code"] == "forbidden"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await stream.drain()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4403
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    async with admin_stream(service, admin) as stream:
        await stream.send(type="gap", call_id=1, question="问题")
        assert (await stream.expect("error"))["code"] == "read_only"


async def test_the_same_new_question_raised_at_once_makes_one_group(service: LiveService) -> None:
    admin = await service.add_user(Role.CITY_ADMIN, NANJING)
    cti = await service.add_user(Role.CTI)
    first = await service.add_user(Role.AGENT, NANJING)
    second = await service.add_user(Role.AGENT, NANJING)
    async with service.console(first) as one, service.console(second) as two:
        calls = []
        for console in (one, two):
            await console.available()
            calls.append(await take_call(service, console, cti, NANJING))
        await asyncio.gather(
            one.send(type="gap", call_id=calls[0], question="地铁几号线停运了？"),
            two.send(type="gap", call_id=calls[1], question="地铁哪几号线停运了"),
        )
        for console in (one, two):
            await console.expect("gap.recorded")
    (group,) = await open_gaps(service, admin)
    assert (group["count"], group["cities"]) == (2, [NANJING])
