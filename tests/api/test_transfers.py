"""Transfers: an agent sends the call in hand to a city's queue with a note; it waits at the head
of that queue, for that city's own agents, and keeps its original arrival."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets

from surge.auth.models import Role
from tests.api.test_surges import next_frame, next_offer, start_surge
from tests.conftest import Backend
from tests.helpers import Console, LiveService, run_service

NANJING, XUZHOU, SUZHOU = "320100", "320300", "320500"


async def take(console: Console) -> dict[str, Any]:
    """Accept the next offer; return it."""
    offer = await next_offer(console)
    await console.send(type="accept", offer_id=offer["offer_id"])
    await next_frame(console, "call.connected")
    return offer


async def cti_frames(stream: Any, kind: str) -> dict[str, Any]:
    """The next telephony frame of `kind` (skipping the others)."""
    while True:
        frame: dict[str, Any] = json.loads(await stream.recv())
        if frame["type"] == kind:
            return frame


async def read_call(service: LiveService, who: str, call_id: int) -> dict[str, Any]:
    response = await service.http.get(f"/api/v1/calls/{call_id}", headers=service.auth(who))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_helper_sends_a_local_question_back_to_the_host(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    cti = await service.add_user(Role.CTI, NANJING)
    helper_name = await service.add_user(Role.AGENT, XUZHOU)
    local_name = await service.add_user(Role.AGENT, NANJING)
    await start_surge(service, coordinator)
    url = f"{service.ws_url}/ws/cti?token={service.tokens[cti]}"
    async with websockets.connect(url) as stream, service.console(helper_name) as helper:
        await helper.send(type="status", state="available")
        call = await service.post_call(cti, NANJING)
        offer = await take(helper)
        assert (offer["call"]["id"], offer["surge_id"]) == (call["id"], offer["surge_id"])
        fresh = await service.post_call(cti, NANJING)  # waits behind the transferred call
        first = await read_call(service, coordinator, call["id"])

        await helper.send(
            type="transfer", call_id=call["id"], to="host", note="本地政策，请南京答复"
        )

        moved = await next_frame(helper, "call.transferred")
        assert moved == {"type": "call.transferred", "call_id": call["id"], "to_city": NANJING}
        assert (await next_frame(helper, "state"))["state"] == "available"
        told = await cti_frames(stream, "call.transferred")
        assert (told["call_id"], told["to_city"]) == (call["id"], NANJING)
        assert told["from_agent"] == helper_name
        # The helper is free, but the transferred call is for the host's own agents only; the
        # fresh call behind it may still overflow to the helper.
        second = await next_offer(helper)
        assert second["call"]["id"] == fresh["id"]
        async with service.console(local_name) as local:
            await local.available()
            again = await next_offer(local)
            assert again["call"]["id"] == call["id"]
            assert again["call"]["note"] == "本地政策，请南京答复"
            assert again["call"]["waited_s"] >= offer["call"]["waited_s"]  # original arrival
            await local.send(type="accept", offer_id=again["offer_id"])
            connected = await cti_frames(stream, "call.connected")
            assert (connected["call_id"], connected["agent"]) == (call["id"], local_name)

    body = await read_call(service, coordinator, call["id"])
    assert (body["city"], body["transfers"], body["transfer_note"]) == (
        NANJING,
        1,
        "本地政策，请南京答复",
    )
    assert (first["transfers"], first["transfer_note"]) == (0, None)
    assert body["received_at"] == first["received_at"]
    assert body["connected_at"] == first["connected_at"]  # answered when first taken
    assert [(e["from_status"], e["to_status"], e["reason"]) for e in body["history"]] == [
        (None, "queued", None),
        ("queued", "offered", None),
        ("offered", "connected", None),
        ("connected", "queued", "transferred"),
        ("queued", "offered", None),
        ("offered", "connected", None),
    ]
    transferred = body["history"][3]
    assert transferred["note"] == "本地政策，请南京答复"
    assert transferred["agent_id"] == first["agent_id"]


async def test_a_call_sent_to_another_city_becomes_that_citys(service: LiveService) -> None:
    coordinator = await service.add_user(Role.COORDINATOR)
    nanjing_cti = await service.add_user(Role.CTI, NANJING)
    suzhou_cti = await service.add_user(Role.CTI, SUZHOU)
    nanjing = await service.add_user(Role.AGENT, NANJING)
    suzhou = await service.add_user(Role.AGENT, SUZHOU)
    url = f"{service.ws_url}/ws/cti?token={service.tokens[suzhou_cti]}"
    async with websockets.connect(url) as stream, service.console(nanjing) as console:
        await console.available()
        call = await service.post_call(nanjing_cti, NANJING)
        await take(console)
        await console.send(type="transfer", call_id=call["id"], to=SUZHOU, note="苏州的社保问题")
        assert (await next_frame(console, "call.transferred"))["to_city"] == SUZHOU
        told = await cti_frames(stream, "call.transferred")  # the new city's telephony hears it
        assert (told["call_id"], told["from_agent"]) == (call["id"], nanjing)
        async with service.console(suzhou) as other:
            await other.available()
            offer = await next_offer(other)
            assert (offer["call"]["id"], offer["call"]["note"]) == (call["id"], "苏州的社保问题")
            assert offer["call"]["caller"] == "13812345678"  # Suzhou's call now: shown whole
            body = await read_call(service, coordinator, call["id"])
            assert (body["city"], body["status"]) == (SUZHOU, "offered")


@pytest.fixture
async def limited(backend: Backend) -> AsyncIterator[LiveService]:
    async with run_service(backend.settings(offer_timeout_s=15.0, transfer_limit=2)) as live:
        yield live


async def test_bad_transfers_are_refused_and_the_call_stays_in_hand(limited: LiveService) -> None:
    service = limited
    coordinator = await service.add_user(Role.COORDINATOR)
    cti = await service.add_user(Role.CTI)
    nanjing = await service.add_user(Role.AGENT, NANJING)
    suzhou = await service.add_user(Role.AGENT, SUZHOU)
    async with service.console(nanjing) as console, service.console(suzhou) as other:
        await console.available()
        await other.available()
        call = await service.post_call(cti, NANJING)
        await take(console)

        async def refused(code: str, **message: Any) -> None:
            await console.send(type="transfer", **message)
            error = await next_frame(console, "error")
            assert error["code"] == code, error

        note = {"note": "请核实"}
        await refused("not_found", call_id=call["id"] + 1, to=SUZHOU, **note)
        await refused("not_found", call_id=2**62, to=SUZHOU, **note)
        await refused("invalid_request", call_id=2**70, to=SUZHOU, **note)
        await refused("unknown_city", call_id=call["id"], to="999999", **note)
        await refused("invalid_request", call_id=call["id"], to="somewhere", **note)
        await refused("invalid_request", call_id=call["id"], to=SUZHOU, note="  ")
        await refused("invalid_request", call_id=call["id"], to=SUZHOU, note="x" * 501)
        await refused("invalid_request", call_id=call["id"], to=SUZHOU)
        await refused("transfer_refused", call_id=call["id"], to="host", **note)  # its own
        await refused("transfer_refused", call_id=call["id"], to=NANJING, **note)
        assert (await read_call(service, coordinator, call["id"]))["status"] == "connected"

        # A loop Nanjing -> Suzhou -> Nanjing ends at the limit: the last agent completes it.
        await console.send(type="transfer", call_id=call["id"], to=SUZHOU, **note)
        await next_frame(console, "call.transferred")
        await take(other)
        await other.send(type="transfer", call_id=call["id"], to=NANJING, **note)
        await next_frame(other, "call.transferred")
        await take(console)
        await refused("transfer_refused", call_id=call["id"], to=SUZHOU, **note)
        await console.send(
            type="complete", call_id=call["id"], disposition="answered", category_code="0101"
        )
        assert (await next_frame(console, "call.completed"))["call_id"] == call["id"]
    body = await read_call(service, coordinator, call["id"])
    reasons = [e["reason"] for e in body["history"] if e["reason"]]
    assert (body["status"], reasons) == ("completed", ["transferred", "transferred"])
