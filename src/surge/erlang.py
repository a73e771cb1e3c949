"""Erlang C: the queueing formulas behind pressure readings, staffing advice and the simulator.

The model (M/M/N): Poisson arrivals at `rate_per_s`, exponential handling with mean `aht_s`,
`agents` identical servers, callers who wait as long as it takes. Offered load in Erlangs is
A = rate x AHT. With N > A agents:

- P(wait) = C(N, A), computed through the Erlang B recursion (stable for thousands of agents);
- ASA (mean wait of all callers) = C x AHT / (N - A);
- service level within t seconds = 1 - C x exp(-(N - A) x t / AHT).

With N <= A the queue grows without bound: P(wait) = 1, ASA and waits are infinite, service
level 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Load:
    """Calls arriving at `rate_per_s`, each handled in `aht_s` on average."""

    rate_per_s: float
    aht_s: float

    def __post_init__(self) -> None:
        if self.rate_per_s < 0 or self.aht_s <= 0:
            raise ValueError("a load needs a rate >= 0 and a handling time > 0")

    @property
    def erlangs(self) -> float:
        """Offered load A: how many agents the calls would keep busy without any waiting."""
        return self.rate_per_s * self.aht_s


def erlang_b(agents: int, erlangs: float) -> float:
    """Blocking probability of N servers with no queue (the recursion Erlang C is built on)."""
    if agents < 0 or erlangs < 0:
        raise ValueError("agents and load must not be negative")
    blocking = 1.0
    for n in range(1, agents + 1):
        blocking = erlangs * blocking / (n + erlangs * blocking)
    return blocking


def wait_probability(agents: int, load: Load) -> float:
    """C(N, A): the chance an arriving caller has to wait."""
    a = load.erlangs
    if a == 0:
        return 0.0
    if agents <= a:
        return 1.0
    b = erlang_b(agents, a)
    return agents * b / (agents - a * (1 - b))


def asa_s(agents: int, load: Load) -> float:
    """Average speed of answer over all callers, in seconds (infinite if understaffed)."""
    a = load.erlangs
    if a == 0:
        return 0.0
    if agents <= a:
        return math.inf
    return wait_probability(agents, load) * load.aht_s / (agents - a)


def service_level(agents: int, load: Load, within_s: float) -> float:
    """The share of callers answered within `within_s` seconds."""
    a = load.erlangs
    if a == 0:
        return 1.0
    if agents <= a:
        return 0.0
    return 1 - wait_probability(agents, load) * math.exp(-(agents - a) * within_s / load.aht_s)


def agents_for_service_level(
    load: Load, *, target: float, within_s: float, limit: int = 100_000
) -> int:
    """The fewest agents that answer `target` of callers within `within_s` seconds."""
    if not 0 < target < 1:
        raise ValueError("a service-level target is a share strictly between 0 and 1")
    agents = max(1, math.floor(load.erlangs) + 1)
    while service_level(agents, load, within_s) < target:
        agents += 1
        if agents > limit:
            raise ValueError(f"more than {limit} agents would be needed")
    return agents
