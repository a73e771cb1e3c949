"""A discrete-event simulation of a province's hotlines, routed by `router.policy.decide`.

Virtual time, no sleeping and no network. Arrivals are Poisson per arrival window, handling and
patience exponential. Whenever something happens that could let a call be placed (an agent frees,
a call arrives where an agent could take it, a surge or wave starts, a waiting call reaches its
surge's overflow threshold), the simulator builds the same `Snapshot` the dispatcher builds from
the hot state and applies the policy's assignments as accepted offers.

Metrics per city (the city whose callers they are):
- answered / abandoned / offered (arrivals); calls still waiting at the end count in `offered`
  only;
- `asa_s`: total queue wait of answered calls / answered;
- `service_level`: answered within `service_level_s` / (answered + abandoned after 5 s), the
  report's definition (with no abandonment: the share of answered calls answered in time);
- `connection_rate`: answered / offered;
- `occupancy`: time the city's own agents spent handling calls (any city's), each with the
  agent's city's `wrap_up_s` after it, / (agents x duration);
- `answered_by_helpers`: the city's calls answered by other cities' agents;
- `callbacks_reached`: its callers called back (回拨) and served. With the scenario's
  `callbacks` (every city) or a surge's (its host, from the surge's start), a caller who gives up
  after the short-abandon time is not abandoned but becomes a callback at its original place in
  the queue (the service's rule), served by the same policy when an agent frees up, and counted
  answered (with its wait from its first arrival). Every callback reaches its caller.

`helpers` (an extension) lists, for each helper city and host, the calls it answered and the most
of its agents that served the host at once (never above its quota).

Lender protection is the policy's: a wave's `reserve`, and with the scenario's `protection` each
city's own service level over the last `window_s` of virtual time (own calls received in it,
`router.policy.own_service_level`) is measured and put in the snapshot. A helper city's row adds
`own_service_level_while_lending`: the service level of its own calls received while it was a
helper of an active wave (held back by the guard or not).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from surge.router.policy import (
    CitySnapshot,
    Snapshot,
    SurgeView,
    decide,
    helper_reserves,
    lending_refusal,
    own_service_level,
)
from surge.sim.scenario import Scenario, SurgePlan
from surge.state.base import IdleAgent, QueuedCall

SHORT_ABANDON_S = 5.0  # abandoned sooner than this do not count against the service level


class _Kind(IntEnum):
    """Event kinds, in the order simultaneous events are handled."""

    SURGE = 0
    FINISH = 1
    ARRIVAL = 2
    ABANDON = 3
    ELIGIBLE = 4


class _Status(IntEnum):
    WAITING = 0
    ANSWERED = 1
    ABANDONED = 2
    CALLBACK = 3  # gave up waiting, to be called back: still in its queue, at its place


_QUEUED = frozenset({_Status.WAITING, _Status.CALLBACK})


@dataclass(slots=True)
class CityStats:
    """What happened to one city's callers and agents."""

    code: str
    agents: int
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    abandoned_short: int = 0
    answered_by_helpers: int = 0
    answered_in_time: int = 0
    wait_total_s: float = 0.0
    busy_s: float = 0.0
    helper: bool = False  # it had seats in an active wave at some point
    lending_counted: int = 0  # its own calls received while it was a helper, as `service_level`
    lending_in_time: int = 0
    callbacks_reached: int = 0

    def result(self, *, duration_s: float) -> dict[str, Any]:
        """The output row API.md specifies (and, for a helper, its service while lending)."""
        counted = self.answered + self.abandoned - self.abandoned_short
        capacity = self.agents * duration_s
        row = {
            "code": self.code,
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "answered_by_helpers": self.answered_by_helpers,
            "asa_s": round(self.wait_total_s / self.answered, 3) if self.answered else None,
            "service_level": round(self.answered_in_time / counted, 4) if counted else None,
            "connection_rate": round(self.answered / self.offered, 4) if self.offered else None,
            "occupancy": round(min(1.0, self.busy_s / capacity), 4) if capacity else None,
            "callbacks_reached": self.callbacks_reached,
        }
        if self.helper:
            lent = self.lending_counted
            row["own_service_level_while_lending"] = (
                round(self.lending_in_time / lent, 4) if lent else None
            )
        return row


@dataclass(slots=True)
class _Surge:
    """A surge as it unfolds: the quotas of the waves started so far."""

    surge_id: int
    plan: SurgePlan
    quotas: dict[str, int] = field(default_factory=dict)
    reserves: dict[str, int] = field(default_factory=dict)

    def view(self) -> SurgeView:
        plan = self.plan
        return SurgeView(
            self.surge_id,
            plan.host_city,
            plan.overflow_after_s,
            self.quotas,
            self.reserves,
            plan.severity,
        )


class Simulation:
    """One run of a scenario. `run()` returns the result; the same seed gives the same result."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._rng = random.Random(scenario.seed)
        self._plans = {city.code: city for city in scenario.cities}
        self._now = 0.0
        self._events: list[tuple[float, int, int, Any]] = []
        self._sequence = itertools.count()
        # Calls: parallel arrays indexed by call id (ids follow arrival, as in the service).
        self._city_of: list[str] = []
        self._arrived: list[float] = []
        self._status = bytearray()
        self._lending = bytearray()  # 1: the call's city was a helper when it arrived
        self._queues: dict[str, deque[int]] = {code: deque() for code in self._plans}
        self._waiting: Counter[str] = Counter()
        # Agents: free ones per city in idle order (dicts keep insertion order, remove in O(1)).
        self._free: dict[str, dict[int, IdleAgent]] = {code: {} for code in self._plans}
        self._agent_city: dict[int, str] = {}
        self._serving: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._surges: list[_Surge] = []
        self.stats = {code: CityStats(code, plan.agents) for code, plan in self._plans.items()}
        self.decisions = 0
        self._helped: Counter[tuple[str, str]] = Counter()  # (helper, host) -> calls answered
        self._peak: Counter[tuple[str, str]] = Counter()  # (helper, host) -> most seats at once
        # The guard's window: per city, its counted own calls by arrival (a heap, oldest first)
        # and how many of those are in it and were answered in time.
        self._protection = scenario.protection
        self._window: dict[str, list[tuple[float, bool]]] = {code: [] for code in self._plans}
        self._window_counted: Counter[str] = Counter()
        self._window_in_time: Counter[str] = Counter()
        self._helpers: set[str] = set()  # cities with seats in an active wave
        self._reserves: dict[str, int] = {}  # each helper's reserve (`helper_reserves`)

    # --- set-up --------------------------------------------------------------------------------
    def _schedule(self, at: float, kind: _Kind, payload: Any = None) -> None:
        heapq.heappush(self._events, (at, kind, next(self._sequence), payload))

    def _start(self) -> None:
        agent_ids = itertools.count(1)
        for code, plan in self._plans.items():
            for _ in range(plan.agents):
                agent = next(agent_ids)
                self._agent_city[agent] = code
                self._free[code][agent] = IdleAgent(agent, code, 0.0)
            for window in plan.arrivals:
                if window.per_hour > 0:
                    self._next_arrival(code, window.from_s, window.to_s, window.per_hour / 3600)
        for number, surge in enumerate(self.scenario.surges, start=1):
            self._schedule(surge.at_s, _Kind.SURGE, (number, surge, None))
            for wave in surge.waves:
                self._schedule(max(wave.at_s, surge.at_s), _Kind.SURGE, (number, surge, wave))

    def _next_arrival(self, city: str, after: float, until: float, rate: float) -> None:
        at = after + self._rng.expovariate(rate)
        if at < until:
            self._schedule(at, _Kind.ARRIVAL, (city, until, rate))

    # --- the run ---------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Simulate until `duration_s`; return the per-city results."""
        self._start()
        end = self.scenario.duration_s
        while self._events and self._events[0][0] <= end:
            self._now, kind, _, payload = heapq.heappop(self._events)
            if self._handle(_Kind(kind), payload):
                self._dispatch()
        return {
            "seed": self.scenario.seed,
            "duration_s": end,
            "decisions": self.decisions,
            "cities": [stats.result(duration_s=end) for stats in self.stats.values()],
            "helpers": [
                {
                    "city": helper,
                    "host": host,
                    "answered": answered,
                    "peak_seats": self._peak[(helper, host)],
                }
                for (helper, host), answered in sorted(self._helped.items())
            ],
        }

    def _handle(self, kind: _Kind, payload: Any) -> bool:
        """Apply one event; say whether it may let a call be placed."""
        if kind is _Kind.ARRIVAL:
            city, until, rate = payload
            self._next_arrival(city, self._now, until, rate)
            return self._arrive(city)
        if kind is _Kind.FINISH:
            agent, call_city = payload
            home = self._agent_city[agent]
            if call_city != home:
                self._serving[home][call_city] -= 1
            self._free[home][agent] = IdleAgent(agent, home, self._now)
            return True
        if kind is _Kind.ABANDON:
            return self._abandon(payload)
        if kind is _Kind.SURGE:
            self._surge_event(*payload)
            return True
        return self._status[payload] in _QUEUED  # ELIGIBLE: it may overflow now

    def _arrive(self, city: str) -> bool:
        call = len(self._arrived)
        self._city_of.append(city)
        self._arrived.append(self._now)
        self._status.append(_Status.WAITING)
        self._lending.append(city in self._helpers)
        self._queues[city].append(call)
        self._waiting[city] += 1
        self.stats[city].offered += 1
        patience = self._plans[city].patience_s
        if patience is not None:
            self._schedule(self._now + self._rng.expovariate(1 / patience), _Kind.ABANDON, call)
        for surge in self._surges:
            if surge.plan.host_city == city and surge.plan.overflow_after_s > 0:
                self._schedule(self._now + surge.plan.overflow_after_s, _Kind.ELIGIBLE, call)
        return bool(self._free[city]) or self._helpers_have_room(city)

    def _calls_back(self, city: str) -> bool:
        """Whether the city's callers who give up are called back now."""
        return self.scenario.callbacks or any(
            surge.plan.callbacks and surge.plan.host_city == city for surge in self._surges
        )

    def _abandon(self, call: int) -> bool:
        if self._status[call] != _Status.WAITING:
            return False
        city = self._city_of[call]
        waited = self._now - self._arrived[call]
        if waited >= SHORT_ABANDON_S and self._calls_back(city):
            self._status[call] = _Status.CALLBACK  # keeps its place and its wait
            return False
        self._status[call] = _Status.ABANDONED
        self._waiting[city] -= 1
        stats = self.stats[city]
        stats.abandoned += 1
        if waited < SHORT_ABANDON_S:
            stats.abandoned_short += 1
        else:
            self._count(call, in_time=False)
        # A helper whose own queue just emptied may help again.
        return any(city in surge.quotas and self._free[city] for surge in self._surges)

    def _surge_event(self, number: int, plan: SurgePlan, wave: Any) -> None:
        surge = next((s for s in self._surges if s.surge_id == number), None)
        if surge is None:
            surge = _Surge(number, plan)
            self._surges.append(surge)
            if plan.overflow_after_s > 0:  # calls already waiting may overflow later
                for call in self._queues[plan.host_city]:
                    at = self._arrived[call] + plan.overflow_after_s
                    if self._status[call] in _QUEUED and at > self._now:
                        self._schedule(at, _Kind.ELIGIBLE, call)
        if wave is not None:
            surge.quotas.update(dict.fromkeys(wave.cities, wave.seats_per_city))
            surge.reserves.update(dict.fromkeys(wave.cities, wave.reserve))
            self._helpers.update(wave.cities)
            self._reserves = helper_reserves([s.view() for s in self._surges])
            for code in wave.cities:
                self.stats[code].helper = True

    def _count(self, call: int, *, in_time: bool) -> None:
        """A call of its city answered, or abandoned after the short-abandon time."""
        city = self._city_of[call]
        if self._lending[call]:
            stats = self.stats[city]
            stats.lending_counted += 1
            stats.lending_in_time += in_time
        if self._protection is not None:
            heapq.heappush(self._window[city], (self._arrived[call], in_time))
            self._window_counted[city] += 1
            self._window_in_time[city] += in_time

    def _service_level(self, city: str) -> float | None:
        """The city's own service level over the guard's window (None: no guard, or no call)."""
        if self._protection is None:
            return None
        window = self._window[city]
        since = self._now - self._protection.window_s
        while window and window[0][0] < since:
            _, in_time = heapq.heappop(window)
            self._window_counted[city] -= 1
            self._window_in_time[city] -= in_time
        return own_service_level(self._window_in_time[city], self._window_counted[city])

    def _helper_room(self, host: str) -> int:
        """How many free helper agents could take the host's calls right now (an upper bound)."""
        room = 0
        target = self._protection.service_level if self._protection else None
        for surge in self._surges:
            if surge.plan.host_city != host:
                continue
            for helper, quota in surge.quotas.items():
                free, in_use = len(self._free[helper]), self._serving[helper][host]
                reserve = self._reserves.get(helper, 0)
                refusal = lending_refusal(
                    service_level=self._service_level(helper),
                    target=target,
                    own_waiting=self._waiting[helper],
                    in_use=in_use,
                    quota=quota,
                    free=free,
                    reserve=reserve,
                )
                if refusal is None:
                    room += max(0, min(free - reserve, quota - in_use))
        return room

    def _helpers_have_room(self, host: str) -> bool:
        return self._helper_room(host) > 0

    # --- routing -------------------------------------------------------------------------------
    def _head(self, city: str, depth: int) -> tuple[QueuedCall, ...]:
        """The first `depth` waiting calls of the city's queue (answered/abandoned ones dropped)."""
        if depth <= 0:
            return ()
        queue = self._queues[city]
        while queue and self._status[queue[0]] not in _QUEUED:
            queue.popleft()
        head: list[QueuedCall] = []
        for call in queue:
            status = self._status[call]
            if status in _QUEUED:
                callback = status == _Status.CALLBACK
                arrived = self._arrived[call]
                head.append(QueuedCall(call, city, 0, arrived, "", "phone", callback=callback))
                if len(head) == depth:
                    break
        return tuple(head)

    def _dispatch(self) -> None:
        free = sum(len(agents) for agents in self._free.values())
        if not free:
            return
        snapshot = Snapshot(
            now=self._now,
            cities={
                code: CitySnapshot(
                    code=code,
                    queue=self._head(code, len(self._free[code]) + self._helper_room(code)),
                    free_agents=tuple(self._free[code].values()),
                    waiting=self._waiting[code],
                    serving=self._serving[code],
                    service_level=self._service_level(code),
                )
                for code in self._plans
            },
            surges=tuple(surge.view() for surge in self._surges),
            protection_service_level=self._protection.service_level if self._protection else None,
        )
        self.decisions += 1
        for assignment in decide(snapshot):
            self._connect(assignment.call_id, assignment.agent_id)

    def _connect(self, call: int, agent: int) -> None:
        city, home = self._city_of[call], self._agent_city[agent]
        if self._status[call] == _Status.CALLBACK:
            self.stats[city].callbacks_reached += 1
        self._status[call] = _Status.ANSWERED
        self._waiting[city] -= 1
        del self._free[home][agent]
        wait = self._now - self._arrived[call]
        stats = self.stats[city]
        stats.answered += 1
        stats.wait_total_s += wait
        if wait <= self.scenario.service_level_s:
            stats.answered_in_time += 1
        self._count(call, in_time=wait <= self.scenario.service_level_s)
        # The agent's own city's wrap-up follows the call: still occupied (and still lent).
        handling = self._rng.expovariate(1 / self._plans[city].aht_s) + self._plans[home].wrap_up_s
        self.stats[home].busy_s += max(0.0, min(handling, self.scenario.duration_s - self._now))
        if city != home:
            stats.answered_by_helpers += 1
            self._serving[home][city] += 1
            self._helped[(home, city)] += 1
            self._peak[(home, city)] = max(self._peak[(home, city)], self._serving[home][city])
        self._schedule(self._now + handling, _Kind.FINISH, (agent, city))


def simulate(scenario: Scenario) -> dict[str, Any]:
    """Run a scenario and return its result (see the module docstring for the metrics)."""
    return Simulation(scenario).run()
