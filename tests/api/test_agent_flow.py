"""The agent websocket end to end over a real server: offers, accept, decline, complete, revoke."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from surge.auth.models import Role
from tests.helpers import Console, LiveService

NANJING = "320100"
SUZHOU = "320500"


async def test_call_is_offered_accepted_and_completed(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    async with service.console(agent) as console:
        assert console.hello["state"] == "break"
        assert console.hello["city"] == NANJING
        await console.available()
        call = await service.post_call(cti, NANJING, external_id="ext-1")
        assert call["status"] == "queued"

        offer = await console.expect("offer")
        assert offer["call"]["id"] == call["id"]
        assert offer["call"]["caller"] == "13812345678"  # own city: the number is whole
        assert offer["surge_id"] is None
        assert 14 < offer["expires_in_s"] <= 15

        await console.send(type="accept", offer_id=offer["offer_id"])
        connected = await console.expect("call.connected")
        assert connected["call_id"] == call["id"]

        await console.send(
            type="complete",
            call_id=call["id"],
            disposition="answered",
            category_code="0101",
            summary="asked about testing sites",
        )
        assert (await console.expect("call.completed"))["call_id"] == call["id"]
        assert (await console.expect("state"))["state"] == "available"

    response = await service.http.get(f"/api/v1/calls/{call['id']}", headers=service.auth(cti))
    body = response.json()
    assert body["status"] == "completed"
    assert body["disposition"] == "answered"
    assert body["summary"] == "asked about testing sites"
    assert [(e["from_status"], e["to_status"]) for e in body["history"]] == [
        (None, "queued"),
        ("queued", "offered"),
        ("offered", "connected"),
        ("connected", "completed"),
    ]
    assert {e["agent_id"] for e in body["history"][1:]} == {body["agent_id"]}


async def test_longest_idle_agent_gets_the_offer_and_calls_are_fifo(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    first = await service.add_user(Role.AGENT, NANJING)
    second = await service.add_user(Role.AGENT, NANJING)
    calls = [await service.post_call(cti, NANJING) for _ in range(2)]
    async with service.console(first) as one, service.console(second) as two:
        await one.available()
        offer_one = await one.expect("offer")
        await two.available()
        offer_two = await two.expect("offer")
    assert offer_one["call"]["id"] == calls[0]["id"]
    assert offer_two["call"]["id"] == calls[1]["id"]


async def test_higher_priority_call_jumps_the_queue(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    await service.post_call(cti, NANJING)
    urgent = await service.post_call(cti, NANJING, priority=5)
    async with service.console(agent) as console:
        await console.available()
        assert (await console.expect("offer"))["call"]["id"] == urgent["id"]


async def test_agents_only_get_their_own_citys_calls(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    suzhou_agent = await service.add_user(Role.AGENT, SUZHOU)
    await service.post_call(cti, NANJING)
    async with service.console(suzhou_agent) as console:
        await console.available()
        await console.silent(0.6)


async def test_decline_puts_the_call_back_at_its_place(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    first = await service.add_user(Role.AGENT, NANJING)
    second = await service.add_user(Role.AGENT, NANJING)
    early = await service.post_call(cti, NANJING)
    await service.post_call(cti, NANJING)
    async with service.console(first) as one:
        await one.available()
        offer = await one.expect("offer")
        assert offer["call"]["id"] == early["id"]
        async with service.console(second) as two:
            await one.send(type="decline", offer_id=offer["offer_id"])
            # The declining agent went to the back of the line; the call kept its place.
            await two.available()
            offers = [await two.expect("offer"), await one.expect("offer")]
    ids = {o["call"]["id"] for o in offers}
    assert early["id"] in ids
    history = (
        await service.http.get(f"/api/v1/calls/{early['id']}", headers=service.auth(cti))
    ).json()["history"]
    assert ("offered", "queued", "declined") in [
        (e["from_status"], e["to_status"], e["reason"]) for e in history
    ]


async def test_missed_offer_expires_requeues_and_puts_agent_on_break(
    backend_short_offer: LiveService,
) -> None:
    service = backend_short_offer
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    call = await service.post_call(cti, NANJING)
    async with service.console(agent) as console:
        await console.available()
        offer = await console.expect("offer")
        revoked = await console.expect("offer.revoked", within=5)
        assert revoked == {
            "type": "offer.revoked",
            "offer_id": offer["offer_id"],
            "reason": "expired",
        }
        assert (await console.expect("state")) == {
            "type": "state",
            "state": "break",
            "reason": "missed_offer",
        }
        # Accepting now is too late.
        await console.send(type="accept", offer_id=offer["offer_id"])
        assert (await console.expect("error"))["code"] == "offer_unavailable"
    body = (await service.http.get(f"/api/v1/calls/{call['id']}", headers=service.auth(cti))).json()
    assert body["status"] == "queued"
    assert body["history"][-1]["reason"] == "expired"


async def test_disconnect_while_offered_requeues_the_call(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    flaky = await service.add_user(Role.AGENT, NANJING)
    steady = await service.add_user(Role.AGENT, NANJING)
    call = await service.post_call(cti, NANJING)
    async with service.console(flaky) as console:
        await console.available()
        await console.expect("offer")
    async with service.console(steady) as console:
        await console.available()
        offer = await console.expect("offer")
        assert offer["call"]["id"] == call["id"]


async def test_connected_call_survives_a_console_disconnect(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    call = await service.post_call(cti, NANJING)
    async with service.console(agent) as console:
        await console.available()
        offer = await console.expect("offer")
        await console.send(type="accept", offer_id=offer["offer_id"])
        await console.expect("call.connected")
    await asyncio.sleep(0.1)
    async with service.console(agent) as console:
        assert console.hello["state"] == "busy"
        assert console.hello["call"]["id"] == call["id"]
        await console.send(type="complete", call_id=call["id"], disposition="transferred")
        await console.expect("call.completed")


async def test_abandon_while_offered_revokes_the_offer(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    call = await service.post_call(cti, NANJING)
    async with service.console(agent) as console:
        await console.available()
        offer = await console.expect("offer")
        response = await service.http.post(
            f"/api/v1/calls/{call['id']}/abandon", headers=service.auth(cti)
        )
        assert response.status_code == 200
        assert response.json()["status"] == "abandoned"
        assert await console.expect("offer.revoked") == {
            "type": "offer.revoked",
            "offer_id": offer["offer_id"],
            "reason": "abandoned",
        }
        await console.send(type="accept", offer_id=offer["offer_id"])
        assert (await console.expect("error"))["code"] == "offer_unavailable"
        # The agent is free again and gets the next call.
        nxt = await service.post_call(cti, NANJING)
        assert (await console.expect("offer"))["call"]["id"] == nxt["id"]


async def test_cti_stream_reports_the_lifecycle(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI, NANJING)
    agent = await service.add_user(Role.AGENT, NANJING)
    async with websockets.connect(f"{service.ws_url}/ws/cti?token={service.tokens[cti]}") as stream:
        telephony = Console(stream)
        await telephony.expect("hello")
        async with service.console(agent) as console:
            await console.available()
            call = await service.post_call(cti, NANJING)
            offer = await console.expect("offer")
            offered = await telephony.expect("call.offered")
            assert offered["call_id"] == call["id"]
            await console.send(type="accept", offer_id=offer["offer_id"])
            connected = await telephony.expect("call.connected")
            assert connected["agent"] == agent
            assert connected["endpoint"].startswith("sip:")
            assert connected["at"].endswith("+00:00")
            await console.send(type="complete", call_id=call["id"], disposition="answered")
            assert (await telephony.expect("call.completed"))["call_id"] == call["id"]


async def test_a_console_that_reconnects_sees_its_pending_offer_again(service: LiveService) -> None:
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    call = await service.post_call(cti, NANJING)
    async with service.console(agent) as console:
        await console.available()
        offer = await console.expect("offer")
        # A second console (the laptop woke up) replaces the first, which is closed.
        async with service.console(agent) as again:
            assert again.hello["state"] == "offered"
            shown = await again.expect("offer")
            assert shown["offer_id"] == offer["offer_id"]
            assert shown["call"]["id"] == call["id"]
            assert 0 < shown["expires_in_s"] <= 15
            await again.send(type="accept", offer_id=offer["offer_id"])
            await again.expect("call.connected")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await console.drain()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4409


async def test_a_console_reopened_while_the_old_one_closes_keeps_the_agent(
    service: LiveService,
) -> None:
    """The old console's departure never undoes the new one's arrival (nor hands it a revoke)."""
    cti = await service.add_user(Role.CTI)
    agent = await service.add_user(Role.AGENT, NANJING)
    url = f"{service.ws_url}/ws/agent?token={service.tokens[agent]}"
    old = Console(await websockets.connect(url))
    await old.expect("hello")
    await old.available()
    call = await service.post_call(cti, NANJING)
    for _ in range(8):
        assert (await old.expect("offer"))["call"]["id"] == call["id"]
        # Close the old console and open the new one at the same moment.
        _, socket = await asyncio.gather(old.socket.close(), websockets.connect(url))
        new = Console(socket)
        await new.expect("hello")
        try:  # the new console came first: the offer is shown to it again
            frame = await new.recv(within=0.5)
        except TimeoutError:  # the old one left first: its offer went back to the queue
            await new.send(type="status", state="available")
            assert (await new.expect("state"))["state"] == "available"
            frame = await new.recv()
        assert frame["type"] == "offer", frame  # never an offer.revoked, nor agent_not_present
        assert frame["call"]["id"] == call["id"]
        await new.send(type="decline", offer_id=frame["offer_id"])
        old = new
    await old.socket.close()
