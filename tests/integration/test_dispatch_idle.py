"""An idle dispatcher reads one change mark per tick (an MGET), and wakes for what can be placed.

Watched from Redis itself (MONITOR, `redis_watch`), on the shared server.
"""

from __future__ import annotations

import asyncio

from surge.auth.models import Role
from tests.conftest import Backend
from tests.helpers import run_service
from tests.integration.redis_watch import watched

NANJING = "320100"


async def test_an_idle_dispatcher_reads_only_the_change_mark(shared_backend: Backend) -> None:
    settings = shared_backend.settings(dispatch_interval_s=0.2)
    async with run_service(settings) as service:
        cti = await service.add_user(Role.CTI)
        agent = await service.add_user(Role.AGENT, NANJING)
        await asyncio.sleep(1.0)  # start-up's rebuild and first cycles are done

        async with watched(shared_backend.redis_prefix) as idle:
            await asyncio.sleep(2.0)
        assert idle["snapshot"] == 0, idle
        assert idle["MGET"] >= 5, idle  # a tick every 0.2 s, each one read

        # A call with no agent to take it: one look, then settled again.
        async with watched(shared_backend.redis_prefix) as waiting:
            call = await service.post_call(cti, NANJING, external_id="idle-1")
            await asyncio.sleep(2.0)
        assert 1 <= waiting["snapshot"] <= 2, waiting

        # An agent becoming available is a change: the waiting call is offered.
        async with service.console(agent) as console:
            await console.available()
            offer = await console.expect("offer")
        assert offer["call"]["id"] == call["id"]


async def test_a_cycle_that_offers_every_queued_call_settles(shared_backend: Backend) -> None:
    settings = shared_backend.settings(dispatch_interval_s=0.2)
    async with run_service(settings) as service:
        cti = await service.add_user(Role.CTI)
        agent = await service.add_user(Role.AGENT, NANJING)
        async with service.console(agent) as console:
            await console.available()
            await asyncio.sleep(1.0)  # the agent's arrival has been looked at

            # The one cycle that offers the call needs no second look to find nothing left.
            async with watched(shared_backend.redis_prefix) as placing:
                call = await service.post_call(cti, NANJING, external_id="settle-1")
                offer = await console.expect("offer")
                await asyncio.sleep(1.0)
            assert offer["call"]["id"] == call["id"]
            assert placing["snapshot"] == 1, placing
            assert placing["MGET"] >= 3, placing


async def test_an_agent_freed_while_no_call_waits_costs_no_cycle(shared_backend: Backend) -> None:
    # A tick far apart: every snapshot read below is one a change woke.
    settings = shared_backend.settings(dispatch_interval_s=30.0)
    async with run_service(settings) as service:
        cti = await service.add_user(Role.CTI)
        agent = await service.add_user(Role.AGENT, NANJING)
        async with service.console(agent) as console:
            await console.available()
            await asyncio.sleep(1.0)  # its arrival was looked at: no call waits anywhere

            async with watched(shared_backend.redis_prefix) as freed:
                await console.send(type="status", state="break")
                await console.expect("state")
                await console.available()
                await asyncio.sleep(1.0)
            assert freed["snapshot"] == 0, freed

            # A call queued is looked at at once, and goes to the free agent.
            call = await service.post_call(cti, NANJING, external_id="freed-1")
            offer = await console.expect("offer")
            assert offer["call"]["id"] == call["id"]
