"""The dispatcher: applies the routing policy to the live hot state and makes its offers real.

One dispatcher runs per service instance. A cycle reads a snapshot and asks the policy for
assignments; the offer transition (`calls/transitions.py`) claims them atomically in the hot
state (a claim another instance beat us to simply fails), records the made offers in the
database, then tells agents and the telephony side. Cycles
run when something changes here (`poke`) and on a short tick, which also catches changes made by
other instances. A surge's offers to helpers are claimed with the helper's seat quota, which the
hot state checks in the same atomic step. A maintenance loop runs the transitions that time
makes: it ends expired offers and due wrap-ups, reaps agents of dead instances (putting back
the calls they left out of the hot state), queues again the callbacks whose wait before their
next dial-out is over, and ends draining surges once their helpers' calls in hand are done.

While a city has a required script version some serving agent has not acknowledged, the cycle
reads the present agents of the cities serving it and hands the policy those held back
(`scripts/holds.py`); the snapshot then reads as many more free agents of their cities, so that
passing over the held-back ones leaves the policy the agents it would otherwise have seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from surge import events, metrics
from surge.calls.transitions import Transitions
from surge.cities.service import CityRegistry
from surge.loops import run_forever
from surge.router import policy
from surge.scripts.holds import ScriptHolds
from surge.settings import Settings
from surge.state.base import HotState, Lend, OfferClaim
from surge.surges import service as surges_service
from surge.surges.roster import SurgeRoster

log = logging.getLogger(__name__)

REDIAL_CHECK_S = 1.0
"""How often the maintenance tick queues again the callbacks due to be dialled again (a read of
the database: not every tick)."""


def lending_reach(
    surges: Sequence[policy.SurgeView],
) -> tuple[dict[str, set[str]], dict[str, int]]:
    """Which hosts each helper's free agents may serve, and how many free agents to read beyond
    the calls they could take: one more than its reserve, so that the policy's reserve check
    (`free <= reserve`) decides as it would on every free agent. With these the snapshot reads
    only the free agents a decision could use and the decision does not change.
    """
    lends_to: dict[str, set[str]] = {}
    for surge in surges:
        for helper in surge.quotas:
            if helper != surge.host:
                lends_to.setdefault(helper, set()).add(surge.host)
    reserves = policy.helper_reserves(surges)
    return lends_to, {helper: reserves.get(helper, 0) + 1 for helper in lends_to}


class Dispatcher:
    """Runs dispatch cycles and offer maintenance for one service instance."""

    def __init__(
        self,
        *,
        settings: Settings,
        state: HotState,
        sessions: async_sessionmaker[AsyncSession],
        cities: CityRegistry,
        surges: SurgeRoster,
        transitions: Transitions,
        announce: events.Announce,
        holds: ScriptHolds,
    ) -> None:
        self._settings = settings
        self._state = state
        self._sessions = sessions
        self._cities = cities
        self._surges = surges
        self._transitions = transitions
        self._announce = announce
        self._holds = holds
        self._wake = asyncio.Event()
        self._stopping = False
        # The hot state's change mark, the surges, the cities and the held-back agents when a
        # cycle last found nothing to place: while they are the same, it would find nothing again.
        self._settled: (
            tuple[str, tuple[policy.SurgeView, ...], tuple[str, ...], Mapping[str, frozenset[int]]]
            | None
        ) = None
        # The last cycle that read the queues left none waiting: an agent freed since can take
        # nothing, and only a call queued (which pokes) or another instance's change (which
        # the tick reads from the change mark) can make an offer possible.
        self._queues_empty = False

    @property
    def protection_service_level(self) -> float | None:
        """The lender protection's target (None: the guard is off)."""
        return self._settings.protection_service_level or None

    def stop(self) -> None:
        """Ask the loops to end after their current step (shutdown also cancels them)."""
        self._stopping = True
        self._wake.set()

    def poke(self) -> None:
        """Something changed (a call queued, an agent freed): run a cycle soon."""
        self._wake.set()

    def agent_freed(self) -> None:
        """An agent became free and no call was queued with it: run a cycle soon unless the
        last one left every queue empty (at 50 calls/s, one cycle per call instead of two)."""
        if not self._queues_empty:
            self._wake.set()

    async def run(self) -> None:
        """Dispatch until cancelled (a task)."""

        async def cycle() -> None:
            # A deadline rather than `wait_for`, which runs the wait as a task of its own.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.dispatch_interval_s):
                    await self._wake.wait()
            # Let a burst of changes (calls posted together) gather into one cycle.
            await asyncio.sleep(self._settings.dispatch_coalesce_s)
            poked = self._wake.is_set()
            self._wake.clear()
            # Until a cycle places nothing, or places every queued call (settled: the next one
            # would only read the change mark).
            with metrics.DISPATCH_CYCLE.time():
                while await self.dispatch_once(poked=poked) and self._settled is None:
                    pass

        await run_forever("dispatch", cycle, stopping=lambda: self._stopping)

    async def dispatch_once(self, *, poked: bool = False) -> int:
        """Run one cycle; return how many offers were made and recorded.

        A cycle that finds no call any free agent could take, or that offers every queued call,
        is settled: until the hot state's change mark, the surges or the cities change, the next
        cycles cost one read and return.
        (One that finds such a pair but places nothing, a helper's reserve or an overflow delay
        holding it back, is not: time alone may change that decision.)
        A cycle is one read of the hot state, the mark and the snapshot together; only a tick
        while settled (not `poked`: most find nothing changed) reads the mark alone first.
        """
        active = await self._surges.current()
        surges = active.views
        cities = tuple(self._cities.codes)
        holds = await self._holds.current()
        held: dict[str, frozenset[int]] = {}
        if holds.required:
            present = await self._state.present_agents(holds.serving_cities(active))
            held = holds.held_back(present, active)
        settled = self._settled
        same = settled is not None and settled[1:] == (surges, cities, held)
        known = settled[0] if settled is not None and same else None
        if known is not None and not poked:
            if await self._state.change_mark() == known:
                return 0
            known = None
        now = time.time()
        lends_to, spare = lending_reach(surges)
        if held:
            home = {a: code for code, agents in present.items() for a in agents}
            for agent_id in {a for agents in held.values() for a in agents}:
                spare[home[agent_id]] = spare.get(home[agent_id], 0) + 1
        mark, views = await self._state.dispatch_view(
            cities,
            queue_depth=self._settings.dispatch_batch,
            lends_to=lends_to,
            spare=spare,
            unless_mark=known,
        )
        if views is None:
            return 0
        settled = (mark, surges, cities, held)
        # Read placeable only, a city shows free agents only when a call read could use them.
        placeable = any(view.idle for view in views.values())
        self._settled = None if placeable else settled
        waiting = sum(view.waiting for view in views.values())
        self._queues_empty = waiting == 0
        levels: Mapping[str, float | None] = {}
        if surges and self.protection_service_level is not None and placeable:
            levels = await self._surges.own_service_levels()
        snapshot = policy.Snapshot(
            now=now,
            cities={
                code: policy.CitySnapshot(
                    code=code,
                    queue=view.queue,
                    free_agents=view.idle,
                    waiting=view.waiting,
                    serving=view.lent,
                    service_level=levels.get(code),
                )
                for code, view in views.items()
                if view.queue or view.idle
            },
            surges=surges,
            protection_service_level=self.protection_service_level,
            held_back=held,
        )
        assignments = policy.decide(snapshot)
        if not assignments:
            return 0
        expires_at = now + self._settings.offer_timeout_s
        agent_city = {agent.agent_id: code for code, view in views.items() for agent in view.idle}
        quotas = {surge.surge_id: surge.quotas for surge in surges}
        claims = [
            OfferClaim(
                secrets.token_hex(8),
                a.call_id,
                a.agent_id,
                expires_at,
                # The quota is checked again where it cannot race: in the atomic claim.
                None
                if a.surge_id is None
                else Lend(a.surge_id, quotas[a.surge_id][agent_city[a.agent_id]]),
            )
            for a in assignments
        ]
        made = await self._transitions.offer(claims, agent_city=agent_city, now=now)
        if made == waiting:
            # Every queued call read got its offer: the queues are empty until the mark changes
            # (a call queued or put back raises it), so the next cycle would find nothing.
            self._settled = settled
            self._queues_empty = True
        return made

    async def drain(self) -> None:
        """End each draining surge whose helpers hold none of its host's calls any more.

        Revoking again first catches an offer a dispatcher made from a stale view of the surge.
        """
        for surge in (await self._surges.current()).draining:
            await self._transitions.surge_ended(surge.surge_id, surge.host)
            async with self._sessions() as session, session.begin():
                drained = await surges_service.finish_draining(
                    session=session, surge_id=surge.surge_id, host=surge.host
                )
            if drained:
                log.info("surge %s for %s has drained and ended", surge.surge_id, surge.host)
                await self._announce([events.SURGES_CHANGED])

    async def recover(self, dead: Sequence[str]) -> None:
        """Put back the open calls dead instances left out of the hot state.

        An instance killed between a hot-state step and its database commit (an accept taken
        in the hot state but not yet recorded, a call recorded but not yet queued) leaves a
        call the database says is open and the hot state no longer holds: nobody would ever
        offer it again. The rebuild that start-up runs finds those and queues them (an offer
        the database still shows is recorded as requeued, `recovered`); calls the hot state
        holds are left alone, so it is safe while other instances run.
        """
        found = await self._transitions.recover()
        if found.requeued:
            log.warning(
                "instance(s) %s died: %d open calls put back in their queues",
                ", ".join(dead),
                found.requeued,
            )

    async def maintain(self) -> None:
        """End expired offers and due wrap-ups, keep this instance's heartbeat, reap dead
        instances, queue callbacks due to be dialled again, end drained surges (a task)."""
        settings = self._settings
        last_heartbeat = last_redial = 0.0

        async def tick() -> None:
            nonlocal last_heartbeat, last_redial
            await asyncio.sleep(min(0.25, settings.dispatch_interval_s))
            now = time.time()
            if now - last_heartbeat >= settings.heartbeat_interval_s:
                await self._state.heartbeat(settings.instance_id, now)
                dead = await self._transitions.seats_lost(
                    now, max_silence_s=settings.instance_timeout_s
                )
                if dead:
                    await self.recover(dead)
                last_heartbeat = now
            await self._transitions.expire(now)
            await self._transitions.end_wrap_ups(now)
            if now - last_redial >= REDIAL_CHECK_S:
                await self._transitions.redial_due(now)
                last_redial = now
            await self.drain()

        await run_forever("offer maintenance", tick, stopping=lambda: self._stopping)
