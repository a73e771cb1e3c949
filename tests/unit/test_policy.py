"""The routing policy: table-driven rules, then properties on random snapshots."""

from __future__ import annotations

import copy
import random
from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.router.policy import Assignment, CitySnapshot, Snapshot, decide
from surge.state.base import MAX_PRIORITY, IdleAgent, QueuedCall

T0 = 1_700_000_000.0
HZ, NB, WZ = "330100", "330200", "330300"

Triple = tuple[int, int, str]


def qc(call_id: int, city: str = HZ, priority: int = 0) -> QueuedCall:
    return QueuedCall(call_id, city, priority, T0 + call_id, f"1380000{call_id:04d}", "phone")


def ia(agent_id: int, city: str = HZ, idle_since: float = T0) -> IdleAgent:
    return IdleAgent(agent_id, city, idle_since)


def city(
    code: str, calls: Sequence[QueuedCall] = (), agents: Sequence[IdleAgent] = ()
) -> CitySnapshot:
    return CitySnapshot.build(code, calls, agents)


def snap(*cities: CitySnapshot, now: float = T0 + 1000) -> Snapshot:
    return Snapshot(now, {c.code: c for c in cities})


def triples(assignments: Sequence[Assignment]) -> list[Triple]:
    return [(a.call_id, a.agent_id, a.city) for a in assignments]


CASES = [
    pytest.param(snap(), set(), id="empty-snapshot"),
    pytest.param(snap(city(HZ)), set(), id="city-with-nothing"),
    pytest.param(snap(city(HZ, [qc(1), qc(2)])), set(), id="calls-but-no-agents"),
    pytest.param(snap(city(HZ, [], [ia(1), ia(2)])), set(), id="agents-but-no-calls"),
    pytest.param(snap(city(HZ, [qc(7)], [ia(3)])), {(7, 3, HZ)}, id="one-call-one-agent"),
    pytest.param(
        snap(city(HZ, [qc(3), qc(1), qc(2)])),
        set(),
        id="no-agent-anywhere",
    ),
    pytest.param(
        snap(city(HZ, [qc(1), qc(2), qc(3)], [ia(10)])),
        {(1, 10, HZ)},
        id="more-calls-than-agents-fifo",
    ),
    pytest.param(
        snap(city(HZ, [qc(3), qc(1), qc(2)], [ia(10), ia(11)])),
        {(1, 10, HZ), (2, 11, HZ)},
        id="fifo-regardless-of-input-order",
    ),
    pytest.param(
        snap(city(HZ, [qc(1, priority=0), qc(2, priority=5), qc(3, priority=1)], [ia(10)])),
        {(2, 10, HZ)},
        id="higher-priority-first",
    ),
    pytest.param(
        snap(
            city(
                HZ,
                [
                    qc(5, priority=2),
                    qc(4, priority=2),
                    qc(1, priority=0),
                    qc(9, priority=MAX_PRIORITY),
                ],
                [ia(10), ia(11), ia(12)],
            )
        ),
        {(9, 10, HZ), (4, 11, HZ), (5, 12, HZ)},
        id="fifo-within-priority",
    ),
    pytest.param(
        snap(city(HZ, [qc(1, priority=0)], [ia(10)])),
        {(1, 10, HZ)},
        id="lowest-priority-still-served",
    ),
    pytest.param(
        snap(city(HZ, [qc(1)], [ia(10, idle_since=T0 + 5), ia(11, idle_since=T0), ia(12)])),
        {(1, 11, HZ)},
        id="longest-idle-gets-head-call-tie-by-id",
    ),
    pytest.param(
        snap(city(HZ, [qc(1)], [ia(12, idle_since=T0), ia(10, idle_since=T0 + 0.001)])),
        {(1, 12, HZ)},
        id="longest-idle-beats-lower-id",
    ),
    pytest.param(
        snap(city(HZ, [qc(1)], [ia(12), ia(10), ia(11)])),
        {(1, 10, HZ)},
        id="idle-tie-broken-by-agent-id",
    ),
    pytest.param(
        snap(
            city(HZ, [qc(2), qc(1)], [ia(10, idle_since=T0 + 2), ia(11, idle_since=T0 + 1)]),
        ),
        {(1, 11, HZ), (2, 10, HZ)},
        id="head-call-to-longest-idle-second-to-second",
    ),
    pytest.param(
        snap(city(HZ, [qc(1)], [ia(10), ia(11), ia(12), ia(13)])),
        {(1, 10, HZ)},
        id="more-agents-than-calls",
    ),
    pytest.param(
        snap(city(HZ, [qc(1), qc(2)]), city(NB, [], [ia(20), ia(21)])),
        set(),
        id="no-cross-city-routing",
    ),
    pytest.param(
        snap(
            city(HZ, [qc(1), qc(2), qc(3)], [ia(10)]),
            city(NB, [qc(4, NB)], [ia(20, NB), ia(21, NB)]),
            city(WZ, [qc(5, WZ, priority=1), qc(6, WZ, priority=3)], []),
        ),
        {(1, 10, HZ), (4, 20, NB)},
        id="several-cities",
    ),
    pytest.param(
        snap(
            city(NB, [qc(8, NB), qc(6, NB)], [ia(31, NB, T0 + 1), ia(30, NB, T0 + 2)]),
            city(HZ, [qc(7)], [ia(40, HZ, T0 - 50)]),
        ),
        {(6, 31, NB), (8, 30, NB), (7, 40, HZ)},
        id="several-cities-each-local",
    ),
]


@pytest.mark.parametrize(("snapshot", "expected"), CASES)
def test_decide_table(snapshot: Snapshot, expected: set[Triple]) -> None:
    decided = triples(decide(snapshot))
    assert len(decided) == len(set(decided))
    assert set(decided) == expected
    assert all(a.surge_id is None for a in decide(snapshot))


@pytest.mark.parametrize(("snapshot", "expected"), CASES)
def test_built_snapshots_ignore_input_order(snapshot: Snapshot, expected: set[Triple]) -> None:
    reversed_snapshot = Snapshot(
        snapshot.now,
        {
            code: CitySnapshot.build(c.code, c.queue[::-1], c.free_agents[::-1])
            for code, c in reversed(list(snapshot.cities.items()))
        },
    )
    assert set(triples(decide(reversed_snapshot))) == expected


def test_head_call_is_listed_first_within_a_city() -> None:
    snapshot = snap(city(HZ, [qc(3), qc(2, priority=4), qc(1)], [ia(12), ia(11), ia(10)]))
    assert triples(decide(snapshot)) == [(2, 10, HZ), (1, 11, HZ), (3, 12, HZ)]


def test_call_ids_sort_numerically_not_textually() -> None:
    snapshot = snap(city(HZ, [qc(10), qc(9)], [ia(1)]))
    assert triples(decide(snapshot)) == [(9, 1, HZ)]


def test_priority_beats_huge_id_gap() -> None:
    snapshot = snap(city(HZ, [qc(1, priority=0), qc(2**40 - 1, priority=1)], [ia(1)]))
    assert triples(decide(snapshot)) == [(2**40 - 1, 1, HZ)]


# --- properties ---------------------------------------------------------------------------------

CODES = st.sampled_from([HZ, NB, WZ, "330400", "330500", "宁波"])
IDLE_TIMES = st.one_of(
    st.sampled_from([T0, T0 + 1, T0 + 2]),  # plenty of ties
    st.floats(min_value=T0 - 86_400, max_value=T0, allow_nan=False, allow_infinity=False),
)


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    codes = draw(st.lists(CODES, unique=True, max_size=4))
    call_ids = draw(st.lists(st.integers(0, 2**40 - 1), unique=True, max_size=30))
    agent_ids = draw(st.lists(st.integers(1, 10**9), unique=True, max_size=30))
    calls: dict[str, list[QueuedCall]] = {code: [] for code in codes}
    agents: dict[str, list[IdleAgent]] = {code: [] for code in codes}
    if codes:
        for call_id in call_ids:
            code = draw(st.sampled_from(codes))
            calls[code].append(qc(call_id, code, draw(st.integers(0, MAX_PRIORITY))))
        for agent_id in agent_ids:
            code = draw(st.sampled_from(codes))
            agents[code].append(ia(agent_id, code, draw(IDLE_TIMES)))
    now = draw(st.floats(min_value=T0, max_value=T0 + 86_400))
    return Snapshot(
        now, {code: CitySnapshot.build(code, calls[code], agents[code]) for code in codes}
    )


def reference_queue(calls: Sequence[QueuedCall]) -> list[QueuedCall]:
    """An oracle independent of `score`: priority descending, then call id ascending."""
    return sorted(calls, key=lambda c: (-c.priority, c.call_id))


def reference_idle(agents: Sequence[IdleAgent]) -> list[IdleAgent]:
    return sorted(agents, key=lambda a: (a.idle_since, a.agent_id))


@given(snapshots())
def test_no_call_and_no_agent_assigned_twice(snapshot: Snapshot) -> None:
    decided = decide(snapshot)
    assert len({a.call_id for a in decided}) == len(decided)
    assert len({a.agent_id for a in decided}) == len(decided)


@given(snapshots())
def test_assignments_are_local_and_known(snapshot: Snapshot) -> None:
    calls = {c.call_id: c for cs in snapshot.cities.values() for c in cs.queue}
    agents = {a.agent_id: a for cs in snapshot.cities.values() for a in cs.free_agents}
    for assignment in decide(snapshot):
        call, agent = calls[assignment.call_id], agents[assignment.agent_id]
        assert call.city == agent.city == assignment.city
        assert call in snapshot.cities[assignment.city].queue
        assert agent in snapshot.cities[assignment.city].free_agents
        assert assignment.surge_id is None


@settings(max_examples=200)
@given(snapshots())
def test_each_city_pairs_its_head_calls_with_its_longest_idle(snapshot: Snapshot) -> None:
    decided = decide(snapshot)
    per_city = Counter(a.city for a in decided)
    assert set(per_city) <= set(snapshot.cities)
    for code, cs in snapshot.cities.items():
        k = min(len(cs.queue), len(cs.free_agents))
        assert per_city[code] == k
        mine = [(a.call_id, a.agent_id) for a in decided if a.city == code]
        head_calls = [c.call_id for c in reference_queue(cs.queue)[:k]]
        longest_idle = [a.agent_id for a in reference_idle(cs.free_agents)[:k]]
        assert sorted(call for call, _ in mine) == sorted(head_calls)
        assert sorted(agent for _, agent in mine) == sorted(longest_idle)
        # and pairwise: the i-th call in queue order goes to the i-th longest-idle agent
        assert sorted(mine, key=lambda pair: head_calls.index(pair[0])) == list(
            zip(head_calls, longest_idle, strict=True)
        )


@given(snapshots(), st.randoms(use_true_random=False))
def test_decide_is_deterministic_and_order_independent(
    snapshot: Snapshot, rnd: random.Random
) -> None:
    first = decide(snapshot)
    assert decide(snapshot) == first
    shuffled_cities = list(snapshot.cities.items())
    rnd.shuffle(shuffled_cities)
    shuffled: dict[str, CitySnapshot] = {}
    for code, cs in shuffled_cities:
        queue, free = list(cs.queue), list(cs.free_agents)
        rnd.shuffle(queue)
        rnd.shuffle(free)
        shuffled[code] = CitySnapshot.build(code, queue, free)
    again = decide(Snapshot(snapshot.now, shuffled))
    assert sorted(triples(again)) == sorted(triples(first))
    for code in snapshot.cities:
        assert [t for t in triples(again) if t[2] == code] == [
            t for t in triples(first) if t[2] == code
        ]


@given(snapshots())
def test_decide_does_not_mutate_its_input(snapshot: Snapshot) -> None:
    before = copy.deepcopy(snapshot)
    queues = {code: cs.queue for code, cs in snapshot.cities.items()}
    decide(snapshot)
    assert snapshot == before
    assert list(snapshot.cities) == list(before.cities)
    for code, cs in snapshot.cities.items():
        assert cs.queue is queues[code]
