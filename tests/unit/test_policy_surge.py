"""The surge rules of the routing policy: overflow, quotas, lender protection, fair sharing."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.router.policy import (
    Assignment,
    CitySnapshot,
    Snapshot,
    SurgeView,
    decide,
    helper_reserves,
    lending_refusal,
    own_service_level,
)
from surge.state.base import IdleAgent, QueuedCall

NOW = 1_800_000_000.0
HOST, XZ, SZ, LYG = "320100", "320300", "320500", "320700"


def calls(city: str, *ids: int, waited: float = 60.0) -> list[QueuedCall]:
    """Calls of `city` that have waited `waited` seconds (ids follow arrival)."""
    return [QueuedCall(i, city, 0, NOW - waited + i / 1000, "13812345678", "phone") for i in ids]


def agents(city: str, *ids: int) -> list[IdleAgent]:
    """Free agents of `city`; a lower id has been idle longer."""
    return [IdleAgent(i, city, NOW - 1000 + i) for i in ids]


def surge(quotas: dict[str, int], *, after: float = 0.0, surge_id: int = 7) -> SurgeView:
    """An active surge for HOST."""
    return SurgeView(surge_id, HOST, after, quotas)


def pairs(decisions: list[Assignment]) -> list[tuple[int, int, int | None]]:
    """(call, agent, surge) of each decision."""
    return [(d.call_id, d.agent_id, d.surge_id) for d in decisions]


def test_a_call_transferred_to_the_host_waits_for_the_hosts_own_agents() -> None:
    handed = QueuedCall(1, HOST, 0, NOW - 90, "13812345678", "phone", "本地")
    fresh = calls(HOST, 2, 3)
    queue = [handed, *fresh]
    only_helpers = Snapshot(
        NOW,
        {
            HOST: CitySnapshot.build(HOST, queue, []),
            XZ: CitySnapshot.build(XZ, [], agents(XZ, 100)),
        },
        surges=(surge({XZ: 5}),),
    )
    # The one free helper takes the fresh call behind it, never the transferred one.
    assert pairs(decide(only_helpers)) == [(2, 100, 7)]
    with_a_host_agent = Snapshot(
        NOW,
        {
            HOST: CitySnapshot.build(HOST, queue, agents(HOST, 10)),
            XZ: CitySnapshot.build(XZ, [], agents(XZ, 100)),
        },
        surges=(surge({XZ: 5}),),
    )
    assert pairs(decide(with_a_host_agent)) == [(1, 10, None), (2, 100, 7)]


def test_no_surge_no_overflow() -> None:
    snapshot = Snapshot(
        NOW,
        {
            HOST: CitySnapshot.build(HOST, calls(HOST, 1), []),
            XZ: CitySnapshot.build(XZ, [], agents(XZ, 100)),
        },
    )
    assert decide(snapshot) == []


def test_host_calls_overflow_to_helpers_once_no_host_agent_is_free() -> None:
    snapshot = Snapshot(
        NOW,
        {
            HOST: CitySnapshot.build(HOST, calls(HOST, 1, 2, 3), agents(HOST, 50)),
            XZ: CitySnapshot.build(XZ, [], agents(XZ, 100, 101)),
        },
        (surge({XZ: 5}),),
    )
    # The host's own free agent takes the head call; the rest overflow, longest idle first.
    assert pairs(decide(snapshot)) == [(1, 50, None), (2, 100, 7), (3, 101, 7)]


def test_longest_idle_agent_across_helper_cities_gets_the_call() -> None:
    snapshot = Snapshot(
        NOW,
        {
            HOST: CitySnapshot.build(HOST, calls(HOST, 1, 2), []),
            XZ: CitySnapshot.build(XZ, [], [IdleAgent(100, XZ, NOW - 10)]),
            SZ: CitySnapshot.build(SZ, [], [IdleAgent(200, SZ, NOW - 500)]),
        },
        (surge({XZ: 5, SZ: 5}),),
    )
    assert pairs(decide(snapshot)) == [(1, 200, 7), (2, 100, 7)]


def test_quota_counts_agents_already_serving_the_host() -> None:
    snapshot = Snapshot(
        NOW,
        {
            HOST: CitySnapshot.build(HOST, calls(HOST, 1, 2, 3), []),
            XZ: CitySnapshot.build(XZ, [], agents(XZ, 100, 101, 102), serving={HOST: 1}),
        },
        (surge({XZ: 2}),),
    )
    assert pairs(decide(snapshot)) == [(1, 100, 7)]


def test_helper_own_calls_come_first() -> None:
    snapshot = Snapshot(
        NOW,
        {
            HOST: CitySnapshot.build(HOST, calls(HOST, 1, 2, 3), []),
            # Xuzhou has one own call and two agents: its call first, then one agent helps.
            XZ: CitySnapshot.build(XZ, calls(XZ, 50), agents(XZ, 100, 101)),
            # Suzhou has more own calls waiting than the head shown: it lends nothing.
            SZ: CitySnapshot.build(SZ, calls(SZ, 60), agents(SZ, 200, 201), waiting=3),
        },
        (surge({XZ: 5, SZ: 5}),),
    )
    assert pairs(decide(snapshot)) == [(50, 100, None), (60, 200, None), (1, 101, 7)]


WUXI = "320200"


@pytest.mark.parametrize(
    ("own", "free", "reserve", "level", "target", "lent"),
    [
        # The case: 3 own calls, 4 agents freed together. No reserve: the 4th helps.
        (3, 4, 0, None, None, 1),
        # A reserve of 1 keeps the 4th for Wuxi's next caller.
        (3, 4, 1, None, None, 0),
        (0, 4, 2, None, None, 2),  # lends only what is beyond its reserve
        (0, 2, 2, None, None, 0),
        (0, 4, 0, 0.72, 0.8, 0),  # own service level under the target: the guard stops it
        (0, 4, 0, 0.8, 0.8, 3),  # at the target it lends (3: the host has 3 calls)
        (0, 4, 0, None, 0.8, 3),  # no own call in the window is healthy
        (0, 4, 0, 0.5, None, 3),  # no guard (the simulator's part-1 scenarios)
    ],
)
def test_lender_protection(
    own: int, free: int, reserve: int, level: float | None, target: float | None, lent: int
) -> None:
    snapshot = Snapshot(
        NOW,
        {
            HOST: CitySnapshot.build(HOST, calls(HOST, 1, 2, 3), []),
            WUXI: CitySnapshot.build(
                WUXI,
                calls(WUXI, *range(50, 50 + own)),
                agents(WUXI, *range(100, 100 + free)),
                service_level=level,
            ),
        },
        (SurgeView(7, HOST, 0.0, {WUXI: 5}, reserves={WUXI: reserve}),),
        protection_service_level=target,
    )
    decisions = decide(snapshot)
    assert [d.call_id for d in decisions if d.surge_id is None] == list(range(50, 50 + own))
    assert len([d for d in decisions if d.surge_id == 7]) == lent


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ({}, None),
        ({"service_level": 0.72, "target": 0.8}, "own service level 0.72 under 0.80"),
        ({"service_level": 0.72, "target": None}, None),
        ({"service_level": None, "target": 0.8}, None),
        ({"own_waiting": 1}, "own calls waiting"),
        ({"in_use": 4}, "quota full"),
        ({"reserve": 3}, "reserve"),
        ({"reserve": 2}, None),
        ({"free": 0}, None),  # nothing held back: its next free agent goes to the host
        ({"free": 0, "reserve": 1}, "reserve"),
    ],
)
def test_lending_refusal_says_why(state: dict[str, Any], reason: str | None) -> None:
    given = {"service_level": None, "target": None, "own_waiting": 0, "in_use": 0, "quota": 4,
             "free": 3, "reserve": 0, **state}  # fmt: skip
    assert lending_refusal(**given) == reason


@pytest.mark.parametrize(
    ("in_time", "counted", "level"),
    [
        (0, 0, None),  # no call in the window: healthy
        (0, 1, 0.9),  # one late call of a quiet window counts as one of ten
        (0, 2, 0.8),
        (0, 3, 0.7),
        (2, 5, 0.7),
        (7, 10, 0.7),
        (8, 10, 0.8),
        (45, 50, 0.9),
    ],
)
def test_own_service_level_small_samples(in_time: int, counted: int, level: float | None) -> None:
    assert own_service_level(in_time, counted) == (None if level is None else pytest.approx(level))


YZ = "321000"


def test_two_hosts_sharing_a_helper_longest_wait_first() -> None:
    # The case: Nanjing's surge is older, but Yangzhou's callers have waited 17.5 s
    # while Nanjing's waited 2.3 s: Wuxi's agents take Yangzhou's calls first.
    snapshot = Snapshot(
        NOW,
        {
            HOST: CitySnapshot.build(HOST, calls(HOST, 1, 2, 3, 4, waited=2.3), []),
            YZ: CitySnapshot.build(YZ, calls(YZ, 10, 11, waited=17.5), []),
            WUXI: CitySnapshot.build(WUXI, [], agents(WUXI, 100, 101, 102, 103)),
        },
        (SurgeView(1, HOST, 0.0, {WUXI: 4}), SurgeView(2, YZ, 0.0, {WUXI: 4})),
    )
    assert pairs(decide(snapshot)) == [(10, 100, 2), (11, 101, 2), (1, 102, 1), (2, 103, 1)]


@pytest.mark.parametrize(
    ("severity", "first"),
    [
        (1.0, 10),  # 10 s beats 6 s
        (2.0, 1),  # 6 s x 2 beats 10 s x 1
        (1.6, 10),  # 9.6 < 10
    ],
)
def test_severity_weighs_the_wait(severity: float, first: int) -> None:
    snapshot = Snapshot(
        NOW,
        {
            HOST: CitySnapshot.build(HOST, calls(HOST, 1, waited=6.001), []),
            YZ: CitySnapshot.build(YZ, calls(YZ, 10, waited=10.01), []),
            WUXI: CitySnapshot.build(WUXI, [], agents(WUXI, 100)),
        },
        (SurgeView(1, HOST, 0.0, {WUXI: 4}, severity=severity), SurgeView(2, YZ, 0.0, {WUXI: 4})),
    )
    assert [d.call_id for d in decide(snapshot)] == [first]


def test_a_helper_keeps_the_largest_reserve_its_waves_ask() -> None:
    snapshot = Snapshot(
        NOW,
        {
            HOST: CitySnapshot.build(HOST, calls(HOST, 1, 2, 3), []),
            YZ: CitySnapshot.build(YZ, calls(YZ, 10, 11, 12), []),
            WUXI: CitySnapshot.build(WUXI, [], agents(WUXI, 100, 101, 102, 103)),
        },
        (
            SurgeView(1, HOST, 0.0, {WUXI: 4}, reserves={WUXI: 2}),
            SurgeView(2, YZ, 0.0, {WUXI: 4}),
        ),
    )
    assert len(decide(snapshot)) == 2


def test_overflow_threshold_waits_for_the_host_first() -> None:
    fresh = calls(HOST, 1, waited=5)
    old = calls(HOST, 2, waited=40)
    snapshot = Snapshot(
        NOW,
        {
            HOST: CitySnapshot.build(HOST, [*fresh, *old], []),
            XZ: CitySnapshot.build(XZ, [], agents(XZ, 100, 101)),
        },
        (surge({XZ: 5}, after=30),),
    )
    assert pairs(decide(snapshot)) == [(2, 100, 7)]


def test_several_surges_share_a_helper_within_each_quota() -> None:
    other_host = "321000"
    snapshot = Snapshot(
        NOW,
        {
            HOST: CitySnapshot.build(HOST, calls(HOST, 1, 2), []),
            other_host: CitySnapshot.build(other_host, calls(other_host, 10, 11), []),
            LYG: CitySnapshot.build(LYG, [], agents(LYG, 300, 301, 302)),
        },
        (
            surge({LYG: 1}, surge_id=1),
            SurgeView(2, other_host, 0.0, {LYG: 5}),
        ),
    )
    assert pairs(decide(snapshot)) == [(1, 300, 1), (10, 301, 2), (11, 302, 2)]


# --- invariants on random snapshots -----------------------------------------------------------

CITY_CODES = ("320100", "320200", "320300", "320400", "320500")


@st.composite
def surge_snapshots(draw: st.DrawFn) -> Snapshot:
    """A random province with random queues, free agents, load and surges."""
    next_id = iter(range(1, 10_000))
    cities: dict[str, CitySnapshot] = {}
    for code in CITY_CODES:
        queue = [
            QueuedCall(
                next(next_id),
                code,
                draw(st.integers(0, 2)),
                NOW - draw(st.floats(0, 300)),
                "138",
                "phone",
            )
            for _ in range(draw(st.integers(0, 6)))
        ]
        free = [
            IdleAgent(next(next_id), code, NOW - draw(st.floats(0, 900)))
            for _ in range(draw(st.integers(0, 6)))
        ]
        extra_waiting = draw(st.sampled_from([0, 0, 0, 3]))  # own calls beyond the head shown
        serving = {host: draw(st.integers(0, 3)) for host in CITY_CODES if host != code}
        cities[code] = CitySnapshot.build(
            code,
            queue,
            free,
            waiting=len(queue) + extra_waiting,
            serving=serving,
            service_level=draw(st.none() | st.sampled_from([0.5, 0.79, 0.8, 1.0])),
        )
    hosts = draw(st.lists(st.sampled_from(CITY_CODES), unique=True, max_size=2))
    surges = []
    for n, host in enumerate(hosts, start=1):
        helpers = draw(st.lists(st.sampled_from([c for c in CITY_CODES if c != host]), unique=True))
        quotas = {h: draw(st.integers(0, 4)) for h in helpers}
        reserves = {h: draw(st.integers(0, 3)) for h in helpers}
        after = draw(st.sampled_from([0.0, 30.0, 120.0]))
        severity = draw(st.sampled_from([0.5, 1.0, 3.0]))
        surges.append(SurgeView(n, host, after, quotas, reserves, severity))
    target = draw(st.none() | st.just(0.8))
    return Snapshot(NOW, cities, tuple(surges), protection_service_level=target)


@st.composite
def shared_helper_snapshots(draw: st.DrawFn) -> Snapshot:
    """Two or three overloaded hosts whose surges share helper cities with agents to spare."""
    next_id = iter(range(1, 10_000))
    hosts = draw(st.lists(st.sampled_from(CITY_CODES), unique=True, min_size=2, max_size=3))
    helpers = [code for code in CITY_CODES if code not in hosts]

    def queue(code: str, most: int) -> list[QueuedCall]:
        return [
            QueuedCall(
                next(next_id),
                code,
                draw(st.integers(0, 1)),
                NOW - draw(st.floats(0, 120)),
                "138",
                "phone",
            )
            for _ in range(draw(st.integers(0, most)))
        ]

    def free(code: str, most: int) -> list[IdleAgent]:
        return [
            IdleAgent(next(next_id), code, NOW - draw(st.floats(0, 900)))
            for _ in range(draw(st.integers(0, most)))
        ]

    cities = {code: CitySnapshot.build(code, queue(code, 8), free(code, 1)) for code in hosts}
    for code in helpers:
        cities[code] = CitySnapshot.build(
            code,
            queue(code, 1),
            free(code, 8),
            serving={host: draw(st.integers(0, 2)) for host in hosts},
            service_level=draw(st.none() | st.sampled_from([0.79, 0.9])),
        )
    surges = tuple(
        SurgeView(
            n,
            host,
            draw(st.sampled_from([0.0, 30.0])),
            {h: draw(st.integers(1, 5)) for h in helpers},
            {h: draw(st.integers(0, 2)) for h in helpers},
            draw(st.sampled_from([0.5, 1.0, 3.0])),
        )
        for n, host in enumerate(hosts, start=1)
    )
    target = draw(st.none() | st.just(0.8))
    return Snapshot(NOW, cities, surges, protection_service_level=target)


@settings(max_examples=300)
@given(st.one_of(surge_snapshots(), shared_helper_snapshots()))
def test_surge_invariants(snapshot: Snapshot) -> None:
    decisions = decide(snapshot)
    assert len({d.call_id for d in decisions}) == len(decisions), "a call offered twice"
    assert len({d.agent_id for d in decisions}) == len(decisions), "an agent with two offers"
    call_city = {c.call_id: c for city in snapshot.cities.values() for c in city.queue}
    agent_city = {a.agent_id: a.city for city in snapshot.cities.values() for a in city.free_agents}
    surges = {s.surge_id: s for s in snapshot.surges}
    given_to_host: Counter[tuple[str, str]] = Counter()
    for d in decisions:
        call, helper = call_city[d.call_id], agent_city[d.agent_id]
        if d.surge_id is None:
            assert helper == call.city, "a city's own call went elsewhere without a surge"
            continue
        view = surges[d.surge_id]
        assert call.city == view.host
        assert helper in view.quotas
        assert helper != view.host
        assert snapshot.now - call.enqueued_at >= view.overflow_after_s
        city = snapshot.cities[helper]
        if snapshot.protection_service_level is not None and city.service_level is not None:
            assert city.service_level >= snapshot.protection_service_level, "lent under target"
        given_to_host[(helper, view.host)] += 1
    for (helper, host), count in given_to_host.items():
        quota = max(s.quotas[helper] for s in snapshot.surges if s.host == host)
        assert snapshot.cities[helper].serving.get(host, 0) + count <= quota, "quota broken"
    # Own calls first: a helper agent served a host only if none of its own calls is left.
    assigned = {d.call_id for d in decisions}
    used = {d.agent_id for d in decisions}
    for d in decisions:
        if d.surge_id is not None:
            helper = agent_city[d.agent_id]
            own_placed = sum(1 for e in decisions if e.surge_id is None and e.city == helper)
            assert snapshot.cities[helper].waiting == own_placed, "lent while own calls waited"
    # Never below the reserve: a helper that lent keeps at least its reserve free.
    reserves = helper_reserves(snapshot.surges)
    for helper in {agent_city[d.agent_id] for d in decisions if d.surge_id is not None}:
        left = [a for a in snapshot.cities[helper].free_agents if a.agent_id not in used]
        assert len(left) >= reserves.get(helper, 0), "a helper lent below its reserve"
    # Nothing left undone: no own call waits while an agent of its city is still free.
    for code, city in snapshot.cities.items():
        waiting = [c for c in city.queue if c.call_id not in assigned]
        idle = [a for a in city.free_agents if a.agent_id not in used]
        assert not (waiting and idle), f"{code} left a call waiting beside a free agent"


def weighted_wait(snapshot: Snapshot, surge: SurgeView, call: QueuedCall) -> float:
    """What a call of the surge's host weighs against other hosts' calls."""
    return (snapshot.now - call.enqueued_at) * surge.severity


@settings(max_examples=300)
@given(shared_helper_snapshots())
def test_no_host_with_an_older_weighted_call_is_passed_over(snapshot: Snapshot) -> None:
    decisions = decide(snapshot)
    assigned = {d.call_id for d in decisions}
    calls_by_id = {c.call_id: c for city in snapshot.cities.values() for c in city.queue}
    agent_city = {a.agent_id: a.city for city in snapshot.cities.values() for a in city.free_agents}
    surges = {s.surge_id: s for s in snapshot.surges}
    free = sum(len(city.free_agents) for city in snapshot.cities.values())
    taken = Counter((agent_city[d.agent_id], d.city) for d in decisions if d.surge_id is not None)
    for d in decisions:
        if d.surge_id is None:
            continue
        helper, score = agent_city[d.agent_id], weighted_wait(snapshot, surges[d.surge_id],
                                                              calls_by_id[d.call_id])  # fmt: skip
        for other in snapshot.surges:
            if other.surge_id == d.surge_id or helper not in other.quotas:
                continue
            # The other host's eligible calls up to its first one left: its key in the merge
            # was the score of one of them at every moment.
            prefix: list[QueuedCall] = []
            for c in snapshot.cities[other.host].queue[:free]:
                if snapshot.now - c.enqueued_at < other.overflow_after_s:
                    continue
                prefix.append(c)
                if c.call_id not in assigned:
                    break
            else:
                continue  # every eligible call of the other host was placed
            if min(weighted_wait(snapshot, other, c) for c in prefix) <= score:
                continue
            # The helper gave an agent to a fresher weighted call: the other host's quota of its
            # seats must have been full.
            in_use = (
                snapshot.cities[helper].serving.get(other.host, 0) + taken[(helper, other.host)]
            )
            assert in_use >= other.quotas[helper], f"{other.host} passed over for {d.city}"
