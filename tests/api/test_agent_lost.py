"""A frozen agent console (SIGSTOP) is `lost`: its offer is re-made, its connected call kept,
and a supervisor may release that call."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import websockets

from surge.auth.models import Role
from tests.conftest import Backend
from tests.helpers import Console, LiveService, run_service

NANJING = "320100"
WUXI = "320200"
HEARTBEAT_S = 2.0  # SURGE_HEARTBEAT_TIMEOUT_S for these tests (the default is 10 s)
OFFER_TIMEOUT_S = 15.0

# An agent console in its own process: goes available, accepts offers if told to, and prints
# every frame it receives as a JSON line. SIGSTOP freezes it for real (no pongs, no reads).
CONSOLE = """
import asyncio, json, sys
import websockets

async def main(url, accept):
    async with websockets.connect(url, ping_interval=None) as socket:
        async for text in socket:
            frame = json.loads(text)
            print(json.dumps(frame), flush=True)
            if frame["type"] == "hello":
                await socket.send(json.dumps({"type": "status", "state": "available"}))
            if frame["type"] == "offer" and accept:
                await socket.send(json.dumps({"type": "accept", "offer_id": frame["offer_id"]}))

asyncio.run(main(sys.argv[1], sys.argv[2] == "accept"))
"""


class FrozenConsole:
    """The subprocess console, read line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def expect(self, kind: str, within: float = 5.0) -> dict[str, Any]:
        """Read frames until one of type `kind`."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + within
        while True:
            line = await asyncio.wait_for(
                self.process.stdout.readline(), max(0.01, deadline - time.monotonic())
            )
            assert line, "the console process ended"
            frame: dict[str, Any] = json.loads(line)
            if frame["type"] == kind:
                return frame

    def freeze(self) -> None:
        """SIGSTOP: the process stops answering anything, its socket stays open."""
        self.process.send_signal(signal.SIGSTOP)


@asynccontextmanager
async def frozen_console(
    service: LiveService, agent: str, *, accept: bool
) -> AsyncIterator[FrozenConsole]:
    """Start the console process; kill it at the end (a stopped process still dies on SIGKILL)."""
    url = f"{service.ws_url}/ws/agent?token={service.tokens[agent]}"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-c", CONSOLE, url, "accept" if accept else "hold"),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ},
    )
    console = FrozenConsole(process)
    try:
        await console.expect("state")  # available
        yield console
    finally:
        process.kill()
        await process.wait()


@pytest.fixture
async def live(backend: Backend) -> AsyncIterator[LiveService]:
    """The service with a short heartbeat timeout."""
    settings = backend.settings(heartbeat_timeout_s=HEARTBEAT_S, offer_timeout_s=OFFER_TIMEOUT_S)
    async with run_service(settings) as service:
        yield service


@asynccontextmanager
async def telephony(service: LiveService, cti: str) -> AsyncIterator[Console]:
    """The CTI stream, after its hello."""
    async with websockets.connect(f"{service.ws_url}/ws/cti?token={service.tokens[cti]}") as ws:
        stream = Console(ws)
        await stream.expect("hello")
        yield stream


async def until(stream: Console, kind: str, within: float) -> dict[str, Any]:
    """Read the stream until a frame of type `kind`."""
    deadline = time.monotonic() + within
    while True:
        frame = await stream.recv(within=max(0.01, deadline - time.monotonic()))
        if frame["type"] == kind:
            return frame


async def test_a_frozen_agents_offer_is_made_again_and_the_agent_is_lost(
    live: LiveService,
) -> None:
    cti = await live.add_user(Role.CTI, NANJING)
    frozen_name = await live.add_user(Role.AGENT, NANJING)
    other_name = await live.add_user(Role.AGENT, NANJING)
    async with (
        telephony(live, cti) as stream,
        frozen_console(live, frozen_name, accept=False) as frozen,
    ):
        frozen.freeze()
        stopped = time.monotonic()
        async with live.console(other_name) as other:
            await other.available()  # idle for less time: the frozen agent is offered first
            call = await live.post_call(cti, NANJING)
            offered = await until(stream, "call.offered", 5)
            offered_at = time.monotonic()
            assert offered["call_id"] == call["id"]
            requeued = await until(stream, "call.requeued", HEARTBEAT_S + 2)
            lost_s = time.monotonic() - stopped
            assert requeued["reason"] == "agent_lost"
            again = await other.expect("offer", within=OFFER_TIMEOUT_S + 1)
            again_s = time.monotonic() - offered_at
            assert again["call"]["id"] == call["id"]
    print(
        f"\nfrozen agent (heartbeat {HEARTBEAT_S} s): lost after {lost_s:.2f} s, "
        f"its offer made again after {again_s:.2f} s"
    )
    assert lost_s <= HEARTBEAT_S + 1
    assert again_s <= OFFER_TIMEOUT_S + 1
    history = (await live.http.get(f"/api/v1/calls/{call['id']}", headers=live.auth(cti))).json()
    assert [e["reason"] for e in history["history"]][:4] == [None, None, "agent_lost", None]


async def test_a_lost_agents_call_stays_connected_and_comes_back_on_reconnect(
    live: LiveService,
) -> None:
    cti = await live.add_user(Role.CTI, NANJING)
    agent = await live.add_user(Role.AGENT, NANJING)
    admin = await live.add_user(Role.CITY_ADMIN, NANJING)
    async with (
        telephony(live, cti) as stream,
        frozen_console(live, agent, accept=True) as frozen,
    ):
        call = await live.post_call(cti, NANJING)
        await frozen.expect("call.connected")
        await until(stream, "call.connected", 5)
        release = f"/api/v1/calls/{call['id']}/release"
        well = await live.http.post(release, json={"reason": "x"}, headers=live.auth(admin))
        assert well.status_code == 409, well.text
        assert well.json()["error"]["code"] == "agent_present"
        frozen.freeze()
        await asyncio.sleep(HEARTBEAT_S + 1)  # lost by now
        read = await live.http.get(f"/api/v1/calls/{call['id']}", headers=live.auth(cti))
        assert read.json()["status"] == "connected"  # the voice may go on
        async with live.console(agent) as console:
            assert console.hello["state"] == "busy"
            assert console.hello["call"]["id"] == call["id"]
            await console.send(type="complete", call_id=call["id"], disposition="released")
            refused = await console.expect("error")  # a supervisor's disposition, not an agent's
            assert refused["code"] == "invalid_request"
            await console.send(type="complete", call_id=call["id"], disposition="answered")
            await console.expect("call.completed")


async def test_a_supervisor_releases_the_call_of_a_lost_agent(live: LiveService) -> None:
    cti = await live.add_user(Role.CTI, NANJING)
    agent = await live.add_user(Role.AGENT, NANJING)
    admin = await live.add_user(Role.CITY_ADMIN, NANJING)
    elsewhere = await live.add_user(Role.CITY_ADMIN, WUXI)
    coordinator = await live.add_user(Role.COORDINATOR)
    async with (
        telephony(live, cti) as stream,
        frozen_console(live, agent, accept=True) as frozen,
    ):
        call = await live.post_call(cti, NANJING)
        waiting = await live.post_call(cti, NANJING)  # the agent is busy: this one waits
        await frozen.expect("call.connected")
        frozen.freeze()
        release = f"/api/v1/calls/{call['id']}/release"
        body = {"reason": "座席电脑死机，来电已挂断"}
        deadline = time.monotonic() + HEARTBEAT_S + 2
        while True:  # 409 while the agent still counts as present and well
            answer = await live.http.post(release, json=body, headers=live.auth(admin))
            if answer.status_code != 409 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert answer.status_code == 200, answer.text
        released = answer.json()
        assert (released["status"], released["disposition"]) == ("completed", "released")
        last = released["history"][-1]
        assert (last["reason"], last["note"]) == ("released", body["reason"])
        completed = await until(stream, "call.completed", 5)
        assert (completed["call_id"], completed["disposition"]) == (call["id"], "released")
        again = await live.http.post(release, json=body, headers=live.auth(coordinator))
        assert again.status_code == 200  # a retry gets the same answer
        audit = (
            await live.http.get(
                "/api/v1/audit",
                params={"action": "call.released"},
                headers=live.auth(coordinator),
            )
        ).json()
        assert [(e["actor"], e["action"], e["detail"]["call_id"], e["reason"]) for e in audit] == [
            (admin, "call.released", call["id"], body["reason"])
        ]
        for who, path, status, code in (
            (elsewhere, release, 403, "forbidden"),
            (cti, release, 403, "forbidden"),
            (admin, f"/api/v1/calls/{waiting['id']}/release", 409, "call_not_connected"),
        ):
            refused = await live.http.post(path, json=body, headers=live.auth(who))
            assert (refused.status_code, refused.json()["error"]["code"]) == (status, code)
        empty = await live.http.post(release, json={"reason": " "}, headers=live.auth(admin))
        assert empty.status_code == 422
    async with live.console(agent) as console:  # the released call does not come back
        assert console.hello["call"] is None
        assert console.hello["state"] == "break"
