"""Callbacks (回拨): a waiting or abandoned call becomes a callback at its original place, offered
as `kind: "callback"`; on accept the telephony gets `callback.dial` with the full number; its
result connects it, or frees the agent and redials it later, then `unreached`; a caller who calls
again while one is pending is one request. Through HTTP and the websockets, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import websockets

from surge.auth.models import Role
from tests.conftest import Backend
from tests.helpers import Console, LiveService, run_service

NANJING = "320100"
SUZHOU = "320500"
RETRY_S = 0.5
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def calling(backend: Backend) -> AsyncIterator[LiveService]:
    settings = backend.settings(offer_timeout_s=15.0, callback_retry_s=RETRY_S, callback_attempts=2)
    async with run_service(settings) as live:
        yield live


@asynccontextmanager
async def telephony(service: LiveService, cti: str) -> AsyncIterator[Console]:
    """The CTI's event stream, after its `hello`."""
    url = f"{service.ws_url}/ws/cti?token={service.tokens[cti]}"
    async with websockets.connect(url) as socket:
        stream = Console(socket)
        await stream.expect("hello")
        yield stream


async def next_of(stream: Console, kind: str, within: float = 5.0) -> dict[str, Any]:
    """The next frame of type `kind` on the stream, skipping the others."""
    while True:
        frame = await stream.recv(within)
        if frame["type"] == kind:
            return frame


async def post(service: LiveService, who: str, path: str, **body: Any) -> Any:
    """POST as `who`; the response."""
    return await service.http.post(f"/api/v1{path}", json=body or None, headers=service.auth(who))


async def abandon(service: LiveService, cti: str, call_id: int) -> dict[str, Any]:
    response = await post(service, cti, f"/calls/{call_id}/abandon")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def request(service: LiveService, cti: str, call_id: int) -> dict[str, Any]:
    response = await post(service, cti, f"/calls/{call_id}/callback")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def result(service: LiveService, cti: str, call_id: int, *, reached: bool) -> Any:
    return await post(service, cti, f"/calls/{call_id}/callback/result", reached=reached)


async def test_a_callback_keeps_its_place_is_dialled_and_connected(calling: LiveService) -> None:
    service = calling
    cti = await service.add_user(Role.CTI, NANJING)
    agent = await service.add_user(Role.AGENT, NANJING)
    first = await service.post_call(cti, NANJING, caller="13911112222")
    later = await service.post_call(cti, NANJING, caller="13933334444")
    async with telephony(service, cti) as stream:
        abandoned = await abandon(service, cti, first["id"])
        assert abandoned["status"] == "abandoned"
        asked = await request(service, cti, first["id"])
        assert asked["status"] == "queued"
        assert asked["callback_requested_at"] is not None
        assert asked["callback_attempts"] == 0
        assert asked["history"][-1]["reason"] == "callback_requested"
        assert asked["history"][-1]["from_status"] == "abandoned"
        assert (await next_of(stream, "callback.requested"))["call_id"] == first["id"]
        again = await request(service, cti, first["id"])  # asked twice: one callback
        assert again["callback_requested_at"] == asked["callback_requested_at"]

        async with service.console(agent) as console:
            await console.available()
            # Offered first: its place is its original arrival, ahead of the later call.
            offer = await console.expect("offer")
            assert offer["call"]["id"] == first["id"]
            assert offer["call"]["kind"] == "callback"
            await console.send(type="accept", offer_id=offer["offer_id"])
            dialing = await console.expect("callback.dialing")
            assert dialing["call_id"] == first["id"]
            assert dialing["call"]["caller"] == "13911112222"  # its own city's agent
            dial = await next_of(stream, "callback.dial")
            assert dial == {
                "type": "callback.dial",
                "call_id": first["id"],
                "agent": agent,
                "endpoint": dial["endpoint"],
                "number": "13911112222",
            }
            assert dial["endpoint"].startswith("sip:")
            shown = await service.http.get(
                f"/api/v1/calls/{first['id']}", headers=service.auth(cti)
            )
            assert shown.json()["status"] == "dialing"

            reached = await result(service, cti, first["id"], reached=True)
            assert reached.status_code == 200, reached.text
            assert reached.json()["status"] == "connected"
            connected = await console.expect("call.connected")
            assert connected["call_id"] == first["id"]
            assert (await next_of(stream, "call.connected"))["call_id"] == first["id"]
            await console.send(
                type="complete", call_id=first["id"], disposition="answered", category_code="0101"
            )
            await console.expect("call.completed")
            await console.expect("state")
            # The plain call comes next, and says so.
            plain = await console.expect("offer")
            assert plain["call"]["id"] == later["id"]
            assert plain["call"]["kind"] == "call"
    done = await service.http.get(f"/api/v1/calls/{first['id']}", headers=service.auth(cti))
    assert done.json()["status"] == "completed"
    reasons = [event["reason"] for event in done.json()["history"]]
    assert "callback_reached" in reasons


async def test_a_waiting_call_becomes_a_callback_and_its_offer_is_revoked(
    calling: LiveService,
) -> None:
    service = calling
    cti = await service.add_user(Role.CTI, NANJING)
    agent = await service.add_user(Role.AGENT, NANJING)
    async with service.console(agent) as console:
        await console.available()
        call = await service.post_call(cti, NANJING)
        offer = await console.expect("offer")
        assert offer["call"]["kind"] == "call"
        asked = await request(service, cti, call["id"])
        assert asked["status"] == "queued"
        revoked = await console.expect("offer.revoked")
        assert revoked == {
            "type": "offer.revoked",
            "offer_id": offer["offer_id"],
            "reason": "callback_requested",
        }
        again = await console.expect("offer")
        assert again["call"]["id"] == call["id"]
        assert again["call"]["kind"] == "callback"


async def test_not_reached_frees_the_agent_redials_later_then_unreached(
    calling: LiveService,
) -> None:
    service = calling
    cti = await service.add_user(Role.CTI, NANJING)
    agent = await service.add_user(Role.AGENT, NANJING)
    call = await service.post_call(cti, NANJING)
    await abandon(service, cti, call["id"])
    await request(service, cti, call["id"])
    async with telephony(service, cti) as stream, service.console(agent) as console:
        await console.available()
        offer = await console.expect("offer")
        await console.send(type="accept", offer_id=offer["offer_id"])
        await console.expect("callback.dialing")
        missed = await result(service, cti, call["id"], reached=False)
        assert missed.status_code == 200, missed.text
        body = missed.json()
        assert body["status"] == "redial"
        assert body["callback_attempts"] == 1
        assert body["callback_due_at"] is not None
        told = await console.expect("callback.unreached")
        assert told == {
            "type": "callback.unreached",
            "call_id": call["id"],
            "retry_in_s": RETRY_S,
        }
        assert (await console.expect("state"))["state"] == "available"
        # Out of the queue while it waits; due again (the maintenance tick), offered again.
        await console.silent(RETRY_S * 0.6)
        again = await console.expect("offer", within=RETRY_S + 3)
        assert again["call"]["id"] == call["id"]
        assert again["call"]["kind"] == "callback"
        await console.send(type="accept", offer_id=again["offer_id"])
        await console.expect("callback.dialing")
        last = await result(service, cti, call["id"], reached=False)
        assert last.json()["status"] == "unreached"
        assert last.json()["callback_attempts"] == 2
        assert (await console.expect("callback.unreached"))["retry_in_s"] is None
        assert (await console.expect("state"))["state"] == "available"
        unreached = await next_of(stream, "call.unreached")
        assert unreached["call_id"] == call["id"]
        assert unreached["attempts"] == 2
        # Final: no more results, no more callbacks.
        late = await result(service, cti, call["id"], reached=True)
        assert late.status_code == 409
        assert late.json()["error"]["code"] == "callback_not_dialing"
        refused = await post(service, cti, f"/calls/{call['id']}/callback")
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "call_not_open"


async def test_a_helper_agent_sees_the_number_masked_the_telephony_in_full(
    backend: Backend,
) -> None:
    async with run_service(backend.settings(offer_timeout_s=15.0)) as service:
        coordinator = await service.add_user(Role.COORDINATOR)
        cti = await service.add_user(Role.CTI, NANJING)
        helper = await service.add_user(Role.AGENT, SUZHOU)
        started = await post(
            service,
            coordinator,
            "/surges",
            host_city=NANJING,
            waves=[{"cities": [SUZHOU], "seats_per_city": 1}],
        )
        assert started.status_code == 201, started.text
        call = await service.post_call(cti, NANJING, caller="13911112222")
        await abandon(service, cti, call["id"])
        await request(service, cti, call["id"])
        async with telephony(service, cti) as stream, service.console(helper) as console:
            await console.expect("surge.joined")
            await console.available()
            offer = await console.expect("offer")
            assert offer["call"]["kind"] == "callback"
            assert offer["call"]["caller"] == "139****2222"
            await console.send(type="accept", offer_id=offer["offer_id"])
            dialing = await console.expect("callback.dialing")
            assert dialing["call"]["caller"] == "139****2222"
            assert (await next_of(stream, "callback.dial"))["number"] == "13911112222"


async def test_a_caller_who_calls_again_is_one_request(calling: LiveService) -> None:
    service = calling
    cti = await service.add_user(Role.CTI, NANJING)
    first = await service.post_call(cti, NANJING, caller="13911112222")
    other = await service.post_call(cti, NANJING, caller="13955556666")
    await abandon(service, cti, first["id"])
    await request(service, cti, first["id"])
    await abandon(service, cti, other["id"])
    await request(service, cti, other["id"])
    async with telephony(service, cti) as stream:
        back = await service.post_call(cti, NANJING, caller="13911112222")
        withdrawn = await next_of(stream, "callback.withdrawn")
        assert withdrawn["call_id"] == first["id"]
        assert withdrawn["new_call_id"] == back["id"]
    shown = await service.http.get(f"/api/v1/calls/{first['id']}", headers=service.auth(cti))
    body = shown.json()
    assert body["status"] == "abandoned"
    assert body["history"][-1]["reason"] == "caller_called_again"
    assert body["history"][-1]["note"] == f"call {back['id']}"
    # Another caller's callback, and the same number in another city, are left alone.
    kept = await service.http.get(f"/api/v1/calls/{other['id']}", headers=service.auth(cti))
    assert kept.json()["status"] == "queued"
    agent = await service.add_user(Role.AGENT, NANJING)
    async with service.console(agent) as console:
        await console.available()
        offered = [(await console.expect("offer"))["call"]]
        assert offered[0]["id"] == other["id"]


async def test_callbacks_on_abandon_are_made_by_themselves(backend: Backend) -> None:
    settings = backend.settings(callback_on_abandon=True, report_short_abandon_s=0.3)
    async with run_service(settings) as service:
        cti = await service.add_user(Role.CTI, NANJING)
        short = await service.post_call(cti, NANJING, caller="13911110000")
        assert (await abandon(service, cti, short["id"]))["status"] == "abandoned"
        long = await service.post_call(cti, NANJING, caller="13922220000")
        await asyncio.sleep(0.4)
        made = await abandon(service, cti, long["id"])
        assert made["status"] == "queued"
        assert made["callback_requested_at"] is not None
        assert [e["reason"] for e in made["history"][-2:]] == [
            "caller_hung_up",
            "callback_requested",
        ]
        # The CTI sending its abandon again changes nothing.
        assert (await abandon(service, cti, long["id"]))["status"] == "queued"


async def test_a_surge_with_callbacks_makes_them_for_its_host_alone(backend: Backend) -> None:
    async with run_service(backend.settings(report_short_abandon_s=0.0)) as service:
        coordinator = await service.add_user(Role.COORDINATOR)
        cti = await service.add_user(Role.CTI)
        started = await post(
            service,
            coordinator,
            "/surges",
            host_city=NANJING,
            waves=[{"cities": [SUZHOU], "seats_per_city": 1}],
            callbacks=True,
        )
        assert started.status_code == 201, started.text
        assert started.json()["callbacks"] is True
        host = await service.post_call(cti, NANJING)
        helper = await service.post_call(cti, SUZHOU)
        assert (await abandon(service, cti, host["id"]))["status"] == "queued"
        assert (await abandon(service, cti, helper["id"]))["status"] == "abandoned"


async def test_bad_callback_requests_and_results(calling: LiveService) -> None:
    service = calling
    cti = await service.add_user(Role.CTI, NANJING)
    elsewhere = await service.add_user(Role.CTI, SUZHOU)
    agent = await service.add_user(Role.AGENT, NANJING)
    plain = await service.post_call(cti, NANJING)
    # A result for a call that is not a callback.
    refused = await result(service, cti, plain["id"], reached=True)
    assert refused.status_code == 409
    assert refused.json()["error"] == {
        "code": "callback_not_dialing",
        "message": f"call {plain['id']} is not a callback",
    }
    # Another city's telephony neither asks for it nor answers for it.
    for response in (
        await post(service, elsewhere, f"/calls/{plain['id']}/callback"),
        await result(service, elsewhere, plain["id"], reached=True),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden"
    # A callback queued, not dialled: no result yet.
    await request(service, cti, plain["id"])
    early = await result(service, cti, plain["id"], reached=False)
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "callback_not_dialing"
    # A connected call, then a completed one, is not called back.
    async with service.console(agent) as console:
        await console.available()
        offer = await console.expect("offer")
        await console.send(type="accept", offer_id=offer["offer_id"])
        await console.expect("callback.dialing")
        assert (await result(service, cti, plain["id"], reached=True)).status_code == 200
        await console.expect("call.connected")
        connected = await post(service, cti, f"/calls/{plain['id']}/callback")
        assert connected.status_code == 409
        assert connected.json()["error"]["code"] == "call_not_open"
        await console.send(type="complete", call_id=plain["id"], disposition="answered")
        await console.expect("call.completed")
    completed = await post(service, cti, f"/calls/{plain['id']}/callback")
    assert completed.status_code == 409
    assert completed.json()["error"]["code"] == "call_not_open"
    # Bad ids and bodies are 422 or 404, in the error shape; agents may not ask.
    for call_id in (2**63, 2**64 + 1, 0):
        for response in (
            await post(service, cti, f"/calls/{call_id}/callback"),
            await result(service, cti, call_id, reached=True),
        ):
            assert response.status_code == 422, response.text
            assert response.json()["error"]["code"] == "invalid_request"
    assert (await post(service, cti, "/calls/99999999/callback")).status_code == 404
    for body in ({}, {"reached": "yes"}, {"reached": 1}, {"reached": True, "more": 1}):
        response = await service.http.post(
            f"/api/v1/calls/{plain['id']}/callback/result", json=body, headers=service.auth(cti)
        )
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["code"] == "invalid_request"
    denied = await post(service, agent, f"/calls/{plain['id']}/callback")
    assert denied.status_code == 403


async def test_callbacks_outlive_a_restart(backend: Backend) -> None:
    """The database holds them: a queued callback is rebuilt as one, a redial comes back due."""
    # Long enough for the restart and the other callback to come first even on a loaded machine.
    settings = backend.settings(offer_timeout_s=15.0, callback_retry_s=8.0)
    async with run_service(settings) as first:
        cti = await first.add_user(Role.CTI, NANJING)
        agent = await first.add_user(Role.AGENT, NANJING)
        redialled = await first.post_call(cti, NANJING, caller="13911112222")
        waiting = await first.post_call(cti, NANJING, caller="13933334444")
        await request(first, cti, redialled["id"])
        await request(first, cti, waiting["id"])
        async with first.console(agent) as console:
            await console.available()
            offer = await console.expect("offer")
            assert offer["call"]["id"] == redialled["id"]
            await console.send(type="accept", offer_id=offer["offer_id"])
            await console.expect("callback.dialing")
            missed = await result(first, cti, redialled["id"], reached=False)
            assert missed.json()["status"] == "redial"
            await console.expect("callback.unreached")
            await console.expect("state")
            # The other callback is offered now; the console closes on it (back in its place).
            assert (await console.expect("offer"))["call"]["id"] == waiting["id"]
        tokens = dict(first.tokens)
    async with run_service(settings) as second:
        second.tokens.update(tokens)
        async with second.console(agent) as console:
            await console.available()
            offer = await console.expect("offer")
            assert offer["call"]["id"] == waiting["id"]
            assert offer["call"]["kind"] == "callback"
            await console.send(type="accept", offer_id=offer["offer_id"])
            await console.expect("callback.dialing")
            assert (await result(second, cti, waiting["id"], reached=True)).status_code == 200
            await console.expect("call.connected")
            await console.send(type="complete", call_id=waiting["id"], disposition="answered")
            await console.expect("call.completed")
            await console.expect("state")
            again = await console.expect("offer", within=12)
            assert again["call"]["id"] == redialled["id"]
            assert again["call"]["kind"] == "callback"


async def dial_out(
    service: LiveService, console: Console, cti: str, call_id: int, *, reached: bool
) -> None:
    """Take the callback `call_id` offered next and report the dial-out's result."""
    offer = await console.expect("offer", within=RETRY_S + 5)
    assert offer["call"]["id"] == call_id
    await console.send(type="accept", offer_id=offer["offer_id"])
    await console.expect("callback.dialing")
    assert (await result(service, cti, call_id, reached=reached)).status_code == 200
    if reached:
        await console.expect("call.connected")
        await console.send(type="complete", call_id=call_id, disposition="answered")
        await console.expect("call.completed")
        await console.expect("state")
    else:
        await console.expect("callback.unreached")
        await console.expect("state")


async def test_the_daily_report_counts_callbacks(calling: LiveService) -> None:
    service = calling
    cti = await service.add_user(Role.CTI, NANJING)
    agent = await service.add_user(Role.AGENT, NANJING)
    coordinator = await service.add_user(Role.COORDINATOR)
    reached = await service.post_call(cti, NANJING, caller="13900000001")
    unreached = await service.post_call(cti, NANJING, caller="13900000002")
    hung_up = await service.post_call(cti, NANJING, caller="13900000003")
    await abandon(service, cti, hung_up["id"])
    await request(service, cti, reached["id"])
    await request(service, cti, unreached["id"])
    async with service.console(agent) as console:
        await console.available()
        await dial_out(service, console, cti, reached["id"], reached=True)
        await dial_out(service, console, cti, unreached["id"], reached=False)
        await dial_out(service, console, cti, unreached["id"], reached=False)  # its last attempt
    shown = await service.http.get(f"/api/v1/calls/{reached['id']}", headers=service.auth(cti))
    body = shown.json()
    wait = datetime.fromisoformat(body["connected_at"]) - datetime.fromisoformat(
        body["callback_requested_at"]
    )
    day = datetime.fromisoformat(body["received_at"]).astimezone(SHANGHAI).date().isoformat()
    response = await service.http.get(
        "/api/v1/reports/daily", params={"date": day}, headers=service.auth(coordinator)
    )
    assert response.status_code == 200, response.text
    [nanjing] = [row for row in response.json()["cities"] if row["code"] == NANJING]
    for figures in (nanjing, response.json()["province"]):
        assert (figures["received"], figures["answered"], figures["abandoned"]) == (3, 1, 1)
        assert figures["callbacks"] == 2
        assert (figures["callbacks_reached"], figures["callbacks_unreached"]) == (1, 1)
        assert figures["callback_wait_s"] == pytest.approx(wait.total_seconds(), abs=0.01)
        assert figures["open"] == 0
    csv = await service.http.get(
        "/api/v1/reports/daily",
        params={"date": day, "city": NANJING, "format": "csv", "lang": "en"},
        headers=service.auth(coordinator),
    )
    header, row = csv.text.lstrip("\ufeff").splitlines()[:2]
    columns = dict(zip(header.split(","), row.split(","), strict=True))
    assert (columns["callbacks"], columns["callbacks_reached"]) == ("2", "1")
    assert columns["callbacks_unreached"] == "1"
