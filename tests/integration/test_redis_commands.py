"""Each hot transition costs the Redis round trips it should, counted from Redis itself.

A call from arrival to completion on one instance with no telephony stream elsewhere: the intake
queues it (one script), a dispatch cycle reads the mark and the snapshot together and claims (two
scripts) and tells the telephony (a broadcast to the other instances' channels, one script), the
accept is one script and a broadcast, and the
completion is one script that carries its frames for other instances; the agent it frees wakes
no dispatch cycle, the last one having left every queue empty (the dispatcher is woken only by
what frees a call, or an agent while calls may wait, not by every message of a console).
The maintenance tick's own work (expiry, wrap-ups, the heartbeat) is left out. Counted with
MONITOR (`redis_watch`); a round trip more in any of them fails here.

An instance the registry has held alone for the reaper's threshold sends no broadcast at all
(there is nobody to hear it), until another says hello.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import websockets

from surge.auth.models import Role
from tests.conftest import Backend
from tests.helpers import Console, LiveService, run_service
from tests.integration.redis_watch import MAINTENANCE, watched

NANJING = "320100"
SETTLE_S = 0.4  # the dispatcher's cycle after a change has run (its coalescing is 5 ms)


def _hot(seen: Counter[str]) -> dict[str, int]:
    return {name: n for name, n in seen.items() if name not in MAINTENANCE}


# No dispatch tick, survey of the cities nor hotspot check in the way (the check's turn, a
# `count_hit`, comes at every whole interval of the clock): every cycle here is one a change
# asked for.
QUIET = {"dispatch_interval_s": 60.0, "pressure_interval_s": 60.0, "hotspot_check_s": 86_400.0}


async def _one_call(
    service: LiveService, console: Console, cti: str, prefix: str, n: int
) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """Post a call, take it and complete it; what was sent for each of the three steps."""
    async with watched(prefix) as posted:
        call = await service.post_call(cti, NANJING, external_id=f"rt-{n}")
        offer = await console.expect("offer")
        await asyncio.sleep(SETTLE_S)
    assert offer["call"]["id"] == call["id"]
    async with watched(prefix) as accepted:
        await console.send(type="accept", offer_id=offer["offer_id"])
        await console.expect("call.connected")
        await asyncio.sleep(SETTLE_S)  # no cycle follows: nothing was freed
    async with watched(prefix) as completed:
        await console.send(
            type="complete", call_id=call["id"], disposition="answered", category_code="0101"
        )
        await console.expect("call.completed")
        assert (await console.expect("state"))["state"] == "available"
        await asyncio.sleep(SETTLE_S)
    return posted, accepted, completed


async def test_a_call_costs_seven_round_trips_from_post_to_completion(
    shared_backend: Backend,
) -> None:
    settings = shared_backend.settings(**QUIET)  # alone for 15 s only after the test
    prefix = shared_backend.redis_prefix
    async with run_service(settings) as service:
        cti = await service.add_user(Role.CTI)
        agent = await service.add_user(Role.AGENT, NANJING)
        async with service.console(agent) as console:
            await console.available()
            await asyncio.sleep(SETTLE_S)  # the agent's arrival has been looked at
            # A first call loads any script Redis does not have yet (a second EVALSHA).
            await _one_call(service, console, cti, prefix, 0)
            posted, accepted, completed = await _one_call(service, console, cti, prefix, 1)
    # Queued; the cycle's one read and its claim; the telephony's call.offered.
    assert _hot(posted) == {"enqueue": 1, "snapshot": 1, "claim": 1, "broadcast": 1}
    # The hot accept; the telephony's call.connected.
    assert _hot(accepted) == {"answer": 1, "broadcast": 1}
    # The agent freed with the telephony's call.completed in the same script; no call waits, so
    # no cycle looks.
    assert _hot(completed) == {"finish": 1}


async def test_an_instance_alone_sends_no_broadcast_until_another_listens(
    shared_backend: Backend,
) -> None:
    prefix = shared_backend.redis_prefix
    brief = {**QUIET, "instance_timeout_s": 1.0, "heartbeat_interval_s": 0.1}
    async with run_service(shared_backend.settings(instance_id="a", **brief)) as a:
        cti = await a.add_user(Role.CTI)
        agent = await a.add_user(Role.AGENT, NANJING)
        async with a.console(agent) as console:
            await console.available()
            await _one_call(a, console, cti, prefix, 0)
            await asyncio.sleep(1.5)  # its readings have found nobody else for a second
            alone = await _one_call(a, console, cti, prefix, 1)
            async with run_service(shared_backend.settings(instance_id="b", **brief)) as b:
                listener = await b.add_user(Role.CTI)
                url = f"{b.ws_url}/ws/cti?token={b.tokens[listener]}"
                async with websockets.connect(url) as socket:
                    telephony = Console(socket)
                    await telephony.expect("hello")
                    joined = await _one_call(a, console, cti, prefix, 2)
                    heard = [(await telephony.recv())["type"] for _ in range(3)]
            await asyncio.sleep(2.5)  # b reaped after a second's silence, then a second alone
            alone_again = await _one_call(a, console, cti, prefix, 3)
    posted, accepted, completed = alone
    assert _hot(posted) == {"enqueue": 1, "snapshot": 1, "claim": 1}
    assert _hot(accepted) == {"answer": 1}
    assert _hot(completed) == {"finish": 1}
    # With b listening, the telephony frames go to it again, and reach its stream.
    assert [_hot(step).get("broadcast", 0) for step in joined] == [1, 1, 0]
    assert heard == ["call.offered", "call.connected", "call.completed"]
    assert [_hot(step).get("broadcast", 0) for step in alone_again] == [0, 0, 0]
