"""Erlang C, checked against the textbook formula computed another way (exact fractions)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surge.erlang import (
    Load,
    agents_for_service_level,
    asa_s,
    erlang_b,
    service_level,
    wait_probability,
)


def textbook_c(agents: int, erlangs: Fraction) -> Fraction:
    """C(N, A) straight from its definition with factorials, in exact arithmetic."""
    top = erlangs**agents / math.factorial(agents) * Fraction(agents) / (agents - erlangs)
    bottom = sum(erlangs**k / math.factorial(k) for k in range(agents)) + top
    return top / bottom


@given(
    agents=st.integers(min_value=1, max_value=60),
    erlangs=st.fractions(min_value=Fraction(1, 10), max_value=59).map(
        lambda f: f.limit_denominator(100)
    ),
)
def test_wait_probability_matches_the_textbook_formula(agents: int, erlangs: Fraction) -> None:
    load = Load(rate_per_s=float(erlangs) / 100, aht_s=100)
    if agents <= erlangs:
        assert wait_probability(agents, load) == 1.0
    else:
        expected = float(textbook_c(agents, erlangs))
        assert wait_probability(agents, load) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_a_classic_example() -> None:
    # 360 calls an hour, 4-minute calls: 24 Erlangs; 28 agents.
    load = Load(rate_per_s=360 / 3600, aht_s=240)
    assert load.erlangs == pytest.approx(24)
    c = wait_probability(28, load)
    assert c == pytest.approx(float(textbook_c(28, Fraction(24))), rel=1e-12)
    assert asa_s(28, load) == pytest.approx(c * 240 / 4)
    assert service_level(28, load, 20) == pytest.approx(1 - c * math.exp(-4 * 20 / 240))


def test_erlang_b_known_values() -> None:
    assert erlang_b(0, 5) == 1.0
    assert erlang_b(1, 1) == pytest.approx(0.5)
    assert erlang_b(2, 1) == pytest.approx(0.2)


def test_understaffed_and_idle_extremes() -> None:
    busy = Load(rate_per_s=1, aht_s=10)  # 10 Erlangs
    assert wait_probability(10, busy) == 1.0
    assert asa_s(10, busy) == math.inf
    assert service_level(9, busy, 20) == 0.0
    quiet = Load(rate_per_s=0, aht_s=300)
    assert (wait_probability(3, quiet), asa_s(3, quiet), service_level(3, quiet, 20)) == (0, 0, 1)


def test_large_call_centres_stay_stable() -> None:
    # Nanjing-scale: 1,008,000 calls a day, 5-minute calls, ~3,500 Erlangs.
    load = Load(rate_per_s=1_008_000 / 86_400, aht_s=300)
    agents = agents_for_service_level(load, target=0.8, within_s=20)
    assert load.erlangs < agents < load.erlangs * 1.05
    assert service_level(agents, load, 20) >= 0.8
    assert service_level(agents - 1, load, 20) < 0.8


@given(
    rate=st.floats(min_value=0.001, max_value=5),
    aht=st.floats(min_value=10, max_value=900),
    target=st.floats(min_value=0.5, max_value=0.95),
)
def test_staffing_is_the_fewest_agents_reaching_the_target(
    rate: float, aht: float, target: float
) -> None:
    load = Load(rate_per_s=rate, aht_s=aht)
    agents = agents_for_service_level(load, target=target, within_s=20)
    assert service_level(agents, load, 20) >= target
    if agents > 1:
        assert service_level(agents - 1, load, 20) < target


@given(
    agents=st.integers(min_value=1, max_value=200), rate=st.floats(0.01, 2), aht=st.floats(10, 600)
)
def test_more_agents_never_make_it_worse(agents: int, rate: float, aht: float) -> None:
    load = Load(rate_per_s=rate, aht_s=aht)
    assert wait_probability(agents + 1, load) <= wait_probability(agents, load) + 1e-12
    assert service_level(agents + 1, load, 20) >= service_level(agents, load, 20) - 1e-12


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="handling time"):
        Load(rate_per_s=1, aht_s=0)
    with pytest.raises(ValueError, match="strictly between"):
        agents_for_service_level(Load(1, 10), target=1.0, within_s=20)
    with pytest.raises(ValueError, match="negative"):
        erlang_b(-1, 1)
