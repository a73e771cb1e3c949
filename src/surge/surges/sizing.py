"""What-if sizing before a wave (pure): how many agents a host's load needs, and what seats give.

The host's calls are one pooled queue served by its own agents and the helper seats together
(the model does not see the overflow delay or the helpers' own calls first: the simulator does).
With a caller patience it is Erlang A (callers hang up), without one Erlang C (they never do,
so nothing is predicted abandoned and an understaffed queue grows without bound: service level
0, no finite ASA).

- `agents_needed`: the fewest agents in all (own and helpers') that answer `target` of the
  callers within `within_s` (0 when no call arrives);
- `helper_seats_needed`: max(0, agents_needed - own agents);
- each scenario: the host's own agents plus `helper_seats`, with its predicted service level
  (the share of ALL callers answered within `within_s`), ASA (mean wait of the answered callers,
  None when infinite) and abandon rate. Without seats given, the ladder 0, 1/4, 1/2, 3/4, 1 and
  5/4 of the seats needed (rounded up, each once).

A target of 1 (everyone answered in time) is no finite staffing's promise: it is read as
1 - 1e-6, one caller in a million late.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from surge import erlang

HIGHEST_TARGET = 1 - 1e-6  # what a target of 1 is read as
MAX_ERLANGS = 5_000.0  # the most offered load sized (the province has about 4,000 agents)
LADDER = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25)  # default scenarios, in shares of the seats needed

Method = Literal["erlang_a", "erlang_c"]


@dataclass(frozen=True, slots=True)
class Figures:
    """The host's load and staffing a what-if sizes for."""

    arrivals_per_hour: float
    aht_s: float
    patience_s: float | None  # None: unknown, Erlang C
    own_agents: int

    @property
    def load(self) -> erlang.Load:
        """The offered load."""
        return erlang.Load(rate_per_s=self.arrivals_per_hour / 3600, aht_s=self.aht_s)

    @property
    def method(self) -> Method:
        """Erlang A with a patience, else Erlang C."""
        return "erlang_c" if self.patience_s is None else "erlang_a"


@dataclass(frozen=True, slots=True)
class Scenario:
    """The predicted service with the host's own agents and `helper_seats` more."""

    helper_seats: int
    service_level: float
    asa_s: float | None  # None: infinite (an Erlang C queue that can only grow)
    abandon_rate: float


@dataclass(frozen=True, slots=True)
class Sizing:
    """What the host needs for the target, and each scenario's predicted service."""

    method: Method
    agents_needed: int
    helper_seats_needed: int
    scenarios: tuple[Scenario, ...]


def too_heavy(figures: Figures) -> str | None:
    """Why the load is beyond what a what-if sizes (None: it is within)."""
    erlangs = figures.load.erlangs
    if erlangs > MAX_ERLANGS:
        return (
            f"{figures.arrivals_per_hour:g} calls an hour of {figures.aht_s:g} s offer "
            f"{erlangs:.0f} Erlangs, over the {MAX_ERLANGS:.0f} a what-if sizes"
        )
    return None


def predict(figures: Figures, agents: int, *, within_s: float) -> tuple[float, float | None, float]:
    """Service level within `within_s`, ASA (None: infinite) and abandon rate with `agents`."""
    load, patience = figures.load, figures.patience_s
    if patience is None:
        asa = erlang.asa_s(agents, load)
        level = erlang.service_level(agents, load, within_s)
        return level, None if math.isinf(asa) else asa, 0.0
    level = erlang.service_level_with_abandonment(agents, load, within_s, patience)
    asa = erlang.asa_with_abandonment(agents, load, patience)
    abandon = erlang.abandon_probability(agents, load, patience)
    return level, None if math.isinf(asa) else asa, abandon


def ladder(needed: int) -> list[int]:
    """The default helper seats to show: shares of the seats needed, rounded up, each once."""
    return sorted({math.ceil(share * needed) for share in LADDER})


def size(
    figures: Figures,
    *,
    target: float,
    within_s: float,
    helper_seats: Sequence[int] | None = None,
) -> Sizing:
    """Size the host's load for the target, and predict each helper-seat scenario."""
    if figures.arrivals_per_hour == 0:
        needed = 0
    else:
        needed = erlang.agents_for_service_level(
            figures.load,
            target=min(target, HIGHEST_TARGET),
            within_s=within_s,
            patience_s=figures.patience_s,
        )
    seats_needed = max(0, needed - figures.own_agents)
    seats = ladder(seats_needed) if helper_seats is None else list(helper_seats)
    scenarios = []
    for n in seats:
        level, asa, abandon = predict(figures, figures.own_agents + n, within_s=within_s)
        scenarios.append(
            Scenario(
                helper_seats=n,
                service_level=round(level, 4),
                asa_s=None if asa is None else round(asa, 1),
                abandon_rate=round(abandon, 4),
            )
        )
    return Sizing(
        method=figures.method,
        agents_needed=needed,
        helper_seats_needed=seats_needed,
        scenarios=tuple(scenarios),
    )
