"""The dispatcher's bounded snapshot: reading only the free agents a decision could use (its
`lending_reach`, as `HotState.snapshot` applies it) never changes the policy's decisions."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from surge.router.dispatcher import lending_reach
from surge.router.policy import CitySnapshot, Snapshot, SurgeView, decide

from .test_policy_surge import shared_helper_snapshots, surge_snapshots


def placeable(snapshot: Snapshot, depth: int, *, bounded: bool) -> Snapshot:
    """What the dispatcher hands the policy from a `placeable_only` snapshot of `snapshot`:
    queues read no further than the free agents could take and, `bounded`, free agents read as
    the snapshot contract says (cities with neither left out, as the dispatcher does)."""
    free = sum(len(city.free_agents) for city in snapshot.cities.values())
    depth = min(depth, free)
    heads = {code: city.queue[:depth] for code, city in snapshot.cities.items()}
    lends_to, spare = lending_reach(snapshot.surges)
    cities: dict[str, CitySnapshot] = {}
    for code, city in snapshot.cities.items():
        agents = city.free_agents
        if bounded:
            usable = len(heads[code]) + sum(len(heads.get(h, ())) for h in lends_to.get(code, ()))
            agents = agents[: usable + spare.get(code, 0) if usable else 0]
        if heads[code] or agents:
            cities[code] = replace(city, queue=heads[code], free_agents=agents)
    return replace(snapshot, cities=cities)


@settings(max_examples=500)
@given(st.one_of(surge_snapshots(), shared_helper_snapshots()), st.integers(1, 8))
def test_reading_only_usable_free_agents_decides_the_same(snapshot: Snapshot, depth: int) -> None:
    every = decide(placeable(snapshot, depth, bounded=False))
    assert decide(placeable(snapshot, depth, bounded=True)) == every


def test_each_helper_reads_one_more_than_its_largest_reserve() -> None:
    surges = (
        SurgeView(1, "a", 0.0, {"b": 2, "c": 1, "a": 5}, {"b": 3}),
        SurgeView(2, "d", 0.0, {"b": 1}, {"b": 1}),
    )
    assert lending_reach(surges) == ({"b": {"a", "d"}, "c": {"a"}}, {"b": 4, "c": 1})
