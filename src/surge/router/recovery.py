"""Rebuilding the hot state from the database, so losing Redis (or a restart) loses no call.

Every instance watches the hot state's epoch marker. When it is missing (Redis came back empty)
or changed (another instance rebuilt first), the instance rebuilds: it puts every open call back
in its queue and records the offers the state lost as queued again (the recover transition in
`calls/transitions.py`), then registers the agents whose consoles are connected to it, each as
it was (available, on break, or busy with its call).
Several instances rebuilding at once is safe: enqueueing is idempotent, the database moves are
compare-and-set, and one epoch marker wins.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from surge import metrics
from surge.calls.transitions import Recovery, Transitions
from surge.errors import SurgeError
from surge.loops import run_forever
from surge.seats import service as seats_service
from surge.seats.gateway import Gateway
from surge.settings import Settings
from surge.state.base import HotState

log = logging.getLogger(__name__)

LISTEN_WAIT_S = 2.0  # how long a rebuild waits for this instance's event listener to be back


class StateWatch:
    """Notices a lost or rebuilt hot state and rebuilds this instance's share of it (a task)."""

    def __init__(
        self,
        *,
        settings: Settings,
        state: HotState,
        sessions: async_sessionmaker[AsyncSession],
        transitions: Transitions,
        gateway: Gateway,
        poke: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._state = state
        self._sessions = sessions
        self._transitions = transitions
        self._gateway = gateway
        self._poke = poke
        self._epoch: str | None = None  # the build this instance has caught up with
        self._failures = 0  # the hot state's failed operations this instance has repaired after
        self._stopping = False
        self._down = False  # the hot state stopped answering the watch (logged once)

    def stop(self) -> None:
        """Ask the loop to end after its current step."""
        self._stopping = True

    async def run(self) -> None:
        """Check the epoch a few times per `SURGE_STATE_REBUILD_S` until stopped."""

        async def tick() -> None:
            await asyncio.sleep(self._settings.state_rebuild_s / 10)
            failures = self._state.failures
            current = await self._answering(self._state.epoch())
            if current is None or current != self._epoch:
                await self.rebuild()
            elif failures != self._failures:
                # The state kept its data, but a write may have failed after the database
                # committed (a call recorded and answered 503, an offer's end not recorded).
                await self.repair()
            self._failures = failures

        await run_forever("hot-state watch", tick, stopping=lambda: self._stopping)

    async def _answering(self, read: Awaitable[str | None]) -> str | None:
        """`read`'s result; one log line when the hot state stops answering, one when it is
        back (the watch reads it a few times a second: each failure is not news)."""
        try:
            result = await read
        except SurgeError as exc:
            if not self._down:
                log.warning("state.outage", extra={"error": exc.message})
                self._down = True
            raise
        if self._down:
            log.warning("state.answering")
            self._down = False
        return result

    async def repair(self) -> Recovery:
        """Put back in their queues the open calls the hot state does not hold."""
        return await self._transitions.recover()

    async def rebuild(self) -> Recovery:
        """Mark the build, put the open calls back, re-register this instance's agents."""
        started = time.monotonic()
        caught_up = self._epoch is not None  # False at start-up: nothing was lost here
        epoch = await self._state.begin_epoch(secrets.token_hex(8))
        instance = self._settings.instance_id
        recovery = await self.repair()
        consoles = self._gateway.agent_consoles()
        if consoles:
            # Offers made to these agents by other instances reach them over the event bus.
            await self._gateway.wait_listening(within_s=LISTEN_WAIT_S)
            async with self._sessions() as session:
                restored = await seats_service.restore_presence(
                    session=session, state=self._state, instance=instance, consoles=consoles
                )
            await self._gateway.announce(restored)
        self._epoch = epoch
        self._poke()
        if caught_up:
            metrics.STATE_REBUILDS.inc()
            log.warning(
                "state.rebuilt",
                extra={
                    "seconds": round(time.monotonic() - started, 2),
                    "requeued": recovery.requeued,
                    "offers_lost": recovery.offers_lost,
                    "agents_here": len(consoles),
                },
            )
        return recovery
