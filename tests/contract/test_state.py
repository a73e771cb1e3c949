"""The hot-state contract: every adapter must pass each of these tests unchanged."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis

from surge.errors import AgentEngaged, AgentNotPresent, StateUnavailable
from surge.state.base import (
    AgentPresence,
    AgentState,
    CallLocation,
    CityView,
    HeldOffer,
    HotState,
    IdleAgent,
    Lend,
    OfferClaim,
    Outcome,
    QueuedCall,
    Reaped,
    Withdrawn,
    WrapUp,
)
from surge.state.redis import RedisState
from tests.conftest import redis_client

from .conftest import Backend

T0 = 1_700_000_000.25  # a fractional epoch second: times must survive the round trip exactly
CITY = "hangzhou"
OTHER = "宁波"  # city names are not always ASCII
CITIES = (CITY, OTHER)


def qc(call_id: int, city: str = CITY, priority: int = 0) -> QueuedCall:
    """A call that arrived `call_id` seconds after T0 (ids follow arrival)."""
    return QueuedCall(call_id, city, priority, T0 + call_id / 7, f"1380000{call_id:04d}", "phone")


def claim(call_id: int, agent_id: int, expires_at: float = T0 + 100) -> OfferClaim:
    """A claim with a fresh offer id."""
    return OfferClaim(uuid.uuid4().hex, call_id, agent_id, expires_at)


async def make_available(
    state: HotState, agent_id: int, city: str = CITY, *, since: float = T0, instance: str = "i1"
) -> None:
    """Connect an agent and make it available, idle since `since`."""
    await state.agent_connect(agent_id, city, instance=instance, now=since, call_id=None)
    await state.set_agent_state(agent_id, AgentState.AVAILABLE, since)


async def offer(
    state: HotState, call_id: int, agent_id: int, expires_at: float = T0 + 100
) -> HeldOffer:
    """Claim one call for one agent, which must succeed."""
    [held] = await state.claim([claim(call_id, agent_id, expires_at)])
    assert held is not None
    return held


async def view(state: HotState, city: str = CITY) -> CityView:
    """The city's full view."""
    return (await state.snapshot([city], queue_depth=10_000))[city]


async def queue_ids(state: HotState, city: str = CITY) -> list[int]:
    """The city's queue, head first."""
    return [call.call_id for call in (await view(state, city)).queue]


async def idle_ids(state: HotState, city: str = CITY) -> list[int]:
    """The city's free agents, longest idle first."""
    return [agent.agent_id for agent in (await view(state, city)).idle]


async def present(state: HotState, agent_id: int) -> AgentPresence:
    """The agent's presence, which must exist."""
    presence = await state.get_agent(agent_id)
    assert presence is not None
    return presence


# --- queues -----------------------------------------------------------------------------------


async def test_ping_answers(state: HotState) -> None:
    await state.ping()


async def test_queue_is_priority_first_then_arrival(state: HotState) -> None:
    calls = [qc(1), qc(2, priority=5), qc(3), qc(4, priority=9), qc(5, priority=5)]
    assert await state.enqueue(calls) == [True] * 5
    assert await queue_ids(state) == [4, 2, 5, 1, 3]
    assert (await view(state)).queue[0] == qc(4, priority=9)


async def test_enqueue_leaves_queued_and_offered_calls_alone(state: HotState) -> None:
    assert await state.enqueue([qc(1), qc(2)]) == [True, True]
    await make_available(state, 10)
    await offer(state, 2, 10)
    again = [qc(1, priority=9), qc(2, priority=9), qc(3), qc(3, priority=9)]
    assert await state.enqueue(again) == [False, False, True, False]
    assert await queue_ids(state) == [1, 3]
    assert (await view(state)).queue[0] == qc(1)
    assert await state.locate([2]) == {2: CallLocation.OFFERED}
    assert await state.enqueue([]) == []


async def test_a_callback_keeps_its_kind_and_its_place_through_offers(state: HotState) -> None:
    callback = QueuedCall(1, CITY, 0, T0, "13800000001", "phone", callback=True)
    assert await state.enqueue([callback, qc(2)]) == [True, True]
    assert (await view(state)).queue == (callback, qc(2))
    await make_available(state, 10)
    held = await offer(state, 1, 10)
    assert held.call == callback
    assert await state.get_offer(held.offer_id) == held
    outcome, declined = await state.decline(held.offer_id, 10, T0 + 1)
    assert outcome is Outcome.DONE
    assert declined is not None
    assert declined.call.callback
    assert (await view(state)).queue == (callback, qc(2))  # back ahead of the later call
    again = await offer(state, 1, 10)
    outcome, accepted = await state.accept(again.offer_id, 10, T0 + 2)
    assert accepted is not None
    assert accepted.call.callback


async def test_locate_says_where_each_call_is(state: HotState) -> None:
    await state.enqueue([qc(1), qc(2)])
    await make_available(state, 10)
    await offer(state, 2, 10)
    assert await state.locate([1, 2, 3]) == {
        1: CallLocation.QUEUED,
        2: CallLocation.OFFERED,
        3: CallLocation.ABSENT,
    }
    assert await state.locate([]) == {}


async def test_transferred_calls_lead_their_queue_and_come_on_top_of_the_depth(
    state: HotState,
) -> None:
    handed = [
        QueuedCall(c, CITY, 0, T0 + c, f"1380000{c:04d}", "phone", "本地政策") for c in (30, 20)
    ]
    await state.enqueue([qc(1), qc(2, priority=9), *handed, qc(3)])
    await make_available(state, 10)

    read = await state.snapshot([CITY], queue_depth=1, placeable_only=True)

    # Both transferred calls first (by arrival), then as deep as the one free agent reaches.
    assert [c.call_id for c in read[CITY].queue] == [20, 30, 2]
    assert [c.note for c in read[CITY].queue] == ["本地政策", "本地政策", None]
    assert read[CITY].waiting == 5
    assert (await state.snapshot([CITY], queue_depth=0))[CITY].queue == ()


async def test_snapshot_reports_each_city(state: HotState) -> None:
    await state.enqueue([qc(1), qc(2), qc(3, priority=9), qc(4, OTHER)])
    await make_available(state, 10, since=T0 + 5)
    await make_available(state, 12, since=T0 + 3)
    await make_available(state, 11, since=T0 + 3)
    await state.agent_connect(13, CITY, instance="i1", now=T0, call_id=None)
    await state.agent_connect(14, CITY, instance="i1", now=T0, call_id=99)
    await make_available(state, 15, since=T0 + 1)
    await offer(state, 2, 15)
    await make_available(state, 20, OTHER, since=T0 + 9)

    views = await state.snapshot([CITY, OTHER, "nowhere"], queue_depth=1)

    assert views[CITY] == CityView(
        city=CITY,
        waiting=2,
        oldest_enqueued_at=qc(1).enqueued_at,  # not the head's: the head is the urgent call 3
        queue=(qc(3, priority=9),),
        idle=(
            IdleAgent(11, CITY, T0 + 3),
            IdleAgent(12, CITY, T0 + 3),
            IdleAgent(10, CITY, T0 + 5),
        ),
        offered=1,
        busy=1,
        on_break=1,
    )
    assert views[OTHER] == CityView(
        OTHER,
        1,
        qc(4, OTHER).enqueued_at,
        (qc(4, OTHER),),
        (IdleAgent(20, OTHER, T0 + 9),),
        0,
        0,
        0,
    )
    assert views["nowhere"] == CityView("nowhere", 0, None, (), (), 0, 0, 0)
    no_head = (await state.snapshot([CITY], queue_depth=0))[CITY]
    assert (no_head.waiting, no_head.queue) == (2, ())
    assert await state.snapshot([], queue_depth=5) == {}


# --- claims -----------------------------------------------------------------------------------


async def test_claim_offers_the_call_to_the_agent(state: HotState) -> None:
    await state.enqueue([qc(1), qc(2)])
    await make_available(state, 10, since=T0 + 4)
    request = claim(1, 10, T0 + 30)

    assert await state.claim([request]) == [HeldOffer(request.offer_id, qc(1), 10, T0 + 30)]

    assert await state.locate([1]) == {1: CallLocation.OFFERED}
    assert await queue_ids(state) == [2]
    assert await present(state, 10) == AgentPresence(
        10, CITY, AgentState.OFFERED, "i1", T0 + 4, offer_id=request.offer_id
    )
    city = await view(state)
    assert (city.idle, city.offered, city.waiting) == ((), 1, 1)
    assert await state.claim([]) == []


async def test_claim_needs_a_queued_call_and_an_available_agent(state: HotState) -> None:
    await state.enqueue([qc(1), qc(2)])
    await make_available(state, 10)
    await make_available(state, 11)
    await state.agent_connect(12, CITY, instance="i1", now=T0, call_id=None)  # on break
    await state.agent_connect(13, CITY, instance="i1", now=T0, call_id=98)  # busy
    await offer(state, 2, 11)

    made = await state.claim(
        [
            claim(7, 10),  # no such call
            claim(2, 10),  # call already offered
            claim(1, 11),  # agent holds an offer
            claim(1, 12),  # agent on break
            claim(1, 13),  # agent busy
            claim(1, 14),  # agent absent
        ]
    )

    assert made == [None] * 6
    assert await queue_ids(state) == [1]
    assert await idle_ids(state) == [10]


async def test_claims_in_one_batch_apply_in_order(state: HotState) -> None:
    await state.enqueue([qc(1), qc(2)])
    await make_available(state, 10)
    await make_available(state, 11)
    batch = [claim(1, 10), claim(1, 11), claim(2, 10), claim(2, 11)]

    made = await state.claim(batch)

    assert made == [
        HeldOffer(batch[0].offer_id, qc(1), 10, batch[0].expires_at),
        None,
        None,
        HeldOffer(batch[3].offer_id, qc(2), 11, batch[3].expires_at),
    ]


async def test_claim_refuses_an_offer_id_in_use(state: HotState) -> None:
    await state.enqueue([qc(1), qc(2)])
    await make_available(state, 10)
    await make_available(state, 11)
    held = await offer(state, 1, 10)

    assert await state.claim([OfferClaim(held.offer_id, 2, 11, T0 + 100)]) == [None]


async def test_concurrent_claims_never_double_book(backend: Backend) -> None:
    instances = [backend.state, backend.peer()]
    calls, agents = range(1, 21), range(101, 121)
    await backend.state.enqueue([qc(c) for c in calls])
    for agent_id in agents:
        await make_available(backend.state, agent_id)
    attempts = [claim(c, a) for c in calls for a in agents]
    random.Random(7).shuffle(attempts)

    async def claimant(worker: int) -> list[HeldOffer | None]:
        mine = attempts[worker::40]
        state = instances[worker % 2]
        made: list[HeldOffer | None] = []
        for start in range(0, len(mine), 3):
            made += await state.claim(mine[start : start + 3])
        return made

    made = [held for batch in await asyncio.gather(*map(claimant, range(40))) for held in batch]

    held_offers = [held for held in made if held is not None]
    # Every pair was tried, so a call left unoffered would mean every agent was taken.
    assert sorted(h.call.call_id for h in held_offers) == list(calls)
    assert sorted(h.agent_id for h in held_offers) == list(agents)
    for held in held_offers:
        assert (await present(backend.state, held.agent_id)).offer_id == held.offer_id
    assert set((await backend.state.locate(list(calls))).values()) == {CallLocation.OFFERED}


# --- lending: helpers' agents serving a host, within its seat quota -----------------------------

HOST, HELPER = CITY, OTHER  # OTHER's agents take CITY's calls in these tests


def lent(call_id: int, agent_id: int, *, surge_id: int = 1, quota: int = 1) -> OfferClaim:
    """A claim for a surge: a helper's agent takes a host's call within the helper's quota."""
    return OfferClaim(uuid.uuid4().hex, call_id, agent_id, T0 + 100, Lend(surge_id, quota))


async def lent_counts(state: HotState, city: str = HELPER) -> dict[str, int]:
    """How many of the city's agents serve each host."""
    return dict((await view(state, city)).lent)


async def test_an_agent_is_lent_while_it_holds_another_citys_offer_or_call(
    state: HotState,
) -> None:
    await state.enqueue([qc(c) for c in range(1, 6)])
    for agent_id in (20, 21, 22, 23):
        await make_available(state, agent_id, HELPER, since=T0 + agent_id)
    await make_available(state, 10, HOST)
    held = [await offer(state, call, agent) for call, agent in [(1, 20), (2, 21), (3, 22), (4, 23)]]
    await offer(state, 5, 10)  # a host agent on its own city's call is lent to nobody

    assert await lent_counts(state) == {HOST: 4}
    assert await lent_counts(state, HOST) == {}
    assert (await present(state, 20)).lent_to == HOST
    assert (await present(state, 10)).lent_to is None
    await state.accept(held[0].offer_id, 20, T0 + 1)
    assert (await present(state, 20)).lent_to == HOST  # a call in hand still counts
    assert await lent_counts(state) == {HOST: 4}
    await state.decline(held[1].offer_id, 21, T0 + 2)
    await state.withdraw(3)
    await state.agent_disconnect(23, instance="i1")
    assert await lent_counts(state) == {HOST: 1}
    assert (await present(state, 21)).lent_to is None
    await state.finish_call(20, 1, T0 + 3)
    assert await lent_counts(state) == {}
    assert (await present(state, 20)).lent_to is None


async def test_expiry_and_reaping_end_the_lending(state: HotState) -> None:
    await state.enqueue([qc(1), qc(2)])
    await make_available(state, 20, HELPER)
    await make_available(state, 21, HELPER, instance="dying")
    await offer(state, 1, 20, expires_at=T0 + 5)
    await offer(state, 2, 21)
    await state.heartbeat("i1", T0 + 100)

    await state.expire_offers(T0 + 10)
    await state.reap_instances(T0 + 100, max_silence_s=30)

    assert await lent_counts(state) == {}


async def test_reconnecting_with_another_citys_call_counts_it_again(state: HotState) -> None:
    back = await state.agent_connect(20, HELPER, instance="i2", now=T0, call_id=77, call_city=HOST)
    own = await state.agent_connect(21, HELPER, instance="i2", now=T0, call_id=78, call_city=HELPER)

    assert back == AgentPresence(20, HELPER, AgentState.BUSY, "i2", T0, call_id=77, lent_to=HOST)
    assert own.lent_to is None
    assert await lent_counts(state) == {HOST: 1}
    again = await state.agent_connect(20, HELPER, instance="i1", now=T0, call_id=77, call_city=HOST)
    assert again.lent_to == HOST
    assert await lent_counts(state) == {HOST: 1}  # already present: not counted twice


async def test_an_agent_leaving_with_a_hosts_call_in_hand_still_counts(state: HotState) -> None:
    await state.enqueue([qc(1), qc(2), qc(3)])
    await make_available(state, 20, HELPER)
    await make_available(state, 21, HELPER)
    [first] = await state.claim([lent(1, 20)])
    assert first is not None
    await state.accept(first.offer_id, 20, T0 + 1)

    await state.agent_disconnect(20, instance="i1")  # a reload: the voice may go on

    assert await lent_counts(state) == {HOST: 1}
    assert await state.claim([lent(2, 21)]) == [None]  # the seat is still taken
    back = await state.agent_connect(20, HELPER, instance="i2", now=T0 + 5, call_id=1,
                                     call_city=HOST)  # fmt: skip
    assert back.lent_to == HOST
    assert await lent_counts(state) == {HOST: 1}  # not twice
    await state.finish_call(20, 1, T0 + 6)
    assert await lent_counts(state) == {}
    # Finished without its agent (released), or gone by the time it is back: no longer counted.
    [second] = await state.claim([lent(2, 21)])
    assert second is not None
    await state.accept(second.offer_id, 21, T0 + 7)
    await state.agent_disconnect(21, instance="i1")
    assert await state.finish_call(21, 2, T0 + 8) is None
    assert await lent_counts(state) == {}
    [third] = await state.claim([lent(3, 20)])
    assert third is not None
    await state.accept(third.offer_id, 20, T0 + 9)
    await state.agent_disconnect(20, instance="i2")
    await state.agent_connect(20, HELPER, instance="i1", now=T0 + 10, call_id=None)
    assert await lent_counts(state) == {}


async def test_a_lost_agent_counts_while_it_has_a_hosts_call(state: HotState) -> None:
    await state.enqueue([qc(1), qc(2)])
    await make_available(state, 20, HELPER)
    await make_available(state, 21, HELPER)
    [call] = await state.claim([lent(1, 20, quota=2)])
    [pending] = await state.claim([lent(2, 21, quota=2)])
    assert call is not None
    assert pending is not None
    await state.accept(call.offer_id, 20, T0 + 1)

    await state.agent_lost(20, instance="i1")  # the voice may go on
    await state.agent_lost(21, instance="i1")  # its offer is requeued: it serves nobody

    assert await lent_counts(state) == {HOST: 1}
    assert (await present(state, 21)).lent_to is None
    await state.finish_call(20, 1, T0 + 2)  # released without it
    assert await lent_counts(state) == {}
    back = await state.agent_connect(20, HELPER, instance="i1", now=T0 + 3, call_id=None)
    assert (back.state, back.lent_to) == (AgentState.BREAK, None)
    await state.enqueue([qc(3)])
    await make_available(state, 20, HELPER)
    [again] = await state.claim([lent(3, 20, quota=2)])
    assert again is not None
    await state.accept(again.offer_id, 20, T0 + 4)
    await state.agent_lost(20, instance="i1")
    back = await state.agent_connect(20, HELPER, instance="i2", now=T0 + 5, call_id=3,
                                     call_city=HOST)  # fmt: skip
    assert (back.state, back.lent_to) == (AgentState.BUSY, HOST)
    assert await lent_counts(state) == {HOST: 1}  # not twice


async def test_a_lent_claim_holds_the_helpers_quota(state: HotState) -> None:
    await state.enqueue([qc(c) for c in range(1, 5)] + [qc(9, HELPER)])
    for agent_id in (20, 21, 22, 23):
        await make_available(state, agent_id, HELPER, since=T0 + agent_id)

    made = await state.claim([lent(1, 20, quota=2), lent(2, 21, quota=2), lent(3, 22, quota=2)])

    assert [held is not None for held in made] == [True, True, False]
    assert await queue_ids(state, HOST) == [3, 4]
    assert await lent_counts(state) == {HOST: 2}
    assert await idle_ids(state, HELPER) == [22, 23]
    # The helper's own call is no loan; a wider quota (the next wave) lets one more serve.
    assert await state.claim([claim(9, 22)]) != [None]
    assert await state.claim([lent(3, 23, quota=3)]) != [None]
    assert await lent_counts(state) == {HOST: 3}


async def test_concurrent_lent_claims_never_exceed_the_quota(backend: Backend) -> None:
    instances = [backend.state, backend.peer()]
    calls, agents, quota = range(1, 31), range(201, 221), 3
    await backend.state.enqueue([qc(c) for c in calls])
    for agent_id in agents:
        await make_available(backend.state, agent_id, HELPER)
    attempts = [lent(c, a, quota=quota) for c in calls for a in agents]
    random.Random(11).shuffle(attempts)

    async def claimant(worker: int) -> list[HeldOffer | None]:
        mine = attempts[worker::40]
        made: list[HeldOffer | None] = []
        for start in range(0, len(mine), 2):
            made += await instances[worker % 2].claim(mine[start : start + 2])
        return made

    made = [held for batch in await asyncio.gather(*map(claimant, range(40))) for held in batch]

    assert len([held for held in made if held is not None]) == quota
    assert await lent_counts(backend.state) == {HOST: quota}
    assert (await view(backend.state, HELPER)).offered == quota


async def test_end_lending_revokes_the_hosts_helper_offers_only(state: HotState) -> None:
    await state.enqueue([qc(c) for c in range(1, 7)] + [qc(8, HELPER)])
    await make_available(state, 20, HELPER, since=T0 + 2)
    await make_available(state, 21, HELPER, since=T0 + 1)
    await make_available(state, 22, HELPER)
    await make_available(state, 10, HOST)
    revoked = await offer(state, 2, 20)
    [accepted] = await state.claim([lent(1, 21, surge_id=7, quota=5)])
    assert accepted is not None
    await state.accept(accepted.offer_id, 21, T0 + 3)
    await offer(state, 3, 10)  # the host's own agent
    await offer(state, 8, 22)  # the helper's own call

    assert await state.end_lending(7, HOST) == [revoked]

    assert await queue_ids(state, HOST) == [2, 4, 5, 6]  # back at its place
    assert await present(state, 20) == AgentPresence(20, HELPER, AgentState.AVAILABLE, "i1", T0 + 2)
    assert (await present(state, 21)).state is AgentState.BUSY  # the call in hand goes on
    assert (await present(state, 10)).state is AgentState.OFFERED
    assert (await present(state, 22)).state is AgentState.OFFERED
    assert await lent_counts(state) == {HOST: 1}
    # No instance can lend for the ended surge any more; a later surge for the host can.
    assert await state.claim([lent(4, 20, surge_id=7, quota=5)]) == [None]
    assert await state.claim([lent(4, 20, surge_id=8, quota=5)]) != [None]
    assert await state.end_lending(9, "nowhere") == []


# --- answers ----------------------------------------------------------------------------------


async def test_accept_makes_the_agent_busy_with_the_call(state: HotState) -> None:
    await state.enqueue([qc(1)])
    await make_available(state, 10, since=T0 + 2)
    held = await offer(state, 1, 10)

    assert await state.accept(held.offer_id, 10, T0 + 50) == (Outcome.DONE, held)

    assert await present(state, 10) == AgentPresence(
        10, CITY, AgentState.BUSY, "i1", T0 + 2, call_id=1
    )
    assert await state.locate([1]) == {1: CallLocation.ABSENT}
    city = await view(state)
    assert (city.offered, city.busy, city.waiting) == (0, 1, 0)
    assert await state.accept(held.offer_id, 10, T0 + 51) == (Outcome.UNKNOWN, None)
    assert await state.decline(held.offer_id, 10, T0 + 51) == (Outcome.UNKNOWN, None)
    assert await state.expire_offers(T0 + 1000) == []


async def test_placeable_snapshot_reads_no_more_than_free_agents_can_take(
    state: HotState,
) -> None:
    await state.enqueue([qc(i) for i in range(1, 6)] + [qc(i, OTHER) for i in range(6, 9)])
    empty = await state.snapshot(list(CITIES), queue_depth=10, placeable_only=True)
    assert [len(v.queue) for v in empty.values()] == [0, 0]
    assert [v.waiting for v in empty.values()] == [5, 3]
    await make_available(state, 10, OTHER)
    await make_available(state, 11, OTHER)
    views = await state.snapshot(list(CITIES), queue_depth=10, placeable_only=True)
    assert [c.call_id for c in views[CITY].queue] == [1, 2]
    assert [c.call_id for c in views[OTHER].queue] == [6, 7]
    full = await state.snapshot(list(CITIES), queue_depth=10)
    assert len(full[CITY].queue) == 5


async def test_placeable_snapshot_reads_only_the_free_agents_the_calls_read_could_use(
    state: HotState,
) -> None:
    for agent_id in range(10, 15):  # idle since T0 + its id: 10 has been idle longest
        await make_available(state, agent_id, since=T0 + agent_id)
    for agent_id in range(20, 24):
        await make_available(state, agent_id, OTHER, since=T0 + agent_id)

    def idle(views: dict[str, CityView]) -> dict[str, list[int]]:
        return {city: [a.agent_id for a in v.idle] for city, v in views.items()}

    nothing = await state.snapshot(list(CITIES), queue_depth=10, placeable_only=True)
    assert idle(nothing) == {CITY: [], OTHER: []}  # no call waits: no agent is read
    await state.enqueue([qc(1), qc(2)])
    own = await state.snapshot(list(CITIES), queue_depth=10, placeable_only=True)
    assert idle(own) == {CITY: [10, 11], OTHER: []}
    assert [c.call_id for c in own[CITY].queue] == [1, 2]
    lending = await state.snapshot(
        list(CITIES),
        queue_depth=10,
        placeable_only=True,
        lends_to={OTHER: [CITY], CITY: ["nowhere"]},
        spare={OTHER: 1, CITY: 2},
    )
    assert idle(lending) == {CITY: [10, 11, 12, 13], OTHER: [20, 21, 22]}
    spare_capped = await state.snapshot(
        list(CITIES),
        queue_depth=10,
        placeable_only=True,
        lends_to={OTHER: [CITY]},
        spare={OTHER: 9},
    )
    assert idle(spare_capped)[OTHER] == [20, 21, 22, 23]
    shallow = await state.snapshot(
        list(CITIES), queue_depth=1, placeable_only=True, lends_to={OTHER: [CITY]}
    )
    assert idle(shallow) == {CITY: [10], OTHER: [20]}
    full = await state.snapshot(list(CITIES), queue_depth=0)
    assert idle(full) == {CITY: [10, 11, 12, 13, 14], OTHER: [20, 21, 22, 23]}
    assert [(v.waiting, v.on_break) for v in lending.values()] == [(2, 0), (0, 0)]


async def test_the_dispatch_view_is_the_mark_and_the_placeable_snapshot_read_together(
    state: HotState,
) -> None:
    await state.enqueue([qc(1), qc(2), qc(6, OTHER)])
    await make_available(state, 10, since=T0 + 1)
    await make_available(state, 20, OTHER, since=T0 + 2)
    lends_to, spare = {OTHER: [CITY]}, {OTHER: 1}
    mark, views = await state.dispatch_view(
        list(CITIES), queue_depth=10, lends_to=lends_to, spare=spare
    )

    assert mark == await state.change_mark()
    assert views == await state.snapshot(
        list(CITIES), queue_depth=10, placeable_only=True, lends_to=lends_to, spare=spare
    )
    # The mark it was given still stands: nothing to look at, nothing read.
    assert await state.dispatch_view(list(CITIES), queue_depth=10, unless_mark=mark) == (
        mark,
        None,
    )
    await state.enqueue([qc(3)])  # a change
    moved, again = await state.dispatch_view(list(CITIES), queue_depth=10, unless_mark=mark)
    assert moved != mark
    assert moved == await state.change_mark()
    assert again is not None
    assert [c.call_id for c in again[CITY].queue] == [1, 2]
    assert await state.dispatch_view([], queue_depth=10) == (moved, {})


async def test_present_agents_lists_every_state(state: HotState) -> None:
    await state.enqueue([qc(1)])
    await make_available(state, 12)
    await make_available(state, 10)
    await state.agent_connect(11, CITY, instance="i1", now=T0, call_id=None)  # on break
    await state.agent_connect(20, OTHER, instance="i1", now=T0, call_id=7)  # busy
    await offer(state, 1, 12)
    assert await state.present_agents([CITY, OTHER, "nowhere"]) == {
        CITY: [10, 11, 12],
        OTHER: [20],
        "nowhere": [],
    }
    await state.agent_disconnect(11, instance="i1")
    assert (await state.present_agents([CITY]))[CITY] == [10, 12]


async def test_agents_reads_every_known_agent_with_its_state_and_since(state: HotState) -> None:
    await state.enqueue([qc(1), qc(2, OTHER)])
    before = time.time() - 1
    await make_available(state, 12)
    await make_available(state, 10)
    await state.agent_connect(11, CITY, instance="i2", now=T0, call_id=None)  # on break
    await state.agent_connect(20, OTHER, instance="i1", now=T0, call_id=7, call_city=CITY)
    await state.agent_connect(21, OTHER, instance="i1", now=T0, call_id=8)
    await state.agent_lost(21, instance="i1")  # lost, keeping its call
    await make_available(state, 30, "nowhere")
    held = await offer(state, 1, 12)
    read = await state.agents([CITY, OTHER])
    assert [(p.agent_id, p.city, p.state, p.instance) for p in read] == [
        (10, CITY, AgentState.AVAILABLE, "i1"),
        (11, CITY, AgentState.BREAK, "i2"),
        (12, CITY, AgentState.OFFERED, "i1"),
        (20, OTHER, AgentState.BUSY, "i1"),
        (21, OTHER, AgentState.LOST, "i1"),
    ]
    assert read[2].offer_id == held.offer_id
    assert (read[3].call_id, read[3].lent_to) == (7, CITY)
    assert read[4].call_id == 8
    assert all(before <= p.since <= time.time() + 1 for p in read)
    offered_since = read[2].since
    await asyncio.sleep(0.01)
    await state.decline(held.offer_id, 12, T0 + 5)
    (again,) = [p for p in await state.agents([CITY]) if p.agent_id == 12]
    assert again.state is AgentState.AVAILABLE
    assert again.since > offered_since
    assert again.since == (await state.get_agent(12) or again).since
    await state.agent_disconnect(11, instance="i2")
    assert [p.agent_id for p in await state.agents([CITY])] == [10, 12]
    assert await state.agents([]) == []
    assert await state.agents(["empty"]) == []


async def test_get_offer_returns_a_live_offer_only(state: HotState) -> None:
    await state.enqueue([qc(1)])
    await make_available(state, 10)
    held = await offer(state, 1, 10, expires_at=T0 + 30)

    assert await state.get_offer(held.offer_id) == held
    assert await state.get_offer("no-such-offer") is None
    assert await state.accept(held.offer_id, 10, T0 + 1) == (Outcome.DONE, held)
    assert await state.get_offer(held.offer_id) is None


async def test_accept_refuses_unknown_expired_and_foreign_offers(state: HotState) -> None:
    await state.enqueue([qc(1)])
    await make_available(state, 10)
    await make_available(state, 11)
    held = await offer(state, 1, 10, expires_at=T0 + 30)

    assert await state.accept("no-such-offer", 10, T0 + 1) == (Outcome.UNKNOWN, None)
    assert await state.accept(held.offer_id, 11, T0 + 1) == (Outcome.NOT_YOURS, None)
    assert await state.accept(held.offer_id, 10, T0 + 30) == (Outcome.UNKNOWN, None)
    # A late answer leaves the offer to the expiry sweep.
    assert await state.locate([1]) == {1: CallLocation.OFFERED}
    assert await state.accept(held.offer_id, 10, T0 + 29) == (Outcome.DONE, held)


async def test_decline_puts_the_call_back_at_its_place(state: HotState) -> None:
    await state.enqueue([qc(1), qc(2)])
    await make_available(state, 10, since=T0)
    await make_available(state, 11, since=T0 + 10)
    held = await offer(state, 1, 10)
    await state.enqueue([qc(3), qc(4, priority=9)])

    assert await state.decline(held.offer_id, 10, T0 + 50) == (Outcome.DONE, held)

    assert await queue_ids(state) == [4, 1, 2, 3]
    assert await present(state, 10) == AgentPresence(10, CITY, AgentState.AVAILABLE, "i1", T0 + 50)
    assert await idle_ids(state) == [11, 10]
    assert (await view(state)).offered == 0
    assert await state.decline(held.offer_id, 10, T0 + 51) == (Outcome.UNKNOWN, None)


async def test_decline_refuses_unknown_expired_and_foreign_offers(state: HotState) -> None:
    await state.enqueue([qc(1)])
    await make_available(state, 10)
    await make_available(state, 11)
    held = await offer(state, 1, 10, expires_at=T0 + 30)

    assert await state.decline("no-such-offer", 10, T0 + 1) == (Outcome.UNKNOWN, None)
    assert await state.decline(held.offer_id, 11, T0 + 1) == (Outcome.NOT_YOURS, None)
    assert await state.decline(held.offer_id, 10, T0 + 31) == (Outcome.UNKNOWN, None)
    assert (await present(state, 10)).state is AgentState.OFFERED


# --- expiry -----------------------------------------------------------------------------------


async def test_expired_offers_requeue_their_calls_and_rest_their_agents(state: HotState) -> None:
    await state.enqueue([qc(1), qc(2), qc(3), qc(4)])
    for agent_id in (10, 11, 12):
        await make_available(state, agent_id)
    first = await offer(state, 1, 10, expires_at=T0 + 10)
    second = await offer(state, 2, 11, expires_at=T0 + 20)
    await offer(state, 3, 12, expires_at=T0 + 30)

    assert await state.expire_offers(T0 + 5) == []
    assert await state.expire_offers(T0 + 20, limit=0) == []
    assert await state.expire_offers(T0 + 20, limit=1) == [first]
    assert await state.expire_offers(T0 + 20) == [second]

    assert await queue_ids(state) == [1, 2, 4]
    assert (await present(state, 10)).state is AgentState.BREAK
    assert (await present(state, 11)).state is AgentState.BREAK
    assert (await present(state, 12)).state is AgentState.OFFERED
    city = await view(state)
    assert (city.on_break, city.offered, city.idle) == (2, 1, ())
    assert await state.accept(first.offer_id, 10, T0 + 1) == (Outcome.UNKNOWN, None)


async def test_concurrent_expiry_hands_out_each_offer_once(backend: Backend) -> None:
    instances = [backend.state, backend.peer()]
    await backend.state.enqueue([qc(c) for c in range(1, 31)])
    for n in range(1, 31):
        await make_available(backend.state, 100 + n)
        await offer(backend.state, n, 100 + n, expires_at=T0 + n)

    async def sweeper(state: HotState) -> list[HeldOffer]:
        ended: list[HeldOffer] = []
        while batch := await state.expire_offers(T0 + 60, limit=4):
            ended += batch
        return ended

    sweeps = await asyncio.gather(*(sweeper(instances[n % 2]) for n in range(6)))

    ended = [held.call.call_id for sweep in sweeps for held in sweep]
    assert sorted(ended) == list(range(1, 31))
    assert await queue_ids(backend.state) == list(range(1, 31))


# --- withdrawal -------------------------------------------------------------------------------


async def test_withdraw_takes_a_queued_call_out(state: HotState) -> None:
    await state.enqueue([qc(1), qc(2)])

    assert await state.withdraw(1) == Withdrawn(CallLocation.QUEUED)

    assert await queue_ids(state) == [2]
    assert await state.locate([1]) == {1: CallLocation.ABSENT}
    assert (await view(state)).oldest_enqueued_at == qc(2).enqueued_at


async def test_withdraw_ends_the_offer_and_frees_the_agent_as_before(state: HotState) -> None:
    await state.enqueue([qc(1)])
    await make_available(state, 10, since=T0 + 7)
    await make_available(state, 11, since=T0 + 9)
    held = await offer(state, 1, 10)

    assert await state.withdraw(1) == Withdrawn(CallLocation.OFFERED, held)

    assert await state.locate([1]) == {1: CallLocation.ABSENT}
    assert await present(state, 10) == AgentPresence(10, CITY, AgentState.AVAILABLE, "i1", T0 + 7)
    assert await idle_ids(state) == [10, 11]
    assert await state.accept(held.offer_id, 10, T0 + 8) == (Outcome.UNKNOWN, None)
    assert await state.expire_offers(T0 + 1000) == []


async def test_withdraw_of_an_absent_call_changes_nothing(state: HotState) -> None:
    assert await state.withdraw(1) == Withdrawn(CallLocation.ABSENT)


# --- agents -----------------------------------------------------------------------------------


async def test_a_new_agent_starts_on_break(state: HotState) -> None:
    presence = await state.agent_connect(10, CITY, instance="i1", now=T0, call_id=None)

    assert presence == AgentPresence(10, CITY, AgentState.BREAK, "i1", T0)
    assert await state.get_agent(10) == presence
    assert (await view(state)).on_break == 1


async def test_an_agent_reconnecting_with_a_call_is_busy(state: HotState) -> None:
    presence = await state.agent_connect(10, CITY, instance="i1", now=T0, call_id=77)

    assert presence == AgentPresence(10, CITY, AgentState.BUSY, "i1", T0, call_id=77)
    assert (await view(state)).busy == 1


async def test_a_present_agent_keeps_its_state_on_another_instance(state: HotState) -> None:
    await state.enqueue([qc(1)])
    await make_available(state, 10, since=T0 + 3)
    held = await offer(state, 1, 10)

    moved = await state.agent_connect(10, OTHER, instance="i2", now=T0 + 9, call_id=55)

    assert moved == AgentPresence(
        10, CITY, AgentState.OFFERED, "i2", T0 + 3, offer_id=held.offer_id
    )
    assert await state.agent_disconnect(10, instance="i1") is None  # the old console's goodbye
    assert await state.get_agent(10) == moved
    assert await state.agent_disconnect(10, instance="i2") == held
    assert await state.get_agent(10) is None


async def test_disconnect_revokes_a_held_offer(state: HotState) -> None:
    await state.enqueue([qc(1), qc(2)])
    await make_available(state, 10)
    held = await offer(state, 1, 10)
    await state.enqueue([qc(3)])

    assert await state.agent_disconnect(10, instance="i1") == held

    assert await state.get_agent(10) is None
    assert await queue_ids(state) == [1, 2, 3]
    city = await view(state)
    assert (city.offered, city.idle, city.on_break) == (0, (), 0)
    assert await state.accept(held.offer_id, 10, T0 + 1) == (Outcome.UNKNOWN, None)
    assert await state.expire_offers(T0 + 1000) == []


async def test_disconnect_leaves_a_connected_call_to_the_database(state: HotState) -> None:
    await state.enqueue([qc(1)])
    await make_available(state, 10)
    held = await offer(state, 1, 10)
    await state.accept(held.offer_id, 10, T0 + 1)

    assert await state.agent_disconnect(10, instance="i1") is None

    assert await state.get_agent(10) is None
    assert (await view(state)).busy == 0
    back = await state.agent_connect(10, CITY, instance="i2", now=T0 + 60, call_id=1)
    assert back == AgentPresence(10, CITY, AgentState.BUSY, "i2", T0 + 60, call_id=1)
    assert await state.agent_disconnect(11, instance="i1") is None  # never connected


async def test_a_lost_agent_gives_back_its_offer_and_gets_no_more(state: HotState) -> None:
    await state.enqueue([qc(1), qc(2)])
    await make_available(state, 10)
    await make_available(state, 11, since=T0 + 1)
    held = await offer(state, 1, 10)

    assert await state.agent_lost(10, instance="i2") is None  # it is on i1: not lost there
    assert await state.agent_lost(10, instance="i1") == held

    assert (await present(state, 10)).state is AgentState.LOST
    assert await queue_ids(state) == [1, 2]
    city = await view(state)
    assert (city.offered, city.busy, city.on_break, await idle_ids(state)) == (0, 0, 0, [11])
    assert await state.present_agents([CITY]) == {CITY: [11]}
    assert await state.claim([claim(2, 10)]) == [None]
    assert await state.accept(held.offer_id, 10, T0 + 2) == (Outcome.UNKNOWN, None)
    with pytest.raises(AgentNotPresent):
        await state.set_agent_state(10, AgentState.AVAILABLE, T0 + 3)
    assert await state.agent_lost(10, instance="i1") is None  # already lost


async def test_a_lost_agent_keeps_its_call_and_takes_it_back_on_connect(state: HotState) -> None:
    await state.enqueue([qc(1)])
    await make_available(state, 10)
    await state.accept((await offer(state, 1, 10)).offer_id, 10, T0 + 1)

    assert await state.agent_lost(10, instance="i1") is None
    lost = await present(state, 10)
    assert (lost.state, lost.call_id) == (AgentState.LOST, 1)
    assert await state.finish_call(10, 1, T0 + 2) is None

    back = await state.agent_connect(10, CITY, instance="i2", now=T0 + 30, call_id=1)
    assert back == AgentPresence(10, CITY, AgentState.BUSY, "i2", T0 + 30, call_id=1)
    assert (await view(state)).busy == 1
    assert await state.present_agents([CITY]) == {CITY: [10]}


async def test_a_lost_agent_without_a_call_comes_back_on_break(state: HotState) -> None:
    await make_available(state, 10)
    await state.agent_lost(10, instance="i1")

    back = await state.agent_connect(10, CITY, instance="i1", now=T0 + 30, call_id=None)

    assert back == AgentPresence(10, CITY, AgentState.BREAK, "i1", T0 + 30)
    assert (await view(state)).on_break == 1


async def test_a_console_back_busy_with_a_call_the_database_does_not_hold_starts_afresh(
    state: HotState,
) -> None:
    await state.enqueue([qc(1), qc(2)])
    await make_available(state, 10, instance="dead")
    await make_available(state, 11, instance="dead")
    for call_id, agent_id in ((1, 10), (2, 11)):
        held = await offer(state, call_id, agent_id)
        await state.accept(held.offer_id, agent_id, T0 + 1)
    # The instance died before recording the accept of call 1: the database holds no call for
    # agent 10. It did record call 2 for agent 11.
    fresh = await state.agent_connect(10, CITY, instance="i2", now=T0 + 5, call_id=None)
    kept = await state.agent_connect(11, CITY, instance="i2", now=T0 + 5, call_id=2)

    assert fresh == AgentPresence(10, CITY, AgentState.BREAK, "i2", T0 + 5)
    assert (kept.state, kept.call_id, kept.instance) == (AgentState.BUSY, 2, "i2")
    assert (await view(state)).on_break == 1
    await state.set_agent_state(10, AgentState.AVAILABLE, T0 + 6)
    assert await idle_ids(state) == [10]


async def test_a_lost_agent_is_reaped_with_its_instance(state: HotState) -> None:
    await make_available(state, 10)
    await state.heartbeat("i1", T0)
    await state.agent_lost(10, instance="i1")

    assert await state.reap_instances(T0 + 100, max_silence_s=10) == Reaped(("i1",), [(10, None)])
    assert await state.get_agent(10) is None


async def test_set_agent_state_moves_between_available_and_break(state: HotState) -> None:
    with pytest.raises(AgentNotPresent):
        await state.set_agent_state(10, AgentState.AVAILABLE, T0)
    await state.agent_connect(10, CITY, instance="i1", now=T0, call_id=None)

    ready = await state.set_agent_state(10, AgentState.AVAILABLE, T0 + 5)
    assert ready == (AgentPresence(10, CITY, AgentState.AVAILABLE, "i1", T0 + 5), None)
    assert await state.set_agent_state(10, AgentState.AVAILABLE, T0 + 8) == ready
    assert await idle_ids(state) == [10]
    resting, _ = await state.set_agent_state(10, AgentState.BREAK, T0 + 9)
    assert resting.state is AgentState.BREAK
    again, _ = await state.set_agent_state(10, AgentState.BREAK, T0 + 10)
    assert again.state is AgentState.BREAK
    city = await view(state)
    assert (city.idle, city.on_break) == ((), 1)
    with pytest.raises(ValueError, match="available or break"):
        await state.set_agent_state(10, AgentState.BUSY, T0 + 11)


async def test_set_agent_state_refuses_an_engaged_agent(state: HotState) -> None:
    await state.enqueue([qc(1)])
    await make_available(state, 10)
    held = await offer(state, 1, 10)
    with pytest.raises(AgentEngaged):
        await state.set_agent_state(10, AgentState.BREAK, T0 + 1)
    await state.accept(held.offer_id, 10, T0 + 1)
    with pytest.raises(AgentEngaged):
        await state.set_agent_state(10, AgentState.AVAILABLE, T0 + 2)
    assert (await present(state, 10)).state is AgentState.BUSY


async def test_finish_call_frees_the_agent_busy_with_it(state: HotState) -> None:
    await state.agent_connect(10, CITY, instance="i1", now=T0, call_id=77)
    await state.agent_connect(11, CITY, instance="i1", now=T0, call_id=None)

    assert await state.finish_call(10, 76, T0 + 5) is None
    assert await state.finish_call(11, 77, T0 + 5) is None
    assert await state.finish_call(12, 77, T0 + 5) is None
    done = await state.finish_call(10, 77, T0 + 6)
    assert done == AgentPresence(10, CITY, AgentState.AVAILABLE, "i1", T0 + 6)
    assert await state.finish_call(10, 77, T0 + 7) is None
    assert await idle_ids(state) == [10]
    assert (await view(state)).busy == 0


async def test_a_finished_call_can_leave_the_agent_in_its_wrap_up(state: HotState) -> None:
    await state.agent_connect(10, CITY, instance="i1", now=T0, call_id=77)
    before = await state.change_mark()

    wrapping = await state.finish_call(10, 77, T0 + 6, wrap_up_s=10.0)

    assert wrapping == AgentPresence(
        10, CITY, AgentState.WRAP_UP, "i1", T0 + 6, wrap_up=WrapUp(77, T0 + 16)
    )
    assert await state.get_agent(10) == wrapping
    assert await state.change_mark() == before  # nobody became free
    assert await idle_ids(state) == []
    assert (await view(state)).busy == 1  # occupied, like a call in hand
    await state.enqueue([qc(1)])
    assert await state.claim([OfferClaim("o1", 1, 10, T0 + 30)]) == [None]  # no offer meanwhile
    assert await state.present_agents([CITY]) == {CITY: [10]}


async def test_a_wrap_up_ends_by_itself_on_the_instance_holding_the_console(
    state: HotState,
) -> None:
    for agent_id, until in ((10, 5.0), (11, 3.0), (12, 20.0)):
        await state.agent_connect(agent_id, CITY, instance="i1", now=T0, call_id=agent_id + 60)
        await state.finish_call(agent_id, agent_id + 60, T0, wrap_up_s=until)
    await state.agent_connect(13, CITY, instance="i2", now=T0, call_id=73)
    await state.finish_call(13, 73, T0, wrap_up_s=1.0)

    assert await state.end_wrap_ups(T0 + 2, instance="i1") == []
    before = await state.change_mark()
    ended = await state.end_wrap_ups(T0 + 6, instance="i1")

    assert ended == [(11, WrapUp(71, T0 + 3)), (10, WrapUp(70, T0 + 5))]  # soonest first
    assert await state.change_mark() != before
    # Available since the wrap-up ended, not since the sweep noticed.
    assert (await view(state)).idle == (
        IdleAgent(11, CITY, T0 + 3),
        IdleAgent(10, CITY, T0 + 5),
    )
    assert (await present(state, 12)).state is AgentState.WRAP_UP
    assert (await present(state, 13)).state is AgentState.WRAP_UP  # i2's to end
    assert await state.end_wrap_ups(T0 + 6, instance="i1") == []
    assert await state.end_wrap_ups(T0 + 6, instance="i2") == [(13, WrapUp(73, T0 + 1))]


async def test_the_agent_may_end_its_wrap_up_sooner(state: HotState) -> None:
    await state.agent_connect(10, CITY, instance="i1", now=T0, call_id=77)
    await state.agent_connect(11, CITY, instance="i1", now=T0, call_id=78)
    await state.finish_call(10, 77, T0 + 1, wrap_up_s=10.0)
    await state.finish_call(11, 78, T0 + 1, wrap_up_s=10.0)

    ready, ended = await state.set_agent_state(10, AgentState.AVAILABLE, T0 + 4)
    resting, rested = await state.set_agent_state(11, AgentState.BREAK, T0 + 4)

    assert (ready, ended) == (AgentPresence(10, CITY, AgentState.AVAILABLE, "i1", T0 + 4),
                              WrapUp(77, T0 + 11))  # fmt: skip
    assert (resting.state, resting.wrap_up, rested) == (AgentState.BREAK, None, WrapUp(78, T0 + 11))
    assert await state.end_wrap_ups(T0 + 20, instance="i1") == []  # nothing left to end
    assert (await present(state, 10)).idle_since == T0 + 4


async def test_a_helper_stays_lent_through_its_wrap_up_of_a_hosts_call(state: HotState) -> None:
    await state.enqueue([qc(1), qc(2)])
    await make_available(state, 20, HELPER)
    await make_available(state, 21, HELPER)
    [first] = await state.claim([lent(1, 20)])
    assert first is not None
    await state.accept(first.offer_id, 20, T0 + 1)
    await state.finish_call(20, 1, T0 + 2, wrap_up_s=10.0)

    assert (await present(state, 20)).lent_to == HOST
    assert await lent_counts(state) == {HOST: 1}
    assert await state.claim([lent(2, 21)]) == [None]  # the host's work is not done yet
    await state.end_wrap_ups(T0 + 12, instance="i1")
    assert await lent_counts(state) == {}
    [second] = await state.claim([lent(2, 21)])
    assert second is not None


async def test_leaving_during_a_wrap_up_ends_it(state: HotState) -> None:
    await state.enqueue([qc(1), qc(2)])
    for agent_id in (20, 21):
        await make_available(state, agent_id, HELPER)
    for call_id, agent_id in ((1, 20), (2, 21)):
        [held] = await state.claim([lent(call_id, agent_id, quota=2)])
        assert held is not None
        await state.accept(held.offer_id, agent_id, T0 + 1)
        await state.finish_call(agent_id, call_id, T0 + 2, wrap_up_s=10.0)

    await state.agent_disconnect(20, instance="i1")
    await state.agent_lost(21, instance="i1")

    assert await state.get_agent(20) is None
    lost = await present(state, 21)
    assert (lost.state, lost.call_id, lost.wrap_up, lost.lent_to) == (AgentState.LOST, None, None,
                                                                      None)  # fmt: skip
    assert await lent_counts(state) == {}  # neither left with a call in hand
    assert await state.end_wrap_ups(T0 + 20, instance="i1") == []
    back = await state.agent_connect(21, HELPER, instance="i1", now=T0 + 21, call_id=None)
    assert back.state is AgentState.BREAK


async def test_an_offline_agent_has_no_presence(state: HotState) -> None:
    assert await state.get_agent(10) is None


# --- instances --------------------------------------------------------------------------------


async def test_reap_disconnects_the_agents_of_silent_instances(state: HotState) -> None:
    await state.heartbeat("i1", T0)
    await state.heartbeat("i2", T0 + 40)
    await state.enqueue([qc(1), qc(2)])
    await make_available(state, 10, instance="i1")
    held = await offer(state, 1, 10)
    await state.agent_connect(11, CITY, instance="i1", now=T0, call_id=77)
    await make_available(state, 12, instance="i2")
    await make_available(state, 13, instance="i1")
    await state.agent_connect(13, CITY, instance="i2", now=T0 + 41, call_id=None)  # moved away

    reaped = await state.reap_instances(T0 + 60, max_silence_s=30)

    assert reaped.instances == ("i1",)
    assert sorted(reaped.agents, key=lambda pair: pair[0]) == [(10, held), (11, None)]
    assert await state.get_agent(10) is None
    assert await state.get_agent(11) is None
    assert await queue_ids(state) == [1, 2]
    assert await idle_ids(state) == [12, 13]
    # i2 has been silent for exactly 30 s: not longer.
    assert await state.reap_instances(T0 + 70, max_silence_s=30) == Reaped()
    assert [
        agent for agent, _ in (await state.reap_instances(T0 + 71, max_silence_s=30)).agents
    ] in (
        [12, 13],
        [13, 12],
    )


async def test_an_instance_that_never_beat_is_reapable_from_its_first_agent(
    state: HotState,
) -> None:
    await state.agent_connect(10, CITY, instance="i3", now=T0, call_id=None)

    assert await state.reap_instances(T0 + 30, max_silence_s=30) == Reaped()
    assert await state.reap_instances(T0 + 31, max_silence_s=30) == Reaped(("i3",), [(10, None)])


async def test_a_heartbeat_keeps_an_instance_alive(state: HotState) -> None:
    await state.agent_connect(10, CITY, instance="i1", now=T0, call_id=None)
    await state.heartbeat("i1", T0 + 50)

    assert await state.reap_instances(T0 + 60, max_silence_s=30) == Reaped()
    assert await state.get_agent(10) is not None


# --- rate limits ------------------------------------------------------------------------------


async def test_hits_count_within_a_fixed_window(state: HotState) -> None:
    assert [await state.count_hit("login:ann", window_s=60) for _ in range(3)] == [1, 2, 3]
    assert await state.count_hit("login:bob", window_s=60) == 1
    await state.reset_hits("login:ann")
    assert await state.count_hit("login:ann", window_s=60) == 1
    await state.reset_hits("never-hit")

    assert await state.count_hit("burst", window_s=0.2) == 1
    assert await state.count_hit("burst", window_s=0.2) == 2
    await asyncio.sleep(0.3)
    assert await state.count_hit("burst", window_s=0.2) == 1


async def test_a_forgiven_hit_is_taken_back_but_never_below_zero(state: HotState) -> None:
    assert await state.count_hit("from:a", window_s=60) == 1
    assert await state.count_hit("from:a", window_s=60) == 2
    await state.forgive_hit("from:a")
    assert await state.count_hit("from:a", window_s=60) == 2
    for _ in range(3):
        await state.forgive_hit("from:a")
    await state.forgive_hit("never-hit")
    assert await state.count_hit("from:a", window_s=60) == 1
    assert await state.count_hit("never-hit", window_s=60) == 1


# --- events -----------------------------------------------------------------------------------


class Collector:
    """Listens to one instance's bus in the background and hands over events, leaving out
    readiness probes."""

    def __init__(self, state: HotState) -> None:
        self._state = state
        self._inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._pump(state))

    async def _pump(self, state: HotState) -> None:
        async for event in state.listen():
            self._inbox.put_nowait(event)
        self._inbox.put_nowait(None)  # the listener ended

    async def ready(self) -> None:
        """Echo probes until one arrives: from then on, nothing sent to it is missed."""
        token = uuid.uuid4().hex
        async with asyncio.timeout(5):
            while True:
                await self._state.echo({"probe": token})
                await asyncio.sleep(0.01)
                while not self._inbox.empty():
                    event = self._inbox.get_nowait()
                    assert event is not None
                    if event.get("probe") == token:
                        return

    async def next(self) -> dict[str, Any] | None:
        """The next event that is not a probe, or None once the listener has ended."""
        async with asyncio.timeout(5):
            while (event := await self._inbox.get()) is not None and "probe" in event:
                pass
        return event

    async def heard(self) -> list[dict[str, Any] | None]:
        """Every event that arrived before a mark echoed now (what was sent before it)."""
        mark = {"mark": uuid.uuid4().hex}
        await self._state.echo(mark)
        events = []
        while (event := await self.next()) != mark:
            events.append(event)
        return events

    async def stop(self) -> None:
        """Cancel the listening task, which closes the listener."""
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task


async def test_an_event_reaches_every_other_instance_not_its_sender(backend: Backend) -> None:
    other = backend.peer()
    near, far = Collector(backend.state), Collector(other)
    await near.ready()
    await far.ready()

    sent: list[dict[str, Any]] = [{"type": "queue", "n": n, "cities": [CITY]} for n in range(3)]
    for event in sent:
        await backend.state.publish(event)
    answer = {"type": "agent", "text": "多援一"}
    await other.publish(answer)

    if backend.kind == "memory":
        assert await near.heard() == []  # its one instance has nobody else to tell
    else:
        assert await far.heard() == sent
        assert await near.heard() == [answer]
    await near.stop()
    await far.stop()


async def reaches_a_stranger(backend: Backend, sender: HotState) -> bool:
    """Whether what `sender` publishes now reaches a bus channel that a listener subscribed
    to without a hello (so that no instance knows of it)."""
    client = redis_client(backend.url, cluster=backend.kind == "cluster")
    pubsub = client.pubsub()
    channel = f"{backend.prefix}events:stranger"
    heard: list[Any] = []
    try:
        await pubsub.subscribe(channel)
        async with asyncio.timeout(5):
            while (await pubsub.get_message(timeout=1) or {}).get("type") != "subscribe":
                pass
            await sender.publish({"n": 0})
            await client.publish(channel, "mark")  # after the sender's, if it sent one
            while (message := await pubsub.get_message(timeout=1)) is None or (
                message["data"] != b"mark"
            ):
                if message is not None:
                    heard.append(message["data"])
        await pubsub.unsubscribe(channel)
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated in redis-py
        await client.aclose()
    return bool(heard)


async def listening_peer(
    backend: Backend, *, alone_after_s: float | None = None
) -> tuple[HotState, Collector]:
    """Another instance, its listener subscribed (and its hello answered)."""
    peer = backend.peer(alone_after_s=alone_after_s)
    collector = Collector(peer)
    await collector.ready()
    return peer, collector


@pytest.mark.parametrize("backend", ["redis", "cluster"], indirect=True)
async def test_an_instance_alone_publishes_to_nobody_once_its_readings_found_nobody_long_enough(
    backend: Backend,
) -> None:
    lone, near = await listening_peer(backend, alone_after_s=0.3)

    await lone.heartbeat("lone", T0)
    assert await reaches_a_stranger(backend, lone)  # alone only for 0.3 s in a row
    await asyncio.sleep(0.3)
    await lone.heartbeat("lone", T0 + 1)
    assert not await reaches_a_stranger(backend, lone)  # alone: it sends nothing
    await backend.state.heartbeat("other", T0 + 1)  # another instance, registered, not listening
    await lone.heartbeat("lone", T0 + 2)
    assert await reaches_a_stranger(backend, lone)
    await near.stop()


@pytest.mark.parametrize("backend", ["redis", "cluster"], indirect=True)
async def test_an_instance_listening_keeps_one_that_reads_it_from_being_alone(
    backend: Backend,
) -> None:
    lone, near = await listening_peer(backend, alone_after_s=0.0)
    _, far = await listening_peer(backend)  # listening, but in no registry

    await lone.heartbeat("lone", T0)
    await lone.publish({"n": 1})

    assert await far.heard() == [{"n": 1}]
    await near.stop()
    await far.stop()


@pytest.mark.parametrize("backend", ["redis", "cluster"], indirect=True)
async def test_an_instance_alone_reaches_one_that_joins_as_soon_as_it_is_welcomed(
    backend: Backend,
) -> None:
    # Alone from its first reading that finds nobody.
    lone, near = await listening_peer(backend, alone_after_s=0.0)
    await lone.heartbeat("lone", T0)
    assert not await reaches_a_stranger(backend, lone)
    joining = backend.peer()
    far = Collector(joining)

    async with asyncio.timeout(5):
        await joining.welcomed()  # the lone one has heard the hello and answered it
    await lone.publish({"n": 1})  # no wait but that one, no reading of the registry since

    assert await far.heard() == [{"n": 1}]
    await near.stop()
    await far.stop()


async def test_finishing_a_call_publishes_its_event_in_the_same_step(backend: Backend) -> None:
    state = backend.state
    far = Collector(backend.peer())
    await far.ready()
    await state.agent_connect(10, CITY, instance="i1", now=T0, call_id=77)

    freed = await state.finish_call(10, 77, T0 + 1, publish={"n": 1, "text": "完成"})

    assert freed is not None
    assert freed.state is AgentState.AVAILABLE
    # Sent whether or not the agent was freed (it is not busy with that call any more).
    assert await state.finish_call(10, 77, T0 + 2, publish={"n": 2}) is None
    sent = [{"n": 1, "text": "完成"}, {"n": 2}]
    assert await far.heard() == ([] if backend.kind == "memory" else sent)
    await far.stop()


async def test_a_listener_gets_events_from_when_it_listens(state: HotState) -> None:
    await state.echo({"n": 0})
    collector = Collector(state)
    await collector.ready()
    await state.echo({"n": 1})

    assert await collector.next() == {"n": 1}
    await collector.stop()


async def test_close_ends_the_listeners(backend: Backend) -> None:
    instance = backend.peer()
    collector = Collector(instance)
    await collector.ready()

    await instance.close()

    assert await collector.next() is None


async def test_close_ends_a_listener_paused_between_events(backend: Backend) -> None:
    instance = backend.peer()
    events = instance.listen()
    first = asyncio.ensure_future(anext(events))
    async with asyncio.timeout(5):
        while not first.done():
            await instance.echo({"probe": "first"})
            await asyncio.sleep(0.01)
    assert first.result() == {"probe": "first"}

    await instance.close()

    # The listener ends at once, even with more probes on their way to it.
    async with asyncio.timeout(5):
        assert [event async for event in events] == []


# --- epoch ------------------------------------------------------------------------------------


async def test_the_first_epoch_marked_is_the_one_every_instance_adopts(backend: Backend) -> None:
    assert await backend.state.epoch() is None
    assert await backend.state.begin_epoch("first") == "first"
    assert await backend.peer().begin_epoch("second") == "first"
    assert await backend.peer().epoch() == "first"


async def test_a_lost_state_has_no_epoch(state: HotState) -> None:
    await state.begin_epoch("built")
    await state.reset()  # what a Redis restarted empty looks like
    assert await state.epoch() is None
    assert await state.begin_epoch("rebuilt") == "rebuilt"


# --- change mark ------------------------------------------------------------------------------


async def test_the_change_mark_moves_when_an_offer_may_have_become_possible(
    backend: Backend,
) -> None:
    state = backend.state

    async def moved(step: Any) -> bool:
        before = await state.change_mark()
        await step
        after = await state.change_mark()
        # Every instance reads the same mark.
        assert await backend.peer().change_mark() == after
        return after != before

    assert await moved(state.enqueue([qc(1), qc(2), qc(9, OTHER)]))  # calls arrive
    assert not await moved(state.enqueue([qc(1)]))  # one already held: nothing new
    assert not await moved(state.agent_connect(10, CITY, instance="i1", now=T0, call_id=None))
    assert await moved(state.set_agent_state(10, AgentState.AVAILABLE, T0))  # an agent is free
    assert not await moved(state.set_agent_state(10, AgentState.AVAILABLE, T0))
    first = await state.change_mark()
    [held] = await state.claim([claim(1, 10)])
    assert held is not None
    assert await state.change_mark() == first  # an offer made
    # The call is back in its queue, the agent free.
    assert await moved(state.decline(held.offer_id, 10, T0 + 1))
    held = await offer(state, 1, 10)
    assert not await moved(state.accept(held.offer_id, 10, T0 + 2))
    assert await moved(state.finish_call(10, 1, T0 + 3))
    assert not await moved(state.set_agent_state(10, AgentState.BREAK, T0 + 4))
    assert not await moved(state.snapshot(CITIES, queue_depth=10))
    assert not await moved(state.withdraw(2))  # a queued call gone: less to place
    # A helper's agent leaves with a host's call in hand: its seat still counts on the quota
    # (no change), until that call is finished without it and the seat comes free.
    await state.enqueue([qc(3)])
    await make_available(state, 20, OTHER)
    [lent_offer] = await state.claim([OfferClaim("lent", 3, 20, T0 + 100, Lend(1, 1))])
    assert lent_offer is not None
    await state.accept("lent", 20, T0 + 5)
    assert not await moved(state.agent_disconnect(20, instance="i1"))
    assert await moved(state.finish_call(20, 3, T0 + 6))
    await state.enqueue([qc(4)])
    await state.set_agent_state(10, AgentState.AVAILABLE, T0 + 7)
    await offer(state, 4, 10, expires_at=T0 + 50)
    assert await moved(state.expire_offers(T0 + 60))  # the call is back in its queue
    # A rebuilt state has a mark of its own, however many changes it has counted.
    await state.begin_epoch("built")
    built = await state.change_mark()
    await state.reset()
    await state.begin_epoch("rebuilt")
    assert await state.change_mark() != built


# --- reset ------------------------------------------------------------------------------------


async def test_reset_forgets_everything(state: HotState) -> None:
    await state.enqueue([qc(1), qc(2, OTHER)])
    await make_available(state, 10)
    await state.agent_connect(11, OTHER, instance="i2", now=T0, call_id=None)
    await offer(state, 1, 10)
    await state.heartbeat("i1", T0)
    await state.count_hit("k", window_s=60)

    await state.reset()

    assert set((await state.locate([1, 2])).values()) == {CallLocation.ABSENT}
    assert await state.get_agent(10) is None
    assert await state.get_agent(11) is None
    assert await state.snapshot(CITIES, queue_depth=5) == {
        city: CityView(city, 0, None, (), (), 0, 0, 0) for city in CITIES
    }
    assert await state.expire_offers(T0 + 1000) == []
    assert (await state.reap_instances(T0 + 1000, max_silence_s=1)).agents == []
    assert await state.count_hit("k", window_s=60) == 1


# --- failures ---------------------------------------------------------------------------------


async def test_an_unreachable_redis_is_state_unavailable() -> None:
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    state = RedisState(client, instance="lonely")
    with pytest.raises(StateUnavailable):
        await state.ping()
    with pytest.raises(StateUnavailable):
        await state.enqueue([qc(1)])
    await state.close()


# --- random interleavings ---------------------------------------------------------------------

AGENTS = range(1, 13)


def agent_city(agent_id: int) -> str:
    """Agents belong to one city for good."""
    return CITIES[agent_id % 2]


@dataclass
class Trial:
    """What the random workers share: the last call id, a clock, and every offer made."""

    last_call: int = 0
    ticks: Iterator[int] = field(default_factory=itertools.count)
    offers: dict[str, HeldOffer] = field(default_factory=dict)


async def random_step(state: HotState, rng: random.Random, trial: Trial) -> None:
    """One random operation, sensible or not; only the invariants afterwards matter."""
    now = T0 + next(trial.ticks) / 10  # offers last 10 to 300 steps
    agent_id = rng.choice(AGENTS)
    match rng.choices(range(11), weights=[2, 6, 3, 1, 1, 2, 2, 1, 1, 1, 1])[0]:
        case 0:
            trial.last_call += 1
            arrivals = [qc(trial.last_call, rng.choice(CITIES), rng.randrange(3))]
            await state.enqueue(arrivals * rng.randint(1, 2))  # sometimes twice
        case 1:
            views = await state.snapshot(CITIES, queue_depth=4)
            heads = [c.call_id for v in views.values() for c in v.queue] or [1]
            free = [a.agent_id for v in views.values() for a in v.idle] or [agent_id]
            batch = [
                OfferClaim(
                    uuid.uuid4().hex,
                    rng.choice(heads),
                    rng.choice(free),
                    now + rng.uniform(1, 30),
                    rng.choice([None, Lend(1, 2)]),
                )
                for _ in range(rng.randint(1, 4))
            ]
            for made in await state.claim(batch):
                if made is not None:
                    trial.offers[made.offer_id] = made
        case 2:
            recent = list(trial.offers.values())[-8:]  # the ones likeliest to be live
            if recent:
                held = rng.choice(recent)
                answer = rng.choice([state.accept, state.decline])
                await answer(held.offer_id, rng.choice([held.agent_id] * 3 + [agent_id]), now)
        case 3:
            await state.expire_offers(now, limit=rng.randint(1, 3))
        case 4:
            await state.withdraw(rng.randint(1, trial.last_call + 1))
        case 5:
            with suppress(AgentNotPresent, AgentEngaged):
                await state.set_agent_state(agent_id, AgentState.AVAILABLE, now)
        case 6:
            presence = await state.get_agent(agent_id)
            if presence is not None and presence.call_id is not None:
                wrap_up_s = rng.choice([0.0, 0.5, 5.0])
                await state.finish_call(agent_id, presence.call_id, now, wrap_up_s=wrap_up_s)
            else:
                with suppress(AgentNotPresent, AgentEngaged):
                    await state.set_agent_state(agent_id, AgentState.BREAK, now)
        case 7:
            await state.agent_disconnect(agent_id, instance=rng.choice(["i1", "i2"]))
        case 8:
            await state.agent_lost(agent_id, instance=rng.choice(["i1", "i2"]))
        case 9:
            await state.end_wrap_ups(now, instance=rng.choice(["i1", "i2"]), limit=2)
        case _:
            await state.agent_connect(
                agent_id,
                agent_city(agent_id),
                instance=rng.choice(["i1", "i2"]),
                now=now,
                call_id=rng.choice([None, None, rng.randrange(500, 600)]),
                call_city=rng.choice(CITIES),
            )


async def check_invariants(
    state: HotState, call_ids: Sequence[int], offers: dict[str, HeldOffer]
) -> list[str]:
    """Check that every call is in one place and every offer has one agent; return the offers."""
    where = await state.locate(call_ids)
    views = await state.snapshot(CITIES, queue_depth=10_000)
    agents = [await state.get_agent(a) for a in AGENTS]
    present_agents = [a for a in agents if a is not None]

    queued = [c.call_id for v in views.values() for c in v.queue]
    assert len(queued) == len(set(queued))
    assert set(queued) == {c for c, place in where.items() if place is CallLocation.QUEUED}
    for city, city_view in views.items():
        assert city_view.waiting == len(city_view.queue)
        assert [c.score for c in city_view.queue] == sorted(c.score for c in city_view.queue)
        assert all(c.city == city for c in city_view.queue)
        ages = [c.enqueued_at for c in city_view.queue]
        assert city_view.oldest_enqueued_at == (min(ages) if ages else None)
        mine = [a for a in present_agents if a.city == city]
        idle = sorted((a.idle_since, a.agent_id) for a in mine if a.state is AgentState.AVAILABLE)
        assert [(a.idle_since, a.agent_id) for a in city_view.idle] == idle
        engaged = (AgentState.OFFERED, AgentState.BUSY, AgentState.WRAP_UP)
        offered, busy, wrapping_up = (sum(a.state is s for a in mine) for s in engaged)
        assert [city_view.offered, city_view.busy] == [offered, busy + wrapping_up]
        assert city_view.on_break == sum(a.state is AgentState.BREAK for a in mine)
        hosts = [a.lent_to for a in mine if a.lent_to is not None]
        # Agents that left with a host's call in hand still count: at most the absent ones.
        assert all(city_view.lent.get(host, 0) >= hosts.count(host) for host in hosts)
        absent = sum(agent_city(a) == city for a in AGENTS) - len(mine)
        assert 0 <= sum(city_view.lent.values()) - len(hosts) <= absent
        assert city not in city_view.lent

    held = [a.offer_id for a in present_agents if a.state is AgentState.OFFERED]
    assert None not in held
    live = [offer_id for offer_id in held if offer_id is not None]
    assert len(live) == len(set(live))  # an offer is held by one agent
    offered_calls = [offers[offer_id].call.call_id for offer_id in live]
    assert len(offered_calls) == len(set(offered_calls))  # a call is offered once
    assert set(offered_calls) == {c for c, place in where.items() if place is CallLocation.OFFERED}
    for agent in present_agents:
        assert (agent.offer_id is not None) == (agent.state is AgentState.OFFERED)
        if agent.state is AgentState.BUSY:
            assert agent.call_id is not None
        elif agent.state is not AgentState.LOST:  # a lost agent keeps its call in hand
            assert agent.call_id is None
        if agent.call_id is not None and agent.call_id in where:
            assert where[agent.call_id] is CallLocation.ABSENT
        if agent.offer_id is not None:
            host = offers[agent.offer_id].call.city
            assert agent.lent_to == (None if host == agent.city else host)
        assert (agent.wrap_up is not None) == (agent.state is AgentState.WRAP_UP)
        if agent.state not in (
            AgentState.OFFERED, AgentState.BUSY, AgentState.WRAP_UP, AgentState.LOST
        ):  # fmt: skip
            assert agent.lent_to is None
        if agent.state is AgentState.LOST and agent.call_id is None:
            assert agent.lent_to is None
    return live


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_interleavings_keep_the_invariants(backend: Backend, seed: int) -> None:
    instances = [backend.state, backend.peer()]
    for agent_id in AGENTS:
        await make_available(backend.state, agent_id, agent_city(agent_id))
    trial = Trial()

    async def worker(n: int) -> None:
        rng = random.Random(seed * 100 + n)
        for _ in range(100):
            await random_step(instances[n % 2], rng, trial)
            await asyncio.sleep(0)  # lets the memory adapter's callers interleave too

    await asyncio.gather(*map(worker, range(4)))

    call_ids = range(1, trial.last_call + 1)
    live = await check_invariants(backend.state, call_ids, trial.offers)
    swept = await backend.state.expire_offers(T0 + 10_000, limit=1_000)
    assert sorted(held.offer_id for held in swept) == sorted(live)
    assert await check_invariants(backend.state, call_ids, trial.offers) == []
