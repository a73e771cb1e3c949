"""The routing policy: a pure function from a snapshot of queues and free agents to offers.

No I/O here (no FastAPI, SQLAlchemy or Redis): the dispatcher feeds it live snapshots and the
simulator feeds it virtual ones, so both route by exactly the same rules. The policy is an ordered
tuple of rules; each rule sees the calls and agents the earlier rules left and may pair some of
them. The surge rules (overflow to helper cities) will join `RULES` after `local_rule`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from surge.state.base import IdleAgent, QueuedCall


@dataclass(frozen=True, slots=True)
class CitySnapshot:
    """One city at a moment: the head of its queue (any order) and its free agents."""

    code: str
    queue: tuple[QueuedCall, ...]
    free_agents: tuple[IdleAgent, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole province at `now` (epoch seconds), as the policy sees it."""

    now: float
    cities: Mapping[str, CitySnapshot]


@dataclass(frozen=True, slots=True)
class Assignment:
    """A decision: offer `call_id` to `agent_id`."""

    call_id: int
    agent_id: int
    city: str  # the call's city
    surge_id: int | None = None  # set by surge rules; None for a city's own calls


@dataclass(slots=True)
class _Pool:
    """What is still unassigned while the rules run, per city, in routing order."""

    calls: dict[str, list[QueuedCall]] = field(default_factory=dict)
    agents: dict[str, list[IdleAgent]] = field(default_factory=dict)


Rule = Callable[[Snapshot, _Pool], list[Assignment]]


def queue_order(calls: Sequence[QueuedCall]) -> list[QueuedCall]:
    """FIFO within priority: higher priority first, then arrival (call ids grow with arrival)."""
    return sorted(calls, key=lambda c: c.score)


def idle_order(agents: Sequence[IdleAgent]) -> list[IdleAgent]:
    """Longest idle first; ties broken by agent id so decisions are deterministic."""
    return sorted(agents, key=lambda a: (a.idle_since, a.agent_id))


def local_rule(snapshot: Snapshot, pool: _Pool) -> list[Assignment]:
    """A city's calls go to its own free agents: the head call to the longest-idle agent."""
    decisions: list[Assignment] = []
    for code in snapshot.cities:
        calls, agents = pool.calls[code], pool.agents[code]
        pairs = min(len(calls), len(agents))
        decisions.extend(
            Assignment(call_id=call.call_id, agent_id=agent.agent_id, city=code)
            for call, agent in zip(calls[:pairs], agents[:pairs], strict=True)
        )
        del calls[:pairs], agents[:pairs]
    return decisions


RULES: tuple[Rule, ...] = (local_rule,)


def decide(snapshot: Snapshot) -> list[Assignment]:
    """Apply the rules in order; no call and no agent appears in more than one assignment."""
    pool = _Pool(
        calls={code: queue_order(city.queue) for code, city in snapshot.cities.items()},
        agents={code: idle_order(city.free_agents) for code, city in snapshot.cities.items()},
    )
    decisions: list[Assignment] = []
    for rule in RULES:
        decisions.extend(rule(snapshot, pool))
    return decisions
