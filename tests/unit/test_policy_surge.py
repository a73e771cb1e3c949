"""The surge rules of the routing policy: overflow to helper cities, quotas, protection floors."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from surge.router.policy import Assignment, CitySnapshot, Snapshot, SurgeView, decide
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


def test_helper_own_calls_come_first_and_protection_floor_holds() -> None:
    snapshot = Snapshot(
        NOW,
        {
            HOST: CitySnapshot.build(HOST, calls(HOST, 1, 2, 3), []),
            # Xuzhou has one own call and two agents: its call first, then one agent helps.
            XZ: CitySnapshot.build(XZ, calls(XZ, 50), agents(XZ, 100, 101)),
            # Suzhou's own queue is at its floor (the head shown is all it can take now).
            SZ: CitySnapshot.build(SZ, calls(SZ, 60), agents(SZ, 200), waiting=3),
        },
        (surge({XZ: 5, SZ: 5}),),
    )
    assert pairs(decide(snapshot)) == [(50, 100, None), (60, 200, None), (1, 101, 7)]


def test_helper_below_its_floor_helps_after_serving_its_own() -> None:
    snapshot = Snapshot(
        NOW,
        {
            HOST: CitySnapshot.build(HOST, calls(HOST, 1), []),
            SZ: CitySnapshot.build(SZ, calls(SZ, 60), agents(SZ, 200, 201), protection_floor=2),
        },
        (surge({SZ: 5}),),
    )
    assert pairs(decide(snapshot)) == [(60, 200, None), (1, 201, 7)]


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
        extra_waiting = draw(st.integers(0, 5))
        serving = {host: draw(st.integers(0, 3)) for host in CITY_CODES if host != code}
        cities[code] = CitySnapshot.build(
            code,
            queue,
            free,
            waiting=len(queue) + extra_waiting,
            serving=serving,
            protection_floor=draw(st.integers(0, 6)),
        )
    hosts = draw(st.lists(st.sampled_from(CITY_CODES), unique=True, max_size=2))
    surges = []
    for n, host in enumerate(hosts, start=1):
        helpers = draw(st.lists(st.sampled_from([c for c in CITY_CODES if c != host]), unique=True))
        quotas = {h: draw(st.integers(0, 4)) for h in helpers}
        surges.append(SurgeView(n, host, draw(st.sampled_from([0.0, 30.0, 120.0])), quotas))
    return Snapshot(NOW, cities, tuple(surges))


@settings(max_examples=300)
@given(surge_snapshots())
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
        assert city.waiting < city.protection_floor, "a helper drained below its floor"
        given_to_host[(helper, view.host)] += 1
    for (helper, host), count in given_to_host.items():
        quota = max(s.quotas[helper] for s in snapshot.surges if s.host == host)
        assert snapshot.cities[helper].serving.get(host, 0) + count <= quota, "quota broken"
    # Own calls first: a helper agent served a host only if none of its own shown calls is left.
    assigned = {d.call_id for d in decisions}
    for d in decisions:
        if d.surge_id is not None:
            helper = agent_city[d.agent_id]
            own_left = [c for c in snapshot.cities[helper].queue if c.call_id not in assigned]
            assert not own_left, "a helper agent served a host while its own calls waited"
    # Nothing left undone: no own call waits while an agent of its city is still free.
    used = {d.agent_id for d in decisions}
    for code, city in snapshot.cities.items():
        waiting = [c for c in city.queue if c.call_id not in assigned]
        idle = [a for a in city.free_agents if a.agent_id not in used]
        assert not (waiting and idle), f"{code} left a call waiting beside a free agent"
