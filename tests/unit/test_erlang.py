"""Erlang C and Erlang A, each checked against the model computed another way.

Erlang C against the textbook formula in exact fractions. Erlang A against the birth-death chain
in exact fractions (abandonment, answered callers' waits), a uniformized Markov chain (service
level), a discrete-event simulation, and its Erlang C and Erlang B limits.
"""

from __future__ import annotations

import heapq
import math
import random
import statistics
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from surge.erlang import (
    Load,
    abandon_probability,
    agents_for_service_level,
    asa_s,
    asa_with_abandonment,
    erlang_b,
    service_level,
    service_level_with_abandonment,
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


# Erlang A (M/M/N+M): Erlang C plus exponential patience.


class ExactErlangA:
    """The M/M/N+M birth-death chain in exact fractions, truncated where the tail is < 1e-40."""

    def __init__(self, agents: int, rate: Fraction, aht: Fraction, patience: Fraction) -> None:
        self.agents, self.rate = agents, rate
        self.mu, self.theta = 1 / aht, 1 / patience
        weights = [Fraction(1)]
        while len(weights) <= agents or weights[-1] > Fraction(1, 10**40) * sum(weights):
            n = len(weights)
            deaths = min(n, agents) * self.mu + max(0, n - agents) * self.theta
            weights.append(weights[-1] * rate / deaths)
        total = sum(weights)
        self.pi = [w / total for w in weights]

    @property
    def queued(self) -> list[Fraction]:
        """pi_(N+k) for k = 0, 1, ...: an arrival finds k callers queued ahead of it."""
        return self.pi[self.agents :]

    def ahead_rates(self, k: int) -> list[Fraction]:
        """The rates N mu + j theta at which the queue ahead moves on, j = 0..k."""
        return [self.agents * self.mu + j * self.theta for j in range(k + 1)]

    def abandon_by_flow(self) -> Fraction:
        """theta x E[queue length] / lambda: the rate callers hang up, over the rate they come."""
        return self.theta * sum(k * p for k, p in enumerate(self.queued)) / self.rate

    def answered_by_tagged_caller(self) -> Fraction:
        """A caller with k ahead is answered if its patience outlasts each of k + 1 moves."""
        answered = sum(self.pi[: self.agents], Fraction(0))
        for k, p in enumerate(self.queued):
            survive = Fraction(1)
            for a in self.ahead_rates(k):
                survive *= a / (a + self.theta)
            answered += p * survive
        return answered

    def mean_answered_wait(self) -> Fraction:
        """E[S; S < patience] = -L'(theta) for the Laplace transform L of S = sum of Exp(a_j)."""
        waits = Fraction(0)
        for k, p in enumerate(self.queued):
            rates = self.ahead_rates(k)
            survive = Fraction(1)
            for a in rates:
                survive *= a / (a + self.theta)
            waits += p * survive * sum(1 / (a + self.theta) for a in rates)
        return waits / self.answered_by_tagged_caller()


def uniformized_service_level(model: ExactErlangA, within_s: float) -> float:
    """Answered within t, by uniformizing the tagged caller's chain on "callers ahead".

    From j ahead it moves on at N mu + j theta (to j - 1, or to answered from 0) and hangs up at
    theta; with a uniform clock Lambda, P(answered by t) = sum over m of
    Poisson(m; Lambda t) x P(answered within m ticks).
    """
    start = np.array([float(p) for p in model.queued])
    moves = np.array([float(a) for a in model.ahead_rates(len(start) - 1)])
    theta = float(model.theta)
    clock = float(moves[-1]) + theta
    stay, move = 1 - (moves + theta) / clock, moves / clock
    mean = clock * within_s
    ahead, answered, total = start, 0.0, 0.0
    for m in range(int(mean + 12 * math.sqrt(mean) + 40)):
        total += math.exp(-mean + m * math.log(mean) - math.lgamma(m + 1)) * answered
        answered += float(ahead[0] * move[0])
        ahead = ahead * stay + np.append(ahead[1:] * move[1:], 0.0)
    return float(sum(model.pi[: model.agents])) + total


SMALL_CENTRES = [  # agents, calls a second, AHT, patience (exact fractions)
    (1, Fraction(1, 20), Fraction(80), Fraction(60)),
    (3, Fraction(1, 20), Fraction(80), Fraction(60)),  # understaffed: 4 Erlangs
    (5, Fraction(1, 20), Fraction(80), Fraction(60)),
    (8, Fraction(1, 10), Fraction(45), Fraction(15)),
    (4, Fraction(1, 30), Fraction(120), Fraction(600)),
    (2, Fraction(1, 5), Fraction(30), Fraction(2)),  # impatient
]


@pytest.mark.parametrize(("agents", "rate", "aht", "patience"), SMALL_CENTRES)
def test_erlang_a_matches_the_exact_chain(
    agents: int, rate: Fraction, aht: Fraction, patience: Fraction
) -> None:
    exact = ExactErlangA(agents, rate, aht, patience)
    # Two independent exact routes to P(abandon) agree: flow balance and the tagged caller.
    assert exact.abandon_by_flow() == pytest.approx(1 - exact.answered_by_tagged_caller(), 1e-30)
    load = Load(rate_per_s=float(rate), aht_s=float(aht))
    abandoned = abandon_probability(agents, load, float(patience))
    assert abandoned == pytest.approx(float(exact.abandon_by_flow()), rel=1e-10, abs=1e-13)
    wait = asa_with_abandonment(agents, load, float(patience))
    assert wait == pytest.approx(float(exact.mean_answered_wait()), rel=1e-10)
    for within_s in (5.0, 20.0, 60.0):
        answered = service_level_with_abandonment(agents, load, within_s, float(patience))
        assert answered == pytest.approx(uniformized_service_level(exact, within_s), abs=1e-10)
    assert service_level_with_abandonment(agents, load, 0, float(patience)) == pytest.approx(
        float(sum(exact.pi[:agents])), abs=1e-12
    )
    assert service_level_with_abandonment(agents, load, math.inf, float(patience)) == (
        pytest.approx(1 - abandoned, abs=1e-13)
    )


def simulate_erlang_a(
    agents: int, rate: float, aht: float, patience: float, within_s: float, *, seed: int
) -> dict[str, list[float]]:
    """A FIFO M/M/N+M queue, caller by caller; per-batch shares, for batch-means errors.

    With FIFO service a caller's would-be wait depends only on the earlier callers who were
    answered: it is the time until the earliest agent they leave free (a heap of free times).
    It is answered if its patience outlasts that wait, and then takes that agent.
    """
    rng = random.Random(seed)
    free_at = [0.0] * agents
    now, warm_up, batches, per_batch = 0.0, 2_000, 40, 10_000
    batch = {"answered_within": 0, "abandoned": 0, "answered": 0, "waited_s": 0.0}
    shares: dict[str, list[float]] = {"service_level": [], "abandoned": [], "asa_s": []}
    for caller in range(warm_up + batches * per_batch):
        now += rng.expovariate(rate)
        wait = max(0.0, free_at[0] - now)
        answered = wait <= rng.expovariate(1 / patience)
        if answered:
            heapq.heapreplace(free_at, now + wait + rng.expovariate(1 / aht))
        if caller < warm_up:
            continue
        batch["answered"] += answered
        batch["abandoned"] += not answered
        batch["answered_within"] += answered and wait <= within_s
        batch["waited_s"] += wait if answered else 0.0
        if (caller - warm_up + 1) % per_batch == 0:
            shares["service_level"].append(batch["answered_within"] / per_batch)
            shares["abandoned"].append(batch["abandoned"] / per_batch)
            shares["asa_s"].append(batch["waited_s"] / batch["answered"])
            batch = dict.fromkeys(batch, 0)
    return shares


@pytest.mark.parametrize("agents", [5, 3])  # 4 Erlangs offered: staffed above and below
def test_erlang_a_matches_a_simulation(agents: int) -> None:
    rate, aht, patience, within_s = 1 / 20, 80.0, 60.0, 20.0
    shares = simulate_erlang_a(agents, rate, aht, patience, within_s, seed=20240611 + agents)
    load = Load(rate_per_s=rate, aht_s=aht)
    expected = {
        "service_level": service_level_with_abandonment(agents, load, within_s, patience),
        "abandoned": abandon_probability(agents, load, patience),
        "asa_s": asa_with_abandonment(agents, load, patience),
    }
    for name, batches in shares.items():
        error = statistics.stdev(batches) / math.sqrt(len(batches))
        if name != "asa_s":
            assert error < 0.005, f"too few callers simulated to test {name}"
        assert abs(statistics.fmean(batches) - expected[name]) < 4 * error, name


@given(
    agents=st.integers(min_value=1, max_value=80),
    spare=st.floats(min_value=0.5, max_value=40),
    aht=st.floats(min_value=10, max_value=900),
    within_s=st.floats(min_value=0, max_value=120),
)
def test_erlang_a_with_endless_patience_is_erlang_c(
    agents: int, spare: float, aht: float, within_s: float
) -> None:
    erlangs = max(0.05, agents - spare)
    load = Load(rate_per_s=erlangs / aht, aht_s=aht)
    patience = 1e12 * aht
    answered = service_level_with_abandonment(agents, load, within_s, patience)
    assert answered == pytest.approx(service_level(agents, load, within_s), abs=1e-9)
    assert abandon_probability(agents, load, patience) < 1e-9
    assert asa_with_abandonment(agents, load, patience) == pytest.approx(
        asa_s(agents, load), rel=1e-8, abs=1e-12
    )


@pytest.mark.parametrize(
    ("load", "target", "within_s"),
    [
        (Load(rate_per_s=360 / 3600, aht_s=240), 0.8, 20),  # 24 Erlangs
        (Load(rate_per_s=1_008_000 / 86_400, aht_s=300), 0.8, 20),  # ~3,500 Erlangs
        (Load(rate_per_s=0.5, aht_s=30), 0.9, 10),
    ],
)
def test_staffing_with_endless_patience_is_erlang_c(
    load: Load, target: float, within_s: float
) -> None:
    erlang_c = agents_for_service_level(load, target=target, within_s=within_s)
    for patience in (1e9, 1e12 * load.aht_s):
        agents = agents_for_service_level(
            load, target=target, within_s=within_s, patience_s=patience
        )
        assert agents == erlang_c
    # A 1e9 s patience still trims a long queue a little (~1e-6 at 3,500 Erlangs); 1e12 AHTs
    # is Erlang C to rounding (the hypothesis test above).
    assert service_level_with_abandonment(erlang_c, load, within_s, 1e9) == pytest.approx(
        service_level(erlang_c, load, within_s), abs=1e-5
    )


def test_very_impatient_callers_are_erlang_b() -> None:
    # Nobody waits: a caller is answered at once or lost, as in a system with no queue.
    load = Load(rate_per_s=1 / 20, aht_s=80)
    for agents in (1, 4, 7):
        blocked = erlang_b(agents, load.erlangs)
        assert abandon_probability(agents, load, 1e-6) == pytest.approx(blocked, rel=1e-6)
        for within_s in (0, 20):
            assert service_level_with_abandonment(agents, load, within_s, 1e-6) == (
                pytest.approx(1 - blocked, rel=1e-6)
            )
        assert asa_with_abandonment(agents, load, 1e-6) < 1e-5


@given(
    agents=st.integers(min_value=1, max_value=150),
    rate=st.floats(min_value=0.001, max_value=2),
    aht=st.floats(min_value=10, max_value=600),
    patience=st.floats(min_value=1, max_value=3_600),
    within_s=st.floats(min_value=0, max_value=120),
)
def test_erlang_a_more_agents_or_more_time_never_make_it_worse(
    agents: int, rate: float, aht: float, patience: float, within_s: float
) -> None:
    load = Load(rate_per_s=rate, aht_s=aht)
    answered = service_level_with_abandonment(agents, load, within_s, patience)
    assert 0 <= answered <= 1 - abandon_probability(agents, load, patience) + 1e-12
    more_agents = service_level_with_abandonment(agents + 1, load, within_s, patience)
    assert more_agents >= answered - 1e-12
    assert abandon_probability(agents + 1, load, patience) <= (
        abandon_probability(agents, load, patience) + 1e-12
    )
    more_time = service_level_with_abandonment(agents, load, within_s + 10, patience)
    assert more_time >= answered - 1e-12


@given(
    rate=st.floats(min_value=0.001, max_value=30),
    aht=st.floats(min_value=10, max_value=900),
    patience=st.floats(min_value=1, max_value=1_800),
    target=st.floats(min_value=0.5, max_value=0.95),
    within_s=st.floats(min_value=0, max_value=60),
)
def test_erlang_a_staffing_is_the_fewest_agents_reaching_the_target(
    rate: float, aht: float, patience: float, target: float, within_s: float
) -> None:
    load = Load(rate_per_s=rate, aht_s=aht)
    agents = agents_for_service_level(load, target=target, within_s=within_s, patience_s=patience)
    assert service_level_with_abandonment(agents, load, within_s, patience) >= target
    if agents > 1:
        assert service_level_with_abandonment(agents - 1, load, within_s, patience) < target


def test_impatience_can_need_fewer_agents_than_the_offered_load() -> None:
    # 25 calls a second, 3-minute calls: 4,500 Erlangs; callers wait a minute on average.
    load = Load(rate_per_s=25, aht_s=180)
    agents = agents_for_service_level(load, target=0.8, within_s=20, patience_s=60)
    assert agents < load.erlangs
    assert service_level_with_abandonment(agents, load, 20, 60) >= 0.8
    assert service_level_with_abandonment(agents - 1, load, 20, 60) < 0.8
    # Those who hang up count as not answered: the share answered stays below 1 - abandoned.
    assert service_level_with_abandonment(agents, load, 20, 60) < 1 - abandon_probability(
        agents, load, 60
    )


def test_erlang_a_extremes() -> None:
    quiet = Load(rate_per_s=0, aht_s=300)
    assert service_level_with_abandonment(3, quiet, 20, 60) == 1
    assert (abandon_probability(3, quiet, 60), asa_with_abandonment(3, quiet, 60)) == (0, 0)
    assert agents_for_service_level(quiet, target=0.8, within_s=20, patience_s=60) == 1
    busy = Load(rate_per_s=1, aht_s=10)
    assert service_level_with_abandonment(0, busy, 20, 60) == 0
    assert abandon_probability(0, busy, 60) == 1
    assert asa_with_abandonment(0, busy, 60) == math.inf
    # One agent for 4,500 Erlangs: it answers 1 / 180 calls a second out of 25.
    flood = Load(rate_per_s=25, aht_s=180)
    assert 1 - abandon_probability(1, flood, 60) == pytest.approx(1 / 4500, rel=1e-3)
    for patience in (1e-300, 1e300):  # clamped, not broken
        assert 0 <= service_level_with_abandonment(4550, flood, 20, patience) <= 1
    # Many agents, a trickle of calls: everyone is answered at once, without overflow.
    assert service_level_with_abandonment(100_000, Load(0.001, 100), 0, 60) == 1


def test_erlang_a_bad_arguments_are_refused() -> None:
    load = Load(rate_per_s=1, aht_s=10)
    with pytest.raises(ValueError, match="negative"):
        abandon_probability(-1, load, 60)
    for patience in (0.0, -5.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="patience"):
            service_level_with_abandonment(5, load, 20, patience)
    with pytest.raises(ValueError, match="threshold"):
        service_level_with_abandonment(5, load, -1, 60)
    with pytest.raises(ValueError, match="more than 50 agents"):
        agents_for_service_level(Load(10, 60), target=0.8, within_s=20, patience_s=60, limit=50)
    with pytest.raises(ValueError, match="strictly between"):
        agents_for_service_level(load, target=0, within_s=20, patience_s=60)
