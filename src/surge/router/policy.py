"""The routing policy: a pure function from a snapshot of queues and free agents to offers.

No I/O here (no FastAPI, SQLAlchemy or Redis): the dispatcher feeds it live snapshots and the
simulator feeds it virtual ones, so both route by exactly the same rules. The policy is an ordered
tuple of rules; each rule sees the calls and agents the earlier rules left and may pair some:

1. `local_rule`: a city's calls go to its own free agents (own calls always come first);
2. `overflow_rule`: for each active surge, the host's calls still waiting go to free agents of the
   helper cities in its active waves, within each helper's seat quota and only while the helper's
   own queue is below its protection floor.

In both, calls are taken in queue order (priority, then arrival) and the longest-idle eligible
agent gets each one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from surge.state.base import IdleAgent, QueuedCall

DEFAULT_PROTECTION_FLOOR = 3  # a helper city serves a host only while fewer own calls wait


@dataclass(frozen=True, slots=True)
class CitySnapshot:
    """One city at a moment: the head of its queue, its free agents, its load.

    `queue` is in queue order and `free_agents` longest idle first, as the hot state reads them
    (the policy relies on it and never sorts: the queue may be 50,000 calls long). Build one from
    unordered data with `CitySnapshot.build`. `waiting` counts every queued call (the queue given
    may be only its head); `serving` counts this city's agents holding an offer or a call of
    another city, by that city.
    """

    code: str
    queue: tuple[QueuedCall, ...]
    free_agents: tuple[IdleAgent, ...]
    waiting: int = 0
    serving: Mapping[str, int] = field(default_factory=dict)
    protection_floor: int = DEFAULT_PROTECTION_FLOOR

    @classmethod
    def build(
        cls,
        code: str,
        queue: Sequence[QueuedCall],
        free_agents: Sequence[IdleAgent],
        **load: Any,
    ) -> CitySnapshot:
        """A snapshot from calls and agents in any order (`waiting` defaults to the queue size)."""
        load.setdefault("waiting", len(queue))
        return cls(code, tuple(queue_order(queue)), tuple(idle_order(free_agents)), **load)


@dataclass(frozen=True, slots=True)
class SurgeView:
    """An active surge: its host and, for the helper cities of its active waves, their quotas."""

    surge_id: int
    host: str
    overflow_after_s: float  # 0: overflow as soon as no host agent is free; else wait this long
    quotas: Mapping[str, int]  # helper city -> how many of its agents may serve the host at once


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole province at `now` (epoch seconds), as the policy sees it.

    Surges are served in the order given (the coordinator's order: oldest first).
    """

    now: float
    cities: Mapping[str, CitySnapshot]
    surges: tuple[SurgeView, ...] = ()


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


def overflow_rule(snapshot: Snapshot, pool: _Pool) -> list[Assignment]:
    """Each surge's waiting host calls go to free agents of its helper cities, within limits."""
    decisions: list[Assignment] = []
    taken: dict[tuple[str, str], int] = {}  # (helper, host) -> agents given to the host just now
    for surge in snapshot.surges:
        calls = [
            call
            for call in pool.calls.get(surge.host, ())
            if snapshot.now - call.enqueued_at >= surge.overflow_after_s
        ]
        if not calls:
            continue
        candidates: list[IdleAgent] = []
        for helper, quota in surge.quotas.items():
            city = snapshot.cities.get(helper)
            if city is None or helper == surge.host or pool.calls.get(helper):
                continue  # unknown, the host itself, or its own calls still wait (they come first)
            if city.waiting >= city.protection_floor:
                continue  # its own service comes first: it is not drained below its floor
            room = quota - city.serving.get(surge.host, 0) - taken.get((helper, surge.host), 0)
            candidates.extend(pool.agents[helper][: max(0, room)])
        chosen = idle_order(candidates)[: len(calls)]
        for call, agent in zip(calls, chosen, strict=False):
            decisions.append(Assignment(call.call_id, agent.agent_id, surge.host, surge.surge_id))
            key = (agent.city, surge.host)
            taken[key] = taken.get(key, 0) + 1
            pool.agents[agent.city].remove(agent)
            pool.calls[surge.host].remove(call)
    return decisions


RULES: tuple[Rule, ...] = (local_rule, overflow_rule)


def decide(snapshot: Snapshot) -> list[Assignment]:
    """Apply the rules in order; no call and no agent appears in more than one assignment."""
    # No more calls can be placed than there are free agents: only that much of each queue counts.
    free = sum(len(city.free_agents) for city in snapshot.cities.values())
    pool = _Pool(
        calls={code: list(city.queue[:free]) for code, city in snapshot.cities.items()},
        agents={code: list(city.free_agents) for code, city in snapshot.cities.items()},
    )
    decisions: list[Assignment] = []
    for rule in RULES:
        decisions.extend(rule(snapshot, pool))
    return decisions
