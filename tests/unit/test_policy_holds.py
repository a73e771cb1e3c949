"""Required script versions in the routing policy: a held-back agent gets none of that city's
calls, and stays eligible for every other city's."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from surge.router.policy import CitySnapshot, Snapshot, decide
from tests.unit.test_policy_surge import HOST, NOW, SZ, XZ, agents, calls, pairs, surge


def test_a_held_back_local_agent_is_passed_over_for_its_own_citys_calls() -> None:
    snapshot = Snapshot(
        NOW,
        {HOST: CitySnapshot.build(HOST, calls(HOST, 1, 2), agents(HOST, 10, 11, 12))},
        held_back={HOST: frozenset({10})},
    )
    # The longest idle (10) has not acknowledged: the next two take the calls, in idle order.
    assert pairs(decide(snapshot)) == [(1, 11, None), (2, 12, None)]


def test_a_helper_held_back_by_the_host_serves_its_own_city_and_not_the_host() -> None:
    cities = {
        HOST: CitySnapshot.build(HOST, calls(HOST, 1, 2), []),
        XZ: CitySnapshot.build(XZ, [], agents(XZ, 100, 101)),
        SZ: CitySnapshot.build(SZ, calls(SZ, 5), agents(SZ, 200)),
    }
    snapshot = Snapshot(NOW, cities, surges=(surge({XZ: 5}),), held_back={HOST: frozenset({100})})
    # 100 is passed over for the host: 101 takes the host's first call; 200 its own city's.
    assert sorted(pairs(decide(snapshot))) == [(1, 101, 7), (5, 200, None)]
    held_by_own = Snapshot(
        NOW,
        cities,
        surges=(surge({XZ: 5}),),
        held_back={HOST: frozenset({100, 101}), SZ: frozenset({200})},
    )
    assert decide(held_by_own) == []


def test_an_agent_held_back_by_its_own_city_may_still_serve_a_host() -> None:
    snapshot = Snapshot(
        NOW,
        {
            HOST: CitySnapshot.build(HOST, calls(HOST, 1), []),
            XZ: CitySnapshot.build(XZ, calls(XZ, 3), agents(XZ, 100)),
        },
        surges=(surge({XZ: 5}),),
        held_back={XZ: frozenset({100})},
    )
    # Its own calls waiting keep the helper from lending (own calls first): nothing moves.
    assert decide(snapshot) == []
    quiet = Snapshot(
        NOW,
        {HOST: snapshot.cities[HOST], XZ: CitySnapshot.build(XZ, [], agents(XZ, 100))},
        surges=(surge({XZ: 5}),),
        held_back={XZ: frozenset({100})},
    )
    assert pairs(decide(quiet)) == [(1, 100, 7)]


@settings(max_examples=200, deadline=None)
@given(
    host_calls=st.integers(0, 6),
    host_agents=st.integers(0, 4),
    helper_agents=st.integers(0, 4),
    held=st.sets(st.integers(0, 7)),
)
def test_no_held_back_agent_is_ever_offered_the_holding_citys_call(
    host_calls: int, host_agents: int, helper_agents: int, held: set[int]
) -> None:
    own = agents(HOST, *range(host_agents))
    lent = agents(XZ, *range(4, 4 + helper_agents))
    snapshot = Snapshot(
        NOW,
        {
            HOST: CitySnapshot.build(HOST, calls(HOST, *range(1, host_calls + 1)), own),
            XZ: CitySnapshot.build(XZ, [], lent),
        },
        surges=(surge({XZ: 9}),),
        held_back={HOST: frozenset(held)},
    )
    decisions = decide(snapshot)
    assert not {d.agent_id for d in decisions} & held
    eligible = [a for a in (*own, *lent) if a.agent_id not in held]
    assert len(decisions) == min(host_calls, len(eligible))  # nobody eligible left idle
