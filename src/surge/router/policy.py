"""The routing policy: a pure function from a snapshot of queues and free agents to offers.

No I/O here (no FastAPI, SQLAlchemy or Redis): the dispatcher feeds it live snapshots and the
simulator feeds it virtual ones, so both route by exactly the same rules. The policy is an ordered
tuple of rules; each rule sees the calls and agents the earlier rules left and may pair some:

1. `local_rule`: a city's calls go to its own free agents (own calls always come first);
2. `overflow_rule`: the hosts' calls still waiting go to free agents of the helper cities of their
   surges' active waves, while the lender protection lets each helper lend (`lending_refusal`:
   its own service level, its own calls, the host's seat quota, its reserve). Across the hosts
   sharing a helper, the call that has waited longest, weighted by its surge's `severity`, goes
   first, so no host starves while another's fresher calls are served.

Within a city calls are taken in queue order (priority, then arrival), and the longest-idle
eligible agent gets each one. An agent is not eligible for a city's calls while the snapshot
holds it back for that city (`held_back`: it has not acknowledged the city's required script
version); it stays eligible for the other cities' calls.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from surge.state.base import IdleAgent, QueuedCall

# Below this many counted calls in the window, the missing ones count as answered in time: it
# takes as many late calls to stop a quiet helper lending as it takes a busy one.
SERVICE_LEVEL_MIN_SAMPLE = 10


@dataclass(frozen=True, slots=True)
class CitySnapshot:
    """One city at a moment: the head of its queue, its free agents, its load.

    `queue` is in queue order and `free_agents` longest idle first, as the hot state reads them
    (the policy relies on it and never sorts: the queue may be 50,000 calls long). Build one from
    unordered data with `CitySnapshot.build`. `waiting` counts every queued call (the queue given
    may be only its head); `serving` counts this city's agents holding an offer or a call of
    another city, by that city. `service_level` is the city's own service level over the
    protection window (`own_service_level`; None: no call to judge by, which is healthy).
    """

    code: str
    queue: tuple[QueuedCall, ...]
    free_agents: tuple[IdleAgent, ...]
    waiting: int = 0
    serving: Mapping[str, int] = field(default_factory=dict)
    service_level: float | None = None

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
    """An active surge: its host and, for the helper cities of its active waves, their limits."""

    surge_id: int
    host: str
    overflow_after_s: float  # 0: overflow as soon as no host agent is free; else wait this long
    quotas: Mapping[str, int]  # helper city -> how many of its agents may serve the host at once
    reserves: Mapping[str, int] = field(default_factory=dict)  # helper -> free agents kept back
    severity: float = 1.0  # weighs the host's waits against other hosts sharing a helper


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole province at `now` (epoch seconds), as the policy sees it.

    `protection_service_level` is the lender protection's target: a helper whose own service
    level is under it lends no agent (None: no such guard). `held_back`: per city, the agents
    (its own or helpers') offered none of its calls until they acknowledge its required script
    version.
    """

    now: float
    cities: Mapping[str, CitySnapshot]
    surges: tuple[SurgeView, ...] = ()
    protection_service_level: float | None = None
    held_back: Mapping[str, frozenset[int]] = field(default_factory=dict)


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
    served: Counter[str] = field(default_factory=Counter)  # own calls placed by `local_rule`


Rule = Callable[[Snapshot, _Pool], list[Assignment]]


def queue_order(calls: Sequence[QueuedCall]) -> list[QueuedCall]:
    """FIFO within priority: higher priority first, then arrival (call ids grow with arrival)."""
    return sorted(calls, key=lambda c: c.score)


def idle_order(agents: Sequence[IdleAgent]) -> list[IdleAgent]:
    """Longest idle first; ties broken by agent id so decisions are deterministic."""
    return sorted(agents, key=lambda a: (a.idle_since, a.agent_id))


def own_service_level(in_time: int, counted: int) -> float | None:
    """A city's own service level from its calls in the window (None when there are none).

    `counted`: its own calls answered or abandoned after the short-abandon time; `in_time`: those
    answered within the service-level time. Under `SERVICE_LEVEL_MIN_SAMPLE` calls the missing
    ones count as in time, so one late call of a quiet hour does not stop a helper lending.
    """
    if counted <= 0:
        return None
    if counted < SERVICE_LEVEL_MIN_SAMPLE:
        return (in_time + SERVICE_LEVEL_MIN_SAMPLE - counted) / SERVICE_LEVEL_MIN_SAMPLE
    return in_time / counted


def helper_reserves(surges: Sequence[SurgeView]) -> dict[str, int]:
    """Each helper's reserve: the largest its active waves ask (its own callers are the same)."""
    reserves: dict[str, int] = {}
    for surge in surges:
        for helper, reserve in surge.reserves.items():
            reserves[helper] = max(reserve, reserves.get(helper, 0))
    return reserves


def lending_refusal(
    *,
    service_level: float | None,
    target: float | None,
    own_waiting: int,
    in_use: int,
    quota: int,
    free: int,
    reserve: int,
) -> str | None:
    """Why a helper lends no agent to a host now, or None when its next free agent may go.

    The lender protection, in order: its own service level over the window under the target
    (`target` None: no guard); its own calls waiting (they come first); the host's seat quota
    full (`in_use` agents serving the host); its `free` agents down to its `reserve`.
    """
    if target is not None and service_level is not None and service_level < target:
        return f"own service level {service_level:.2f} under {target:.2f}"
    if own_waiting > 0:
        return "own calls waiting"
    if in_use >= quota:
        return "quota full"
    if reserve > 0 and free <= reserve:
        return "reserve"
    return None


def local_rule(snapshot: Snapshot, pool: _Pool) -> list[Assignment]:
    """A city's calls go to its own free agents: the head call to the longest-idle agent."""
    decisions: list[Assignment] = []
    for code in snapshot.cities:
        calls, agents = pool.calls[code], pool.agents[code]
        held = snapshot.held_back.get(code)
        eligible = agents if not held else [a for a in agents if a.agent_id not in held]
        pairs = min(len(calls), len(eligible))
        decisions.extend(
            Assignment(call_id=call.call_id, agent_id=agent.agent_id, city=code)
            for call, agent in zip(calls[:pairs], eligible[:pairs], strict=True)
        )
        if eligible is agents:
            del agents[:pairs]
        else:  # the held-back agents stay, in order, for other cities' calls
            given = {agent.agent_id for agent in eligible[:pairs]}
            agents[:] = [agent for agent in agents if agent.agent_id not in given]
        del calls[:pairs]
        pool.served[code] += pairs
    return decisions


@dataclass(slots=True)
class _Line:
    """A surge's host calls that may overflow now, in queue order, and how far it has got."""

    surge: SurgeView
    calls: list[QueuedCall]
    next: int = 0


def overflow_rule(snapshot: Snapshot, pool: _Pool) -> list[Assignment]:
    """The hosts' waiting calls go to lending helpers, the longest weighted wait first.

    The surges' queue heads are merged (a heap keyed by wait x severity, never a sort of whole
    queues): the surge whose next call scores highest takes the longest-idle agent of the
    helpers that lend to it; a surge no helper lends to now is done for this decision (lending
    only gets scarcer as agents are given).
    """
    decisions: list[Assignment] = []
    now = snapshot.now
    reserves = helper_reserves(snapshot.surges)
    taken: Counter[tuple[str, str]] = Counter()  # (helper, host) -> agents given just now
    placed: set[int] = set()
    lines: list[_Line] = []
    heads: list[tuple[float, int]] = []  # (-weighted wait of the next call, line)
    for surge in snapshot.surges:
        after = surge.overflow_after_s
        # A transferred call is for the host's own agents (the local rule), never a helper's.
        calls = [
            c
            for c in pool.calls.get(surge.host, ())
            if now - c.enqueued_at >= after and not c.transferred
        ]
        if calls:
            heads.append((-(now - calls[0].enqueued_at) * surge.severity, len(lines)))
            lines.append(_Line(surge, calls))
    heapq.heapify(heads)
    while heads:
        _, number = heapq.heappop(heads)
        line = lines[number]
        host = line.surge.host
        while line.next < len(line.calls) and line.calls[line.next].call_id in placed:
            line.next += 1  # placed by another surge of the same host
        if line.next == len(line.calls):
            continue
        agent = _lender(snapshot, pool, line.surge, reserves, taken)
        if agent is None:
            continue
        call = line.calls[line.next]
        line.next += 1
        decisions.append(Assignment(call.call_id, agent.agent_id, host, line.surge.surge_id))
        placed.add(call.call_id)
        taken[(agent.city, host)] += 1
        pool.agents[agent.city].remove(agent)  # the head, unless held-back agents lead
        if line.next < len(line.calls):
            wait = now - line.calls[line.next].enqueued_at
            heapq.heappush(heads, (-wait * line.surge.severity, number))
    if placed:
        for surge in snapshot.surges:
            left = pool.calls.get(surge.host)
            if left is not None:
                left[:] = [c for c in left if c.call_id not in placed]
    return decisions


def _lender(
    snapshot: Snapshot,
    pool: _Pool,
    surge: SurgeView,
    reserves: Mapping[str, int],
    taken: Mapping[tuple[str, str], int],
) -> IdleAgent | None:
    """The longest-idle free agent of the helpers that lend to the surge's host now, if any
    (passing over the agents the host holds back)."""
    best: IdleAgent | None = None
    held = snapshot.held_back.get(surge.host, frozenset())
    for helper, quota in surge.quotas.items():
        city = snapshot.cities.get(helper)
        free = pool.agents.get(helper)
        if city is None or helper == surge.host or not free:
            continue
        refusal = lending_refusal(
            service_level=city.service_level,
            target=snapshot.protection_service_level,
            own_waiting=city.waiting - pool.served[helper],  # its queue may be shown in part
            in_use=city.serving.get(surge.host, 0) + taken.get((helper, surge.host), 0),
            quota=quota,
            free=len(free),
            reserve=reserves.get(helper, 0),
        )
        head = next((agent for agent in free if agent.agent_id not in held), None)
        if (
            refusal is None
            and head is not None
            and (
                best is None or (head.idle_since, head.agent_id) < (best.idle_since, best.agent_id)
            )
        ):
            best = head
    return best


def _idler(agent: IdleAgent, other: IdleAgent) -> bool:
    """Whether `agent` comes before `other` in idle order."""
    return (agent.idle_since, agent.agent_id) < (other.idle_since, other.agent_id)


RULES: tuple[Rule, ...] = (local_rule, overflow_rule)


def transferred_at_head(queue: Sequence[QueuedCall]) -> int:
    """How many transferred calls lead a queue in queue order (they all wait ahead of the rest)."""
    count = 0
    for call in queue:
        if not call.transferred:
            break
        count += 1
    return count


def decide(snapshot: Snapshot) -> list[Assignment]:
    """Apply the rules in order; no call and no agent appears in more than one assignment."""
    # No more calls can be placed than there are free agents: only that much of each queue counts.
    # Transferred calls (at the head, for their city's own agents) do not count: the fresh calls
    # behind them may still go to helpers.
    free = sum(len(city.free_agents) for city in snapshot.cities.values())
    pool = _Pool(
        calls={
            code: list(city.queue[: free + transferred_at_head(city.queue)])
            for code, city in snapshot.cities.items()
        },
        agents={code: list(city.free_agents) for code, city in snapshot.cities.items()},
    )
    decisions: list[Assignment] = []
    for rule in RULES:
        decisions.extend(rule(snapshot, pool))
    return decisions
