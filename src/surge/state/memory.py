"""The hot state in process memory: for a single service instance, development and tests."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import orjson
from sortedcontainers import SortedKeyList, SortedList

from surge.errors import AgentEngaged, AgentNotPresent
from surge.state.base import (
    AgentPresence,
    AgentState,
    CallLocation,
    CityView,
    HeldOffer,
    IdleAgent,
    Lend,
    OfferClaim,
    Outcome,
    QueuedCall,
    Reaped,
    Withdrawn,
    WrapUp,
    check_agent_move,
)

_HITS_PRUNE_AT = 10_000  # rate-limit keys kept before ended windows are swept out


@dataclass(slots=True)
class _Agent:
    """A present agent's mutable record; `idle_since` only changes when it becomes available."""

    city: str
    state: AgentState
    instance: str
    idle_since: float
    offer_id: str | None = None
    call_id: int | None = None
    lent_to: str | None = None
    wrap_up: WrapUp | None = None
    since: float = 0.0  # the wall clock when it entered its state (or connected)

    def presence(self, agent_id: int) -> AgentPresence:
        """Freeze the record for callers."""
        return AgentPresence(
            agent_id=agent_id,
            city=self.city,
            state=self.state,
            instance=self.instance,
            idle_since=self.idle_since,
            offer_id=self.offer_id,
            call_id=self.call_id,
            lent_to=self.lent_to,
            wrap_up=self.wrap_up,
            since=self.since,
        )


def _by_score(call: QueuedCall) -> float:
    return call.score


def _by_age(call: QueuedCall) -> tuple[float, int]:
    return (call.enqueued_at, call.call_id)


def _by_idle(agent: IdleAgent) -> tuple[float, int]:
    return (agent.idle_since, agent.agent_id)


class InMemoryState:
    """`HotState` in dicts and sorted lists.

    Atomicity comes from asyncio itself: no method awaits while it changes anything, so each
    runs to completion before another task sees the state.
    """

    def __init__(self) -> None:
        self._calls: dict[int, QueuedCall] = {}  # queued and offered calls
        self._offer_of_call: dict[int, str] = {}
        self._queues: defaultdict[str, SortedKeyList[QueuedCall, float]] = defaultdict(
            lambda: SortedKeyList(key=_by_score)
        )
        # A second order per city answers `oldest_enqueued_at`: the head of the queue is the
        # highest priority, not necessarily the longest waiting.
        self._ages: defaultdict[str, SortedKeyList[QueuedCall, tuple[float, int]]] = defaultdict(
            lambda: SortedKeyList(key=_by_age)
        )
        self._offers: dict[str, HeldOffer] = {}
        self._expiry: SortedList[tuple[float, str]] = SortedList()
        self._wrap_ups: SortedList[tuple[float, int]] = SortedList()  # (until, agent)
        self._agents: dict[int, _Agent] = {}
        self._idle: defaultdict[str, SortedKeyList[IdleAgent, tuple[float, int]]] = defaultdict(
            lambda: SortedKeyList(key=_by_idle)
        )
        self._engaged: defaultdict[tuple[str, AgentState], set[int]] = defaultdict(set)
        self._lending: defaultdict[str, Counter[str]] = defaultdict(Counter)  # helper -> host -> n
        self._ended_surges: set[int] = set()  # surges no claim may lend for any more
        # Absent agents that left with a host's call in hand: agent -> (city, host, call id).
        self._away: dict[int, tuple[str, str, int]] = {}
        self._heartbeats: dict[str, float] = {}
        self._members: defaultdict[str, set[int]] = defaultdict(set)
        self._hits: dict[str, tuple[float, int]] = {}  # key -> (window end, monotonic clock; hits)
        self._listeners: set[asyncio.Queue[bytes | None]] = set()
        self._closed = False
        self.failures = 0  # nothing here can fail the way a server can
        self._epoch: str | None = None
        self._changes = 0  # raised whenever an offer may have become possible

    async def ping(self) -> None:
        """Always answers: the state lives in this process."""

    async def close(self) -> None:
        """Stop every listener; the data stays until the object is dropped."""
        self._closed = True
        for inbox in self._listeners:
            inbox.put_nowait(None)

    async def reset(self) -> None:
        """Forget every call, offer, agent, instance and hit counter."""
        for container in (
            self._calls,
            self._offer_of_call,
            self._queues,
            self._ages,
            self._offers,
            self._expiry,
            self._wrap_ups,
            self._agents,
            self._idle,
            self._engaged,
            self._lending,
            self._ended_surges,
            self._away,
            self._heartbeats,
            self._members,
            self._hits,
        ):
            container.clear()
        self._epoch = None

    async def epoch(self) -> str | None:
        """The marker of the current build (lost only by `reset`: the process holds the data)."""
        return self._epoch

    async def begin_epoch(self, epoch: str) -> str:
        """Mark a build with `epoch` unless one is marked; return the one in force."""
        if self._epoch is None:
            self._epoch = epoch
        return self._epoch

    async def change_mark(self) -> str:
        """The epoch and the count of changes that may have made an offer possible."""
        return f"{self._epoch or ''}:{self._changes}"

    # --- queues -----------------------------------------------------------------------------
    async def enqueue(self, calls: Sequence[QueuedCall]) -> list[bool]:
        """Queue calls in their cities; one already queued or offered is left alone (False)."""
        added: list[bool] = []
        for call in calls:
            fresh = call.call_id not in self._calls
            if fresh:
                self._calls[call.call_id] = call
                self._queue(call)
            added.append(fresh)
        return added

    async def locate(self, call_ids: Sequence[int]) -> dict[int, CallLocation]:
        """Say where each call is held."""
        return {call_id: self._location(call_id) for call_id in call_ids}

    async def withdraw(self, call_id: int) -> Withdrawn:
        """Take a call out of the hot state; an offered call's agent is idle as before the offer."""
        location = self._location(call_id)
        if location is CallLocation.ABSENT:
            return Withdrawn(location)
        call = self._calls.pop(call_id)
        if location is CallLocation.QUEUED:
            self._unqueue(call)
            return Withdrawn(location)
        held = self._end_offer(self._offer_of_call[call_id])
        agent = self._agents[held.agent_id]
        self._move(held.agent_id, agent, AgentState.AVAILABLE, agent.idle_since)
        return Withdrawn(location, held)

    async def snapshot(
        self,
        cities: Sequence[str],
        *,
        queue_depth: int,
        placeable_only: bool = False,
        lends_to: Mapping[str, Collection[str]] | None = None,
        spare: Mapping[str, int] | None = None,
    ) -> dict[str, CityView]:
        """Read every named city's figures, free agents and up to `queue_depth` head calls."""
        queue_depth = max(0, queue_depth)
        if placeable_only:  # no more calls than the free agents could take
            queue_depth = min(queue_depth, sum(len(self._idle.get(c, ())) for c in cities))
        # Transferred calls lead their queues (scores below 0) and come on top of the depth.
        heads = {
            city: tuple(held[: queue_depth + held.bisect_key_left(0.0)])
            for city in cities
            if queue_depth > 0 and (held := self._queues.get(city))
        }
        views: dict[str, CityView] = {}
        for city in cities:
            queue = self._queues.get(city, ())
            ages = self._ages.get(city)
            idle: Sequence[IdleAgent] = self._idle.get(city, ())
            if placeable_only:  # only as many free agents as the calls read could use
                usable = len(heads.get(city, ())) + sum(
                    len(heads.get(host, ())) for host in (lends_to or {}).get(city, ())
                )
                if usable:
                    usable += (spare or {}).get(city, 0)
                idle = idle[:usable]
            views[city] = CityView(
                city=city,
                waiting=len(queue),
                oldest_enqueued_at=ages[0].enqueued_at if ages else None,
                queue=heads.get(city, ()),
                idle=tuple(idle),
                offered=len(self._engaged.get((city, AgentState.OFFERED), ())),
                busy=len(self._engaged.get((city, AgentState.BUSY), ()))
                + len(self._engaged.get((city, AgentState.WRAP_UP), ())),
                on_break=len(self._engaged.get((city, AgentState.BREAK), ())),
                lent=dict(self._lending[city]) if city in self._lending else {},
            )
        return views

    async def dispatch_view(
        self,
        cities: Sequence[str],
        *,
        queue_depth: int,
        lends_to: Mapping[str, Collection[str]] | None = None,
        spare: Mapping[str, int] | None = None,
        unless_mark: str | None = None,
    ) -> tuple[str, dict[str, CityView] | None]:
        """The change mark and, unless it is `unless_mark`, the placeable-only snapshot."""
        mark = await self.change_mark()
        if mark == unless_mark:
            return mark, None
        views = await self.snapshot(
            cities, queue_depth=queue_depth, placeable_only=True, lends_to=lends_to, spare=spare
        )
        return mark, views

    # --- offers -----------------------------------------------------------------------------
    async def claim(self, claims: Sequence[OfferClaim]) -> list[HeldOffer | None]:
        """Make each claim real if its call is queued and its agent available, in order."""
        made: list[HeldOffer | None] = []
        for claim in claims:
            call = self._calls.get(claim.call_id)
            agent = self._agents.get(claim.agent_id)
            if (
                call is None
                or claim.call_id in self._offer_of_call
                or agent is None
                or agent.state is not AgentState.AVAILABLE
                or claim.offer_id in self._offers
                or not self._may_lend(claim.lend, agent.city, call.city)
            ):
                made.append(None)
                continue
            held = HeldOffer(claim.offer_id, call, claim.agent_id, claim.expires_at)
            self._unqueue(call)
            self._offer_of_call[call.call_id] = claim.offer_id
            self._offers[claim.offer_id] = held
            self._expiry.add((claim.expires_at, claim.offer_id))
            self._move(claim.agent_id, agent, AgentState.OFFERED, agent.idle_since)
            agent.offer_id = claim.offer_id
            self._lend(agent, call.city)
            made.append(held)
        return made

    async def end_lending(self, surge_id: int, host: str) -> list[HeldOffer]:
        """Refuse later claims lent for the surge; end the host's offers to other cities' agents."""
        self._ended_surges.add(surge_id)
        ended: list[HeldOffer] = []
        for offer_id, held in list(self._offers.items()):
            agent = self._agents[held.agent_id]
            if held.call.city == host and agent.city != host:
                self._end_offer(offer_id)
                self._queue(held.call)
                self._move(held.agent_id, agent, AgentState.AVAILABLE, agent.idle_since)
                ended.append(held)
        return ended

    async def accept(
        self, offer_id: str, agent_id: int, now: float
    ) -> tuple[Outcome, HeldOffer | None]:
        """End the offer: the agent becomes `busy` with the call, which leaves the hot state."""
        outcome = self._answerable(offer_id, agent_id, now)
        if outcome is not Outcome.DONE:
            return outcome, None
        held = self._end_offer(offer_id)
        del self._calls[held.call.call_id]
        agent = self._agents[agent_id]
        self._move(agent_id, agent, AgentState.BUSY, agent.idle_since)
        agent.call_id = held.call.call_id
        return outcome, held

    async def decline(
        self, offer_id: str, agent_id: int, now: float
    ) -> tuple[Outcome, HeldOffer | None]:
        """End the offer: the call goes back to its place, the agent is available idle since now."""
        outcome = self._answerable(offer_id, agent_id, now)
        if outcome is not Outcome.DONE:
            return outcome, None
        held = self._end_offer(offer_id)
        self._queue(held.call)
        self._move(agent_id, self._agents[agent_id], AgentState.AVAILABLE, now)
        return outcome, held

    async def expire_offers(self, now: float, *, limit: int = 200) -> list[HeldOffer]:
        """End up to `limit` offers due by `now`, soonest first; their agents go on break."""
        # The expiry list is sorted, so the due offers are a prefix of it.
        due = [oid for expires_at, oid in islice(self._expiry, max(limit, 0)) if expires_at <= now]
        ended: list[HeldOffer] = []
        for offer_id in due:
            held = self._end_offer(offer_id)
            self._queue(held.call)
            agent = self._agents[held.agent_id]
            self._move(held.agent_id, agent, AgentState.BREAK, agent.idle_since)
            ended.append(held)
        return ended

    # --- agents -----------------------------------------------------------------------------
    async def agent_connect(
        self,
        agent_id: int,
        city: str,
        *,
        instance: str,
        now: float,
        call_id: int | None,
        call_city: str | None = None,
    ) -> AgentPresence:
        """Make the agent present on `instance`; a known agent keeps its city and state, unless
        it is busy with another call than the one in hand (`call_id`, the database's word): that
        presence is stale (its instance died between the two) and the agent starts afresh."""
        agent = self._agents.get(agent_id)
        if agent is not None and agent.state is AgentState.BUSY and agent.call_id != call_id:
            self._drop(agent_id, agent)
            agent = None
        state = AgentState.BREAK if call_id is None else AgentState.BUSY
        if agent is None:
            check_agent_move(None, state)
            agent = _Agent(city, state, instance, idle_since=now, call_id=call_id)
            agent.since = time.time()
            self._agents[agent_id] = agent
            self._engaged[(city, state)].add(agent_id)
            away = self._away.pop(agent_id, None)
            if away is not None and away[2] == call_id:
                agent.lent_to = away[1]  # back with the call it left with: still counted
            else:
                if away is not None:  # that call was finished without it
                    self._uncount(away[0], away[1])
                if call_id is not None and call_city is not None:
                    self._lend(agent, call_city)
        else:
            self._members[agent.instance].discard(agent_id)
            agent.instance = instance
            if agent.state is AgentState.LOST:
                self._move(agent_id, agent, state, now)
                agent.call_id = call_id
                if call_id is not None and call_city is not None and agent.lent_to is None:
                    self._lend(agent, call_city)
        self._members[instance].add(agent_id)
        # An instance that dies before its first heartbeat must still be reapable.
        self._heartbeats.setdefault(instance, now)
        return agent.presence(agent_id)

    async def agent_disconnect(self, agent_id: int, *, instance: str) -> HeldOffer | None:
        """Make the agent absent unless it is now on another instance; return the offer it lost."""
        agent = self._agents.get(agent_id)
        if agent is None or agent.instance != instance:
            return None
        return self._drop(agent_id, agent)

    async def agent_lost(self, agent_id: int, *, instance: str) -> HeldOffer | None:
        """The agent stopped answering: `lost`, keeping its call; its offer's call is requeued."""
        agent = self._agents.get(agent_id)
        if agent is None or agent.instance != instance or agent.state is AgentState.LOST:
            return None
        held = None
        if agent.offer_id is not None:
            held = self._end_offer(agent.offer_id)
            self._queue(held.call)
        call_id = agent.call_id
        self._move(agent_id, agent, AgentState.LOST, agent.idle_since)
        agent.call_id = call_id
        if call_id is None:
            self._unlend(agent)  # it lost an offer only: it serves no host now
        return held

    async def set_agent_state(
        self, agent_id: int, state: AgentState, now: float
    ) -> tuple[AgentPresence, WrapUp | None]:
        """Move a present agent between `available` and `break`, or out of its wrap-up."""
        if state not in (AgentState.AVAILABLE, AgentState.BREAK):
            raise ValueError(f"agents can only choose available or break, not {state}")
        agent = self._agents.get(agent_id)
        if agent is None or agent.state is AgentState.LOST:
            raise AgentNotPresent(f"agent {agent_id} is not connected")
        if agent.state in (AgentState.OFFERED, AgentState.BUSY):
            raise AgentEngaged(f"agent {agent_id} is {agent.state}")
        ended = agent.wrap_up
        if agent.state is not state:
            idle_since = now if state is AgentState.AVAILABLE else agent.idle_since
            self._move(agent_id, agent, state, idle_since)
        return agent.presence(agent_id), ended

    async def finish_call(
        self,
        agent_id: int,
        call_id: int,
        now: float,
        *,
        wrap_up_s: float = 0.0,
        publish: Mapping[str, Any] | None = None,
    ) -> AgentPresence | None:
        """A present agent busy with `call_id` goes into its wrap-up (available when there is
        none), idle since now; else None. Then `publish`, if given, goes on the bus.

        An absent agent that left with `call_id` in hand no longer counts as lent.
        """
        presence = self._finish(agent_id, call_id, now, wrap_up_s)
        if publish is not None:
            await self.publish(publish)
        return presence

    def _finish(
        self, agent_id: int, call_id: int, now: float, wrap_up_s: float
    ) -> AgentPresence | None:
        away = self._away.get(agent_id)
        if away is not None and away[2] == call_id:
            del self._away[agent_id]
            self._uncount(away[0], away[1])
        agent = self._agents.get(agent_id)
        if agent is not None and agent.state is AgentState.LOST and agent.call_id == call_id:
            self._unlend(agent)  # its call was finished without it (released)
        if agent is None or agent.state is not AgentState.BUSY or agent.call_id != call_id:
            return None
        if wrap_up_s > 0:
            self._move(agent_id, agent, AgentState.WRAP_UP, now)
            agent.wrap_up = WrapUp(call_id, now + wrap_up_s)
            self._wrap_ups.add((agent.wrap_up.until, agent_id))
        else:
            self._move(agent_id, agent, AgentState.AVAILABLE, now)
        return agent.presence(agent_id)

    async def end_wrap_ups(
        self, now: float, *, instance: str, limit: int = 200
    ) -> list[tuple[int, WrapUp]]:
        """End the due wrap-ups of agents on `instance`: available, idle since the end."""
        ended: list[tuple[int, WrapUp]] = []
        for _, agent_id in self._wrap_ups.irange(maximum=(now, sys.maxsize)):
            agent = self._agents[agent_id]
            if agent.instance != instance:
                continue
            assert agent.wrap_up is not None
            ended.append((agent_id, agent.wrap_up))
            if len(ended) == limit:
                break
        for agent_id, wrap_up in ended:
            self._move(agent_id, self._agents[agent_id], AgentState.AVAILABLE, wrap_up.until)
        return ended

    async def get_agent(self, agent_id: int) -> AgentPresence | None:
        """Return the agent's presence, or None when it is offline."""
        agent = self._agents.get(agent_id)
        return None if agent is None else agent.presence(agent_id)

    async def agents(self, cities: Sequence[str]) -> list[AgentPresence]:
        """Every known agent of the named cities (present or lost), by id."""
        wanted = set(cities)
        return [
            agent.presence(agent_id)
            for agent_id, agent in sorted(self._agents.items())
            if agent.city in wanted
        ]

    async def present_agents(self, cities: Sequence[str]) -> dict[str, list[int]]:
        """The ids of every present agent of each named city (in any state), ascending."""
        present: dict[str, list[int]] = {city: [] for city in cities}
        for agent_id, agent in self._agents.items():
            if agent.city in present and agent.state is not AgentState.LOST:
                present[agent.city].append(agent_id)
        return {city: sorted(ids) for city, ids in present.items()}

    async def get_offer(self, offer_id: str) -> HeldOffer | None:
        """Return the live offer, or None."""
        return self._offers.get(offer_id)

    async def heartbeat(self, instance: str, now: float) -> None:
        """Record that `instance` is alive."""
        self._heartbeats[instance] = now

    async def reap_instances(self, now: float, *, max_silence_s: float) -> Reaped:
        """Forget the instances silent for longer than `max_silence_s`; disconnect their agents."""
        cutoff = now - max_silence_s
        silent = tuple(name for name, seen in self._heartbeats.items() if seen < cutoff)
        reaped: list[tuple[int, HeldOffer | None]] = []
        for instance in silent:
            del self._heartbeats[instance]
            for agent_id in sorted(self._members.get(instance, ())):
                reaped.append((agent_id, self._drop(agent_id, self._agents[agent_id])))
            self._members.pop(instance, None)
        return Reaped(silent, reaped)

    # --- rate limits --------------------------------------------------------------------------
    async def count_hit(self, key: str, *, window_s: float) -> int:
        """Count one hit on `key` and return the hits in the current fixed window."""
        # The interface gives no `now` here; the monotonic clock cannot jump with wall time.
        now = time.monotonic()
        window_end, hits = self._hits.get(key, (now, 0))
        if window_end <= now:
            window_end, hits = now + window_s, 0
            if len(self._hits) >= _HITS_PRUNE_AT:  # a spray of names: forget ended windows
                self._hits = {k: v for k, v in self._hits.items() if v[0] > now}
        self._hits[key] = (window_end, hits + 1)
        return hits + 1

    async def reset_hits(self, key: str) -> None:
        """Forget the hits on `key`."""
        self._hits.pop(key, None)

    async def forgive_hit(self, key: str) -> None:
        """Take one hit on `key` back (an attempt counted beforehand that turned out well)."""
        window_end, hits = self._hits.get(key, (0.0, 0))
        if window_end > time.monotonic() and hits > 0:
            self._hits[key] = (window_end, hits - 1)

    # --- event bus ----------------------------------------------------------------------------
    async def publish(self, event: Mapping[str, Any]) -> None:
        """No other instance shares this state: the event goes nowhere (encoded all the same,
        as Redis does, so that what another adapter could not carry is refused here too)."""
        orjson.dumps(event)

    async def welcomed(self) -> None:
        """No other instance shares this state: there is nobody to wait for."""

    async def echo(self, event: Mapping[str, Any]) -> None:
        """Hand the event to every listener of this process (each its own copy)."""
        data = orjson.dumps(event)
        for inbox in self._listeners:
            inbox.put_nowait(data)

    async def listen(self) -> AsyncIterator[dict[str, Any]]:
        """Yield every event echoed from the first iteration on, until `close()`."""
        inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._listeners.add(inbox)
        try:
            # Like the Redis adapter, a closed state ends its listeners at once, leaving any
            # events still waiting for them.
            while not self._closed and (data := await inbox.get()) is not None:
                yield orjson.loads(data)
        finally:
            self._listeners.discard(inbox)

    # --- helpers (none awaits, so each keeps the caller atomic) -------------------------------
    def _location(self, call_id: int) -> CallLocation:
        if call_id in self._offer_of_call:
            return CallLocation.OFFERED
        if call_id in self._calls:
            return CallLocation.QUEUED
        return CallLocation.ABSENT

    def _queue(self, call: QueuedCall) -> None:
        """Put a held call (back) at its place: the score alone decides it."""
        self._queues[call.city].add(call)
        self._ages[call.city].add(call)
        self._changes += 1

    def _unqueue(self, call: QueuedCall) -> None:
        self._queues[call.city].remove(call)
        self._ages[call.city].remove(call)

    def _end_offer(self, offer_id: str) -> HeldOffer:
        """Forget a live offer; the caller decides where its call and agent go."""
        held = self._offers.pop(offer_id)
        self._expiry.remove((held.expires_at, offer_id))
        del self._offer_of_call[held.call.call_id]
        return held

    def _answerable(self, offer_id: str, agent_id: int, now: float) -> Outcome:
        held = self._offers.get(offer_id)
        if held is None or held.expires_at <= now:
            return Outcome.UNKNOWN
        return Outcome.DONE if held.agent_id == agent_id else Outcome.NOT_YOURS

    def _leave(self, agent_id: int, agent: _Agent) -> None:
        """Take an agent out of the idle list or the engaged set its state files it under."""
        if agent.state is AgentState.AVAILABLE:
            self._idle[agent.city].remove(IdleAgent(agent_id, agent.city, agent.idle_since))
        else:
            self._engaged[(agent.city, agent.state)].discard(agent_id)

    def _may_lend(self, lend: Lend | None, helper: str, host: str) -> bool:
        """A claim for a surge needs the surge still lending and the helper below its quota."""
        if lend is None:
            return True
        lending = self._lending.get(helper)
        lent = lending[host] if lending is not None else 0
        return lend.surge_id not in self._ended_surges and lent < lend.quota

    def _lend(self, agent: _Agent, host: str) -> None:
        """The agent now holds an offer or a call of `host`: count it if that is another city."""
        if host != agent.city:
            agent.lent_to = host
            self._lending[agent.city][host] += 1

    def _unlend(self, agent: _Agent) -> None:
        """The agent holds no offer or call any more: it no longer counts against a quota."""
        if agent.lent_to is not None:
            self._uncount(agent.city, agent.lent_to)
            agent.lent_to = None

    def _uncount(self, helper: str, host: str) -> None:
        counts = self._lending[helper]
        counts[host] -= 1
        if counts[host] <= 0:
            del counts[host]
        if not counts:
            del self._lending[helper]
        self._changes += 1  # a seat the helper lends is free

    def _move(self, agent_id: int, agent: _Agent, state: AgentState, idle_since: float) -> None:
        """Move an agent to `state`, filing it accordingly; it no longer has an offer or call.

        An agent lent to a host stays lent while offered, busy (an accepted offer) or wrapping
        up its call, and no longer once it is available or on break.
        """
        check_agent_move(agent.state, state)
        self._leave(agent_id, agent)
        if agent.wrap_up is not None:
            self._wrap_ups.remove((agent.wrap_up.until, agent_id))
            agent.wrap_up = None
        if state in (AgentState.AVAILABLE, AgentState.BREAK):
            self._unlend(agent)
        agent.state, agent.idle_since = state, idle_since
        agent.since = time.time()
        agent.offer_id = agent.call_id = None
        if state is AgentState.AVAILABLE:
            self._idle[agent.city].add(IdleAgent(agent_id, agent.city, idle_since))
            self._changes += 1
        else:
            self._engaged[(agent.city, state)].add(agent_id)

    def _drop(self, agent_id: int, agent: _Agent) -> HeldOffer | None:
        """Make an agent absent; an offer it held ends and its call goes back to its place."""
        check_agent_move(agent.state, None)
        if agent.wrap_up is not None:
            self._wrap_ups.remove((agent.wrap_up.until, agent_id))
        held = None
        if agent.offer_id is not None:
            held = self._end_offer(agent.offer_id)
            self._queue(held.call)
        self._leave(agent_id, agent)
        if agent.lent_to is not None and agent.call_id is not None:
            # It left with a host's call in hand (the voice may go on): it still counts until
            # it is back and done, or the call is finished without it.
            self._away[agent_id] = (agent.city, agent.lent_to, agent.call_id)
        else:
            self._unlend(agent)
        del self._agents[agent_id]
        self._members[agent.instance].discard(agent_id)
        return held
