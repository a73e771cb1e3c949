"""Every call transition in one place, after Prefect's orchestration rules.

`CALL_RULES` states each transition's FROM and TO call statuses and the reason its history row
records; `Transitions` does the work beside it, one method per transition. Each method is the
unit of work: it opens its own connection (or, for those that need the ORM, its own session)
and owns its transaction (unlike the services, which take the caller's), because a transition
that undoes its hot-state change when the database step or its commit fails must see the
commit fail. In that order it makes the hot-state change, the database compare-and-set (and
commits), announces the frames, and compensates if the database did not take it. On PostgreSQL
the hot transitions (offer, accept, complete, every requeue) are one statement that commits by
itself, with no BEGIN or COMMIT, on a connection held for them (`db.HotConnections`): that
statement failing is the commit failing. Completing and releasing a call go the other way
round: the agent is freed in the hot state only after the database has closed the call, so it
is never offered a next call while the last one may still be open.

Every requeue (an offer that ended unanswered) takes one path: `REQUEUES` says, per reason,
which frames the agent is sent besides the telephony's `call.requeued`. Each ended offer is
recorded on its own, and told once recorded. A requeue needs no compensation: the hot state has
already put the call back, and an end the database missed is recorded later as `recovered` (the
next dispatch cycle finds the database a step behind). An agent whose offer the hot state ended
is told so even when the database step fails, and one the hot state made available again is
told before that step, so no new offer overtakes its frames.

Callbacks (回拨) are calls too: a request puts a waiting or abandoned call back in its queue at
its original place (its id), an accept of one has the telephony dial the caller (`dialing`),
and its result connects it or frees the agent and leaves it waiting out of the queue (`redial`)
until the dispatcher's maintenance tick queues it again, or ends it `unreached`.

Routes, the socket handler, the dispatcher and the hot-state watch call these and stay thin.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from surge import events, telemetry
from surge.calls import service as calls_service
from surge.calls.lifecycle import (
    OPEN_STATUSES,
    PENDING_CALLBACK_STATUSES,
    CallStatus,
    Disposition,
)
from surge.calls.models import Call
from surge.cities.service import CityRegistry
from surge.db import HotConnections, utcnow
from surge.errors import (
    AgentNotPresent,
    AgentStillPresent,
    CallbackNotDialing,
    CallNotConnected,
    CallNotOpen,
    Forbidden,
    OfferUnavailable,
    SurgeError,
    TransferRefused,
)
from surge.scripts import service as scripts_service
from surge.scripts.classification import Classification
from surge.seats import frames
from surge.seats import service as seats_service
from surge.seats.gateway import CLOSE_LOGGED_OUT
from surge.seats.schemas import CompleteMessage, TransferMessage
from surge.state.base import (
    AgentPresence,
    AgentState,
    CallLocation,
    HeldOffer,
    HotState,
    OfferClaim,
    Outcome,
    QueuedCall,
    Withdrawn,
)
from surge.surges import service as surges_service

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CallRule:
    """A rule of the call-transition table: the `Transitions` methods `by` move a call in one of
    `sources` to `target`, recording `reason` in its history, `when` what it says happens."""

    by: tuple[str, ...]
    sources: frozenset[CallStatus]
    target: CallStatus
    reason: str | None
    when: str


_OFFERED = frozenset({CallStatus.OFFERED})

CALL_RULES: tuple[CallRule, ...] = (
    CallRule(
        ("offer",),
        frozenset({CallStatus.QUEUED}),
        CallStatus.OFFERED,
        None,
        "a dispatch cycle's claim is recorded: the call is held for one agent",
    ),
    CallRule(("accept",), _OFFERED, CallStatus.CONNECTED, None, "the agent accepts the offer"),
    CallRule(("decline",), _OFFERED, CallStatus.QUEUED, "declined", "the agent declines the offer"),
    CallRule(("expire",), _OFFERED, CallStatus.QUEUED, "expired", "the offer expires unanswered"),
    CallRule(
        ("seats_lost",),
        _OFFERED,
        CallStatus.QUEUED,
        "seat_lost",
        "the instance holding the agent's console went silent and was reaped",
    ),
    CallRule(
        ("disconnect",),
        _OFFERED,
        CallStatus.QUEUED,
        "agent_disconnected",
        "the agent's console closed cleanly (a goodbye)",
    ),
    CallRule(
        ("disconnect",),
        _OFFERED,
        CallStatus.QUEUED,
        "agent_lost",
        "the agent's console stopped answering",
    ),
    CallRule(
        ("surge_ended",),
        _OFFERED,
        CallStatus.QUEUED,
        "surge_ended",
        "the surge that lent the agent to the call's city ends",
    ),
    CallRule(
        ("logout",),
        _OFFERED,
        CallStatus.QUEUED,
        "logged_out",
        "a supervisor logged the agent out (its console is closed, 4408)",
    ),
    CallRule(
        ("recover", "offer"),
        _OFFERED,
        CallStatus.QUEUED,
        "recovered",
        "the database holds an offer the hot state lost (found by a rebuild, or by a dispatch"
        " cycle: an end the database missed)",
    ),
    CallRule(
        ("abandon",),
        frozenset({CallStatus.QUEUED, CallStatus.OFFERED}),
        CallStatus.ABANDONED,
        "caller_hung_up",
        "the caller hangs up while waiting or being offered",
    ),
    CallRule(
        ("complete",),
        frozenset({CallStatus.CONNECTED}),
        CallStatus.COMPLETED,
        None,
        "the agent closes the ticket; the agent is freed after the commit",
    ),
    CallRule(
        ("transfer",),
        frozenset({CallStatus.CONNECTED}),
        CallStatus.QUEUED,
        "transferred",
        "the agent sends the call in hand to a city's queue, with a note: ahead of the fresh"
        " calls, for that city's own agents; the agent is freed into its wrap-up",
    ),
    CallRule(
        ("release",),
        frozenset({CallStatus.CONNECTED}),
        CallStatus.COMPLETED,
        "released",
        "a supervisor closes the call of an agent that is gone (offline or lost)",
    ),
    # Callbacks (回拨).
    CallRule(
        ("request_callback",),
        frozenset({CallStatus.QUEUED, CallStatus.OFFERED}),
        CallStatus.ABANDONED,
        "left_for_callback",
        "the caller of a waiting call asks to be called back and leaves the line (then the next"
        " row)",
    ),
    CallRule(
        ("request_callback", "abandon"),
        frozenset({CallStatus.ABANDONED}),
        CallStatus.QUEUED,
        "callback_requested",
        "the telephony asks to call an abandoned caller back (or, callbacks on, the caller"
        " abandons after the short-abandon threshold): queued again at its original place",
    ),
    CallRule(
        ("accept",),
        _OFFERED,
        CallStatus.DIALING,
        None,
        "the agent accepts a callback's offer: the telephony dials the caller",
    ),
    CallRule(
        ("callback_result",),
        frozenset({CallStatus.DIALING}),
        CallStatus.CONNECTED,
        "callback_reached",
        "the telephony reached the caller: the agent handles it as a call",
    ),
    CallRule(
        ("callback_result",),
        frozenset({CallStatus.DIALING}),
        CallStatus.REDIAL,
        "callback_unreached",
        "the telephony did not reach the caller, attempts are left: out of the queue for"
        " `SURGE_CALLBACK_RETRY_S`; the agent is free",
    ),
    CallRule(
        ("callback_result",),
        frozenset({CallStatus.DIALING}),
        CallStatus.UNREACHED,
        "callback_unreached",
        "the last of `SURGE_CALLBACK_ATTEMPTS` dial-outs did not reach the caller; the agent is"
        " free",
    ),
    CallRule(
        ("redial_due",),
        frozenset({CallStatus.REDIAL}),
        CallStatus.QUEUED,
        "redial_due",
        "a callback's wait before its next dial-out is over (the maintenance tick): queued at its"
        " original place",
    ),
    CallRule(
        ("caller_back",),
        PENDING_CALLBACK_STATUSES,
        CallStatus.ABANDONED,
        "caller_called_again",
        "the caller of a callback not yet dialled calls again: the new call stands, the callback"
        " is withdrawn",
    ),
)
"""The call-transition table: every status change the service makes, and who makes it."""

AGENT_MOVES_ONLY = frozenset({"set_status", "end_wrap_ups"})
"""The `Transitions` methods that move the agent and change no call's status: an agent's own
`status`, and the end of a wrap-up (each records the wrap-up's end on the call it followed)."""


class Revoke(enum.Enum):
    """When a requeue tells the agent its offer is gone (`offer.revoked`)."""

    NEVER = "never"  # the agent ended it itself
    ALWAYS = "always"  # the hot state ended it: the console must drop it, recorded or not
    IF_RECORDED = "if_recorded"  # the hot state had lost it: whoever records the end tells


@dataclass(frozen=True, slots=True)
class Requeue:
    """What a requeue for one reason sends the agent (the telephony gets `call.requeued` when the
    database records it)."""

    revoke: Revoke
    then: Callable[[], frames.AgentFrame] | None = None  # the frame sent after the revocation
    # The hot state made the agent available again: it is told before the database step, which
    # a new offer to it could otherwise overtake (its `available` after that offer).
    first: bool = False


REQUEUES: Mapping[frames.RequeueReason, Requeue] = {
    "declined": Requeue(Revoke.NEVER),
    "expired": Requeue(Revoke.ALWAYS, frames.missed_offer),
    "seat_lost": Requeue(Revoke.ALWAYS),
    "agent_disconnected": Requeue(Revoke.ALWAYS),
    "agent_lost": Requeue(Revoke.ALWAYS),
    "surge_ended": Requeue(
        Revoke.ALWAYS, functools.partial(frames.state, state="available"), first=True
    ),
    "recovered": Requeue(Revoke.IF_RECORDED),
    "logged_out": Requeue(Revoke.ALWAYS),
}
"""The requeue table: per reason, the frames an agent whose offer ended is sent."""


@dataclass(frozen=True, slots=True)
class CallbackPolicy:
    """How callbacks (回拨) go: made by themselves from abandoned calls (`on_abandon`, or for
    the hosts `on_abandon_in` names, e.g. a surge's), after how long abandoned, how long a
    callback not reached waits, and how many dial-outs it gets."""

    on_abandon: bool = False
    after_abandon_s: float = 5.0
    retry_s: float = 120.0
    attempts: int = 3
    on_abandon_in: Callable[[], Awaitable[frozenset[str]]] | None = None


_CALLBACK_SOURCES = OPEN_STATUSES | {CallStatus.ABANDONED}
_ABANDONED = frozenset({CallStatus.ABANDONED})
_DIALING = frozenset({CallStatus.DIALING})
REDIAL_BATCH = 200
"""Callbacks due to be dialled again put back in their queues per maintenance tick."""


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a recovery did: the open calls read, those put back, the lost offers recorded."""

    open_calls: int
    requeued: int
    offers_lost: int


class _Requeued(NamedTuple):
    """The frames of one ended offer, and whether the database recorded its end."""

    frames: list[events.Event]
    recorded: bool


def _agent_frames(
    offer: HeldOffer | calls_service.LostOffer, reason: frames.RequeueReason
) -> list[events.Event]:
    """What the agent whose offer ended for `reason` is sent: the revocation, then what
    `REQUEUES` says follows it (none for an offer the agent ended itself)."""
    rule = REQUEUES[reason]
    if offer.agent_id is None or rule.revoke is Revoke.NEVER:
        return []
    revoked = frames.offer_revoked(offer_id=offer.offer_id, reason=reason)
    out: list[events.Event] = [events.to_agent(offer.agent_id, revoked)]
    if rule.then is not None:
        out.append(events.to_agent(offer.agent_id, rule.then()))
    return out


def _no_poke() -> None:
    """Until the lifespan connects the dispatcher."""


class Transitions:
    """The call transitions of one service instance (made once in the lifespan)."""

    def __init__(
        self,
        *,
        state: HotState,
        hot: HotConnections,
        sessions: async_sessionmaker[AsyncSession],
        instance: str,
        classification: Classification,
        announce: events.Announce,
        hand_over: events.HandOver,
        cities: CityRegistry,
        wrap_up_s: float = 0.0,
        transfer_limit: int = 3,
        callbacks: CallbackPolicy | None = None,
        offer_timeout_s: float = 15.0,  # how long an offer is held: when an accepted one was made
    ) -> None:
        self._offer_timeout_s = offer_timeout_s
        self._state = state
        self._cities = cities
        self._transfer_limit = transfer_limit
        self._hot = hot  # the hot transitions: no ORM, no BEGIN on PostgreSQL
        self._sessions = sessions  # the others: they read and refresh calls through the ORM
        self._instance = instance
        self._classification = classification
        self._announce = announce
        self._hand_over = hand_over
        self._wrap_up_s = wrap_up_s  # each completed call's wrap-up (0: the agent is free at once)
        self._callbacks = callbacks or CallbackPolicy()
        self.poke: Callable[[], None] = _no_poke  # wakes the dispatcher: a call or agent freed
        # An agent freed, and no call queued with it: the dispatcher looks if calls may wait.
        self.agent_freed: Callable[[], None] = _no_poke

    # --- offers -------------------------------------------------------------------------------
    async def offer(
        self, claims: Sequence[OfferClaim], *, agent_city: Mapping[int, str], now: float
    ) -> int:
        """Make a dispatch cycle's claims real and tell the agents; return how many were made.

        Claimed in the hot state, then recorded in one batch. Offers the database did not
        record are withdrawn (the call closed meanwhile, or the database is a step behind:
        those calls go back to their places, and an earlier offer's end it missed is recorded
        as `recovered`). Should the database fail, every claimed offer is withdrawn and its
        call put back: an agent must not "miss" an offer never sent.
        """
        held = await self._state.claim(claims)
        made = [offer for offer in held if offer is not None]
        if not made:
            return 0
        try:
            async with self._hot.transition() as connection:
                taken, behind = await calls_service.record_offers(
                    connection=connection,
                    offers=made,
                    at=datetime.fromtimestamp(now, UTC),
                    instance=self._instance,
                )
        except BaseException:
            with contextlib.suppress(SurgeError):
                for offer in made:
                    await self._state.withdraw(offer.call.call_id)
                await self._state.enqueue([offer.call for offer in made])
            raise
        taken_ids = {offer.offer_id for offer in taken}
        for offer in made:
            if offer.offer_id not in taken_ids:
                await self._state.withdraw(offer.call.call_id)
        # A later cycle offers those again once the database agrees.
        await self._state.enqueue([late.offer.call for late in behind])
        await self._recover_offers(behind)
        telemetry.offers_made(taken, now=now)
        surge_of = {c.offer_id: None if c.lend is None else c.lend.surge_id for c in claims}
        out: list[events.Event] = []
        for offer in taken:
            frame = frames.offer(
                offer,
                agent_city=agent_city[offer.agent_id],
                surge_id=surge_of[offer.offer_id],
                now=now,
            )
            out.append(events.to_agent(offer.agent_id, frame))
            out.append(
                events.to_cti(
                    offer.call.city,
                    frames.cti_call_offered(
                        call_id=offer.call.call_id,
                        at=now,
                        agent_id=offer.agent_id,
                        offer_id=offer.offer_id,
                    ),
                )
            )
        await self._announce(out)
        return len(taken)

    async def _recover_offers(self, behind: Sequence[calls_service.Behind]) -> None:
        """Record the end of offers the database still holds but the hot state has ended.

        Their end was never recorded (the database failed just after the hot state ended
        them): without this the call would stay offered in the database for good. A decline
        still committing is no such case: its own record wins the compare-and-set.
        """
        lost = [
            calls_service.LostOffer(late.recorded_offer_id, late.offer.call, late.recorded_agent_id)
            for late in behind
            if late.recorded_offer_id is not None
            and await self._state.get_offer(late.recorded_offer_id) is None
        ]
        await self._requeue(lost, reason="recovered")

    async def _record_taken(
        self,
        seat: seats_service.Seat,
        offer: HeldOffer,
        record: Callable[..., Awaitable[bool]],
        *,
        gone: str,
    ) -> tuple[datetime, frames.CallBrief]:
        """Record an accepted offer with `record` (connected, or a callback dialling); return
        when, and the call as the agent sees it.

        Should the database not take it (or its commit fail), the agent is free again and the
        call back at its place; a call closed meanwhile is `CallNotOpen` (`gone` says why).
        """
        call = offer.call
        at = utcnow()
        try:
            async with self._hot.transition() as connection:
                taken = await record(
                    connection=connection, offer=offer, at=at, instance=self._instance
                )
        except BaseException:
            with contextlib.suppress(SurgeError):
                await self._state.finish_call(seat.agent_id, call.call_id, at.timestamp())
                await self._state.enqueue([call])
            self.poke()
            raise
        if not taken:
            await self._state.finish_call(seat.agent_id, call.call_id, at.timestamp())
            self.poke()
            raise CallNotOpen(gone)
        brief = frames.call_brief(
            call_id=call.call_id,
            city=call.city,
            caller=call.caller,
            channel=call.channel,
            priority=call.priority,
            agent_city=seat.city,
        )
        return at, brief

    async def accept(self, *, seat: seats_service.Seat, offer_id: str) -> None:
        """The agent takes the offered call: busy with it, and the telephony bridges the voice.

        Should the database not take it (or its commit fail), the agent is free again and the
        call back at its place (the offer's end, which the database missed too, is recorded as
        `recovered` by a later dispatch cycle).
        """
        outcome, offer = await self._state.accept(offer_id, seat.agent_id, now := time.time())
        if outcome is Outcome.NOT_YOURS:
            raise Forbidden("this offer is held for another agent")
        if offer is None:
            raise OfferUnavailable("the offer has expired, was withdrawn or was already answered")
        telemetry.offer_accepted(offer, made_at=offer.expires_at - self._offer_timeout_s, now=now)
        if offer.call.callback:
            await self._dial(seat, offer)
            return
        call = offer.call  # the hot state's copy: no need to read the row back
        at, brief = await self._record_taken(
            seat,
            offer,
            calls_service.record_connect,
            gone="the caller hung up before the call was connected",
        )
        await self._announce(
            [
                events.to_agent(
                    seat.agent_id, frames.call_connected(call_id=call.call_id, call=brief)
                ),
                events.to_cti(
                    call.city,
                    frames.cti_call_connected(
                        call_id=call.call_id,
                        at=at.timestamp(),
                        agent=seat.name,
                        endpoint=seat.endpoint,
                    ),
                ),
            ]
        )

    # --- requeues: an offer ended unanswered --------------------------------------------------
    async def decline(self, *, seat: seats_service.Seat, offer_id: str) -> None:
        """The agent turns the offer down: the call goes back to its place, the agent stays
        available."""
        outcome, offer = await self._state.decline(offer_id, seat.agent_id, time.time())
        if outcome is Outcome.NOT_YOURS:
            raise Forbidden("this offer is held for another agent")
        if offer is None:
            raise OfferUnavailable("the offer has expired, was withdrawn or was already answered")
        await self._requeue([offer], reason="declined")

    async def expire(self, now: float) -> None:
        """End the offers due by `now`: their calls go back, their agents on break."""
        await self._requeue(await self._state.expire_offers(now), reason="expired")

    async def seats_lost(self, now: float, *, max_silence_s: float) -> tuple[str, ...]:
        """Reap the instances silent for longer than `max_silence_s`: their agents' offers go
        back. Returns those instances (their open calls are put back by `recover`)."""
        reaped = await self._state.reap_instances(now, max_silence_s=max_silence_s)
        await self._requeue([o for _, o in reaped.agents if o is not None], reason="seat_lost")
        return reaped.instances

    async def disconnect(self, *, seat: seats_service.Seat, said_goodbye: bool) -> None:
        """The console is gone: offline after a goodbye, else `lost`; a held offer goes back."""
        if said_goodbye:
            held = await self._state.agent_disconnect(seat.agent_id, instance=self._instance)
            reason: frames.RequeueReason = "agent_disconnected"
        else:
            held = await self._state.agent_lost(seat.agent_id, instance=self._instance)
            reason = "agent_lost"
        telemetry.agent_left(agent_id=seat.agent_id, city=seat.city, lost=not said_goodbye)
        await self._requeue([] if held is None else [held], reason=reason)

    async def logout(self, agent_id: int) -> AgentPresence:
        """A supervisor logs the agent out: offline at once, a pending offer back at its place
        (the console told so), then its console closed with 4408 wherever it is connected.

        A connected call stays connected (a supervisor may release it). Returns the presence
        the agent had; raises `AgentNotPresent` when it had none (offline already).
        """
        presence = await self._state.get_agent(agent_id)
        if presence is None:
            raise AgentNotPresent(f"agent {agent_id} is not connected")
        held = await self._state.agent_disconnect(agent_id, instance=presence.instance)
        try:
            await self._requeue([] if held is None else [held], reason="logged_out")
        finally:  # the revocation first, then the close
            await self._announce([events.close_agent(agent_id, CLOSE_LOGGED_OUT)])
        return presence

    async def surge_ended(self, surge_id: int, host: str) -> None:
        """Revoke the helpers' pending offers of an ending surge and refuse it any new ones;
        the agents are available again."""
        await self._requeue(await self._state.end_lending(surge_id, host), reason="surge_ended")

    async def _requeue(
        self,
        ended: Sequence[HeldOffer | calls_service.LostOffer],
        *,
        reason: frames.RequeueReason,
    ) -> None:
        """Record ended offers (their calls are queued again), each on its own, and tell
        everyone concerned; should the database fail, what was recorded before is still told,
        and so are the agents whose offers the hot state ended."""
        if not ended:
            return
        telemetry.offers_ended(ended, reason=reason)
        rule = REQUEUES[reason]
        if rule.first:
            await self._announce([f for offer in ended for f in _agent_frames(offer, reason)])
        at = datetime.now(UTC)
        out: list[events.Event] = []
        done = 0
        try:
            async with self._hot.engine.connect() as connection:
                for offer in ended:
                    async with connection.begin():
                        requeued = await self._record_requeue(
                            connection, offer, reason=reason, at=at, agents_told=rule.first
                        )
                    out += requeued.frames
                    done += 1
        except BaseException:
            if rule.revoke is Revoke.ALWAYS and not rule.first:
                # The hot state ended the rest whatever the database says: their consoles drop
                # them now (their ends are recorded later, as `recovered`).
                out += [f for offer in ended[done:] for f in _agent_frames(offer, reason)]
            raise
        finally:
            await self._announce(out)
        self.poke()

    async def _record_requeue(
        self,
        connection: AsyncConnection,
        offer: HeldOffer | calls_service.LostOffer,
        *,
        reason: frames.RequeueReason,
        at: datetime,
        agents_told: bool = False,
    ) -> _Requeued:
        """Record one ended offer (compare-and-set on the offer); the frames `REQUEUES` says
        (the agent's only when it was not `agents_told` already)."""
        told = await calls_service.record_requeue(
            connection=connection, offer=offer, reason=reason, at=at, instance=self._instance
        )
        if not agents_told and (REQUEUES[reason].revoke is Revoke.ALWAYS or told):
            return _Requeued(told + _agent_frames(offer, reason), bool(told))
        return _Requeued(told, bool(told))

    # --- closing a call -----------------------------------------------------------------------
    async def abandon(self, call_id: int, *, allowed: Callable[[Call], None]) -> Call:
        """The caller hung up: take the call out of its queue or offer and close it.

        `allowed` is the caller's access check, run on the call before anything changes.
        Abandoning an abandoned call again returns it (the CTI may retry). Should the database
        step or its commit fail, the call goes back to its place in the hot state: the
        database still has it open (a retry abandons it).
        """
        withdrawn: Withdrawn | None = None
        try:
            async with self._sessions() as session, session.begin():
                call = await calls_service.get(session=session, call_id=call_id)
                allowed(call)
                if call.status == CallStatus.ABANDONED:
                    return call
                if call.callback_requested_at is not None and call.status in OPEN_STATUSES:
                    # Its caller is not on the line: a callback is not hung up (an abandon
                    # that made it is sent again, say); the caller calling again withdraws it.
                    return call
                if call.status not in OPEN_STATUSES:
                    raise CallNotOpen(
                        f"call {call_id} is already {call.status}; it cannot be abandoned"
                    )
                withdrawn = await self._state.withdraw(call_id)
                now = utcnow()
                moved = await calls_service.move(
                    connection=await session.connection(),
                    call_id=call_id,
                    target=CallStatus.ABANDONED,
                    at=now,
                    instance=self._instance,
                    reason="caller_hung_up",
                    agent_id=call.agent_id,
                    offer_id=call.offer_id,
                    only_from=OPEN_STATUSES,
                    values={"ended_at": now, "offer_id": None},
                )
                await session.refresh(call)
                if moved is None:
                    raise CallNotOpen(
                        f"call {call_id} is already {call.status}; it cannot be abandoned"
                    )
        except CallNotOpen:
            raise  # the database has it closed (or connected): nothing to put back
        except BaseException:
            if withdrawn is not None and withdrawn.location is not CallLocation.ABSENT:
                with contextlib.suppress(SurgeError):
                    await self._state.enqueue([calls_service.as_queued(call)])
                if withdrawn.offer is not None:
                    # The withdrawal ended its offer and freed the agent: the console drops it
                    # (the call, queued again, is offered anew).
                    revoked = frames.offer_revoked(
                        offer_id=withdrawn.offer.offer_id, reason="recovered"
                    )
                    await self._announce([events.to_agent(withdrawn.offer.agent_id, revoked)])
            raise
        out: list[events.Event] = [
            events.to_cti(
                call.city_code, frames.cti_call_abandoned(call_id=call_id, at=now.timestamp())
            )
        ]
        if withdrawn.location is CallLocation.OFFERED and withdrawn.offer is not None:
            revoked = frames.offer_revoked(offer_id=withdrawn.offer.offer_id, reason="abandoned")
            telemetry.offers_ended([withdrawn.offer], reason="abandoned")
            out.append(events.to_agent(withdrawn.offer.agent_id, revoked))
        await self._announce(out)
        self.poke()
        if await self._callback_on_abandon(call):
            return await self.request_callback(call_id, allowed=allowed, reason="abandoned")
        return call

    async def complete(self, *, seat: seats_service.Seat, message: CompleteMessage) -> None:
        """The agent closes the ticket of the call in hand; once that commits (and the agent is
        told), the agent is in its wrap-up, or with none available for the next call.

        The ticket's category, script version and entry are checked first: a ticket naming
        ones that do not exist is refused and the call stays open. One statement on PostgreSQL
        when the ticket names no script version; one naming a version reads the call and the
        version before it.
        """
        scripts_service.check_ticket(
            category_code=message.category_code,
            script_version=message.script_version,
            script_key=message.script_key,
            classification=self._classification,
        )
        at = utcnow()
        async with self._hot.transition() as connection:
            if message.script_version is not None:
                # A script version is the call's city's: read the call first. Versions are never
                # edited or deleted, so the one found here still stands as the call closes.
                book = await calls_service.handled_city(
                    connection=connection, call_id=message.call_id, agent_id=seat.agent_id
                )
                await scripts_service.check_script_entry(
                    connection=connection,
                    city=book,
                    script_version=message.script_version,
                    script_key=message.script_key,
                )
            city = await calls_service.record_completion(
                connection=connection,
                call_id=message.call_id,
                agent_id=seat.agent_id,
                disposition=message.disposition,
                category_code=message.category_code,
                summary=message.summary,
                script_version=message.script_version,
                script_key=message.script_key,
                at=at,
                instance=self._instance,
            )
        completed = frames.cti_call_completed(
            call_id=message.call_id, at=at.timestamp(), disposition=message.disposition.value
        )
        await self._free_after(
            seat.agent_id,
            message.call_id,
            first=[
                events.to_agent(seat.agent_id, frames.call_completed(call_id=message.call_id)),
                events.to_cti(city, completed),
            ],
        )
        telemetry.call_completed(
            call_id=message.call_id,
            city=city,
            agent_id=seat.agent_id,
            disposition=message.disposition.value,
        )

    async def _free_after(
        self, agent_id: int, call_id: int, *, first: Sequence[events.Event]
    ) -> None:
        """Tell `first`, then free the agent of the call it no longer holds (closed or sent on),
        into its wrap-up.

        Only now, committed and acknowledged, may the agent be offered its next call (after its
        wrap-up). The console hears its state first: once the hot state has the agent free,
        another instance's offer may reach the console at once, and must not arrive before it.
        What goes to other instances travels with the hot-state step that frees the agent.
        """
        wrap_up_s = self._wrap_up_s
        told = (
            frames.wrap_up(call_id=call_id, ends_in_s=wrap_up_s)
            if wrap_up_s > 0
            else frames.state(state=AgentState.AVAILABLE.value)
        )
        over = self._hand_over([*first, events.to_agent(agent_id, told)])
        try:
            presence = await self._state.finish_call(
                agent_id, call_id, time.time(), wrap_up_s=wrap_up_s, publish=over
            )
        except SurgeError:
            if over is not None:  # the step did not run: the frames go on their own, if they can
                with contextlib.suppress(SurgeError):
                    await self._state.publish(over)
            # Not freed after all: the console shows what the hot state has, if it answers.
            with contextlib.suppress(SurgeError):
                await self._tell_state(agent_id)
            raise
        if presence is not None:
            self.agent_freed()
            return
        # It was not busy with this call here (the hot state was rebuilt meanwhile, say): say
        # what it is.
        await self._tell_state(agent_id)

    async def transfer(self, *, seat: seats_service.Seat, message: TransferMessage) -> None:
        """The agent sends the call in hand to a city's queue (`host`: the call's own city),
        with a note; it waits there ahead of the fresh calls, at its original arrival, for that
        city's own agents, and the agent is freed into its wrap-up.

        Refused, the call untouched, when it would change nothing (the agent's own city's call
        to that same city), for an unknown city, and past `SURGE_TRANSFER_LIMIT` transfers (a
        loop between cities ends with an agent who completes it). The database moves it first;
        a queue the hot state then fails to take is repaired as after a failed intake.
        """
        at = utcnow()
        async with self._hot.transition() as connection:
            call = await calls_service.handled_call(
                connection=connection, call_id=message.call_id, agent_id=seat.agent_id
            )
            to_city = call.city_code if message.to == "host" else message.to
            await self._cities.require(to_city)
            if to_city == call.city_code == seat.city:
                raise TransferRefused(
                    f"call {call.id} is already {to_city}'s and you are one of its agents"
                )
            if call.transfers >= self._transfer_limit:
                raise TransferRefused(
                    f"call {call.id} was transferred {call.transfers} times already"
                    f" (at most {self._transfer_limit}); complete it"
                )
            queued = await calls_service.record_transfer(
                connection=connection,
                call=call,
                to_city=to_city,
                note=message.note,
                at=at,
                instance=self._instance,
            )
        transferred = frames.cti_call_transferred(
            call_id=call.id, at=at.timestamp(), from_agent=seat.name, to_city=to_city
        )
        told: list[events.Event] = [
            events.to_agent(
                seat.agent_id, frames.call_transferred(call_id=call.id, to_city=to_city)
            ),
            *(
                events.to_cti(city, transferred)
                for city in dict.fromkeys([call.city_code, to_city])
            ),
        ]
        try:
            await self._free_after(seat.agent_id, call.id, first=told)
        finally:
            await self._state.enqueue([queued])
            self.poke()

    async def _tell_state(self, agent_id: int) -> None:
        """Send the agent's console the state the hot state has for it (if it has the agent)."""
        current = await self._state.get_agent(agent_id)
        if current is not None:
            frame = seats_service.state_frame(current, now=time.time())
            await self._announce([events.to_agent(agent_id, frame)])

    # --- the agent's own moves: available, break, the end of a wrap-up -----------------------
    async def set_status(self, *, seat: seats_service.Seat, target: AgentState) -> None:
        """The agent goes available (the dispatcher woken) or on break; from its wrap-up, that
        ends it (recorded)."""
        now = time.time()
        presence, ended = await self._state.set_agent_state(seat.agent_id, target, now)
        frame = seats_service.state_frame(presence, now=now)
        await self._announce([events.to_agent(seat.agent_id, frame)])
        try:
            if ended is not None:
                await self._record_wrap_ups([(ended.call_id, seat.agent_id, now)])
        finally:
            if target is AgentState.AVAILABLE:
                self.agent_freed()  # after the record, as at a wrap-up's own end

    async def end_wrap_ups(self, now: float) -> None:
        """End the wrap-ups due by `now` of the consoles here: available, and recorded.

        Each console is told `available` as the hot state frees it, before this instance can
        await anything: no offer, from here or over the bus, can reach it first.
        """
        ended = await self._state.end_wrap_ups(now, instance=self._instance)
        if not ended:
            return
        available = frames.state(state=AgentState.AVAILABLE.value)
        await self._announce([events.to_agent(agent_id, available) for agent_id, _ in ended])
        try:
            await self._record_wrap_ups([(w.call_id, agent_id, w.until) for agent_id, w in ended])
        finally:
            self.agent_freed()  # after the record, so that the next call rarely overtakes it

    async def _record_wrap_ups(self, ended: Sequence[tuple[int, int, float]]) -> None:
        """Record when each (call, agent, epoch end) wrap-up ended: the call's handling runs
        to it. The agent is free already; a record the database missed leaves the call's
        handling ending with its ticket."""
        async with self._hot.transition() as connection:
            await calls_service.record_wrap_ups(
                connection=connection,
                ended=[(c, a, datetime.fromtimestamp(at, UTC)) for c, a, at in ended],
            )

    async def release(
        self, call_id: int, *, reason: str, actor: str, allowed: Callable[[Call], None]
    ) -> Call:
        """A supervisor closes a connected call whose agent is gone (offline, or `lost`).

        The call is completed with the disposition `released`, the supervisor's reason in its
        history and the audit log; once that commits, an agent that connected again in the
        meantime is freed from it. Releasing a released call again returns it (a retry, which
        frees the agent too: the first answer may have failed before that). `allowed` is the
        caller's access check, run on the call before anything changes.
        """
        out: list[events.Event] = []
        async with self._sessions() as session, session.begin():
            call = await calls_service.get(session=session, call_id=call_id)
            allowed(call)
            if call.status != CallStatus.COMPLETED or call.disposition != Disposition.RELEASED:
                out = await self._release(session, call, reason=reason, actor=actor)
        agent = None if call.agent_id is None else await self._state.get_agent(call.agent_id)
        if agent is not None and agent.state is AgentState.BUSY and agent.call_id == call_id:
            # Back and busy with it: told first, as on completion, then freed.
            assert call.agent_id is not None
            available = frames.state(state=AgentState.AVAILABLE.value)
            await self._announce(
                [
                    events.to_agent(call.agent_id, frames.call_completed(call_id=call_id)),
                    events.to_agent(call.agent_id, available),
                ]
            )
        # Frees an agent back with it; a lost one stops counting on a helper's quota.
        finished = call.agent_id is not None and await self._state.finish_call(
            call.agent_id, call_id, time.time()
        )
        if finished:
            self.agent_freed()
        await self._announce(out)
        return call

    async def _release(
        self, session: AsyncSession, call: Call, *, reason: str, actor: str
    ) -> list[events.Event]:
        """Record the release of a call not yet released; its `call.completed`."""
        if call.status != CallStatus.CONNECTED:
            raise CallNotConnected(
                f"call {call.id} is {call.status}; only a connected call is released"
            )
        presence = None if call.agent_id is None else await self._state.get_agent(call.agent_id)
        if presence is not None and presence.state is not AgentState.LOST:
            raise AgentStillPresent(
                f"the agent of call {call.id} is connected and answering; it completes the call"
            )
        now = utcnow()
        moved = await calls_service.move(
            connection=await session.connection(),
            call_id=call.id,
            target=CallStatus.COMPLETED,
            at=now,
            instance=self._instance,
            reason="released",
            note=reason,
            agent_id=call.agent_id,
            only_from=frozenset({CallStatus.CONNECTED}),
            match={"agent_id": call.agent_id},
            values={"ended_at": now, "disposition": Disposition.RELEASED.value},
        )
        await session.refresh(call)
        if moved is None:
            raise CallNotConnected(f"call {call.id} is already {call.status}")
        surges_service.audit(
            session=session,
            actor=actor,
            action="call.released",
            surge_id=None,
            detail={"call_id": call.id, "agent_id": call.agent_id, "city": call.city_code},
            reason=reason,
        )
        completed = frames.cti_call_completed(
            call_id=call.id, at=now.timestamp(), disposition=Disposition.RELEASED.value
        )
        return [events.to_cti(call.city_code, completed)]

    # --- callbacks (回拨) ------------------------------------------------------------------------
    async def request_callback(
        self,
        call_id: int,
        *,
        allowed: Callable[[Call], None],
        reason: Literal["requested", "abandoned"] = "requested",
    ) -> Call:
        """A waiting or abandoned call becomes a callback: queued at its original place (its
        id, the order of arrival), offered as `kind: "callback"`.

        Asking again for a callback not yet done returns it: one caller, one callback. A call
        offered meanwhile loses its offer (`offer.revoked`, `callback_requested`). Should the
        database step fail, a call taken out of the hot state goes back as it was.
        """
        withdrawn: Withdrawn | None = None
        try:
            async with self._sessions() as session, session.begin():
                call = await calls_service.get(session=session, call_id=call_id)
                allowed(call)
                pending = PENDING_CALLBACK_STATUSES | _DIALING
                if call.callback_requested_at is not None and call.status in pending:
                    return call
                if call.status not in _CALLBACK_SOURCES:
                    raise CallNotOpen(
                        f"call {call_id} is {call.status}; only a waiting or abandoned call is"
                        " called back"
                    )
                now = utcnow()
                connection = await session.connection()
                moved: calls_service.Moved | None = None
                if call.status in OPEN_STATUSES:
                    # The caller leaves the line to be called back: abandoned, then the callback.
                    withdrawn = await self._state.withdraw(call_id)
                    moved = await calls_service.move(
                        connection=connection,
                        call_id=call_id,
                        target=CallStatus.ABANDONED,
                        at=now,
                        instance=self._instance,
                        reason="left_for_callback",
                        agent_id=call.agent_id,
                        offer_id=call.offer_id,
                        only_from=OPEN_STATUSES,
                        values={"ended_at": now, "offer_id": None},
                    )
                if moved is not None or call.status == CallStatus.ABANDONED:
                    moved = await calls_service.move(
                        connection=connection,
                        call_id=call_id,
                        target=CallStatus.QUEUED,
                        at=now,
                        instance=self._instance,
                        reason="callback_requested",
                        only_from=_ABANDONED,
                        values={
                            "callback_requested_at": now,
                            "callback_attempts": 0,
                            "callback_due_at": None,
                            "ended_at": None,
                            "agent_id": None,
                        },
                    )
                await session.refresh(call)
                if moved is None:
                    raise CallNotOpen(f"call {call_id} is already {call.status}")
        except CallNotOpen:
            raise
        except BaseException:
            if withdrawn is not None and withdrawn.location is not CallLocation.ABSENT:
                with contextlib.suppress(SurgeError):
                    await self._state.enqueue([calls_service.as_queued(call)])
            raise
        await self._state.enqueue([calls_service.as_queued(call)])
        out: list[events.Event] = [
            events.to_cti(
                call.city_code,
                frames.cti_callback_requested(call_id=call_id, at=now.timestamp(), reason=reason),
            )
        ]
        if withdrawn is not None and withdrawn.offer is not None:
            revoked = frames.offer_revoked(
                offer_id=withdrawn.offer.offer_id, reason="callback_requested"
            )
            out.append(events.to_agent(withdrawn.offer.agent_id, revoked))
        await self._announce(out)
        self.poke()
        return call

    async def _dial(self, seat: seats_service.Seat, offer: HeldOffer) -> None:
        """The agent took a callback: busy with it while the telephony dials the caller (the
        full number goes to the telephony alone; a helper agent sees it masked)."""
        call = offer.call
        _, brief = await self._record_taken(
            seat,
            offer,
            calls_service.record_dial,
            gone="the callback was withdrawn before it was dialled",
        )
        dial = frames.cti_callback_dial(
            call_id=call.call_id, agent=seat.name, endpoint=seat.endpoint, number=call.caller
        )
        await self._announce(
            [
                events.to_agent(
                    seat.agent_id, frames.callback_dialing(call_id=call.call_id, call=brief)
                ),
                events.to_cti(call.city, dial),
            ]
        )

    async def callback_result(
        self, call_id: int, *, reached: bool, allowed: Callable[[Call], None]
    ) -> Call:
        """The telephony says whether the callback it dialled reached the caller.

        Reached, the call is connected and its agent handles it as any call. Not reached, the
        agent is free again (told first, as after a completion) and the callback waits
        `retry_s` out of the queue, or, its attempts spent, is `unreached`.
        """
        async with self._sessions() as session, session.begin():
            call = await calls_service.get(session=session, call_id=call_id)
            allowed(call)
            if call.callback_requested_at is None:
                raise CallbackNotDialing(f"call {call_id} is not a callback")
            if call.status != CallStatus.DIALING:
                raise CallbackNotDialing(
                    f"callback {call_id} is {call.status}, not being dialled; there is no result"
                    " to record"
                )
            agent_id = call.agent_id
            assert agent_id is not None  # a dialled callback has its agent
            now = utcnow()
            attempts = call.callback_attempts + (not reached)
            final = attempts >= self._callbacks.attempts
            values: dict[str, Any]
            if reached:
                target = CallStatus.CONNECTED
                values = {"connected_at": now}
            elif final:
                target = CallStatus.UNREACHED
                values = {"ended_at": now, "callback_attempts": attempts}
            else:
                target = CallStatus.REDIAL
                due = now + timedelta(seconds=self._callbacks.retry_s)
                values = {"callback_attempts": attempts, "callback_due_at": due, "agent_id": None}
            moved = await calls_service.move(
                connection=await session.connection(),
                call_id=call_id,
                target=target,
                at=now,
                instance=self._instance,
                reason="callback_reached" if reached else "callback_unreached",
                agent_id=agent_id,
                only_from=_DIALING,
                match={"agent_id": agent_id},
                values=values,
            )
            await session.refresh(call)
            if moved is None:
                raise CallbackNotDialing(f"callback {call_id} is already {call.status}")
            seat = await seats_service.load_seat(session=session, agent_id=agent_id)
        if reached:
            brief = frames.call_brief(
                call_id=call_id,
                city=call.city_code,
                caller=call.caller,
                channel=call.channel,
                priority=call.priority,
                agent_city=seat.city,
            )
            connected = frames.cti_call_connected(
                call_id=call_id, at=now.timestamp(), agent=seat.name, endpoint=seat.endpoint
            )
            await self._announce(
                [
                    events.to_agent(agent_id, frames.call_connected(call_id=call_id, call=brief)),
                    events.to_cti(call.city_code, connected),
                ]
            )
            return call
        retry_in_s = None if final else self._callbacks.retry_s
        told: list[events.Event] = [
            events.to_agent(
                agent_id, frames.callback_unreached(call_id=call_id, retry_in_s=retry_in_s)
            ),
            events.to_agent(agent_id, frames.state(state=AgentState.AVAILABLE.value)),
        ]
        if final:
            unreached = frames.cti_call_unreached(
                call_id=call_id, at=now.timestamp(), attempts=attempts
            )
            told.append(events.to_cti(call.city_code, unreached))
        await self._announce(told)
        if await self._state.finish_call(agent_id, call_id, time.time()) is not None:
            self.agent_freed()
        else:
            await self._tell_state(agent_id)
        return call

    async def redial_due(self, now: float) -> int:
        """Queue again, at their original places, the callbacks whose wait before their next
        dial-out is over; return how many. The database holds the wait, so it outlives any
        instance: whichever instance's tick comes first moves each (compare-and-set)."""
        at = datetime.fromtimestamp(now, UTC)
        async with self._sessions() as session, session.begin():
            connection = await session.connection()
            due = await calls_service.due_redials(connection=connection, now=at, limit=REDIAL_BATCH)
            back: list[QueuedCall] = []
            for call in due:
                moved = await calls_service.move(
                    connection=connection,
                    call_id=call.call_id,
                    target=CallStatus.QUEUED,
                    at=at,
                    instance=self._instance,
                    reason="redial_due",
                    only_from=frozenset({CallStatus.REDIAL}),
                    values={"callback_due_at": None},
                )
                if moved is not None:
                    back.append(call)
        if back:
            # A failure here leaves them queued in the database alone: the watcher's repair
            # (a rebuild) queues them.
            await self._state.enqueue(back)
            self.poke()
        return len(back)

    async def caller_back(self, call: calls_service.CallRow) -> None:
        """A new call arrived: a callback of the same caller and city not yet dialled is
        withdrawn (abandoned, `caller_called_again`), so the caller is one request, not two.

        The lookup reads an index of callbacks alone; nothing more is done without one.
        """
        async with self._hot.engine.connect() as connection:
            found = await calls_service.pending_callbacks(
                connection=connection, city=call.city_code, caller=call.caller, before=call.id
            )
        if not found:
            return
        out: list[events.Event] = []
        taken: list[tuple[QueuedCall, Withdrawn]] = []
        try:
            async with self._sessions() as session, session.begin():
                connection = await session.connection()
                at = utcnow()
                for pending in found:
                    taken.append((pending, await self._state.withdraw(pending.call_id)))
                    moved = await calls_service.move(
                        connection=connection,
                        call_id=pending.call_id,
                        target=CallStatus.ABANDONED,
                        at=at,
                        instance=self._instance,
                        reason="caller_called_again",
                        note=f"call {call.id}",
                        only_from=PENDING_CALLBACK_STATUSES,
                        values={"ended_at": at, "offer_id": None, "callback_due_at": None},
                    )
                    if moved is None:
                        continue
                    withdrawn = frames.cti_callback_withdrawn(
                        call_id=pending.call_id, at=at.timestamp(), new_call_id=call.id
                    )
                    out.append(events.to_cti(call.city_code, withdrawn))
        except BaseException:
            with contextlib.suppress(SurgeError):
                await self._state.enqueue(
                    [q for q, w in taken if w.location is not CallLocation.ABSENT]
                )
            raise
        for _, withdrawn_from in taken:
            if withdrawn_from.offer is not None:
                revoked = frames.offer_revoked(
                    offer_id=withdrawn_from.offer.offer_id, reason="caller_called_again"
                )
                out.append(events.to_agent(withdrawn_from.offer.agent_id, revoked))
        await self._announce(out)
        if any(w.offer is not None for _, w in taken):
            self.agent_freed()  # its agent is free again

    async def _callback_on_abandon(self, call: Call) -> bool:
        """Whether the abandoned `call` becomes a callback by itself: callbacks are on (for
        every city, or for its host's surge) and it waited past the short-abandon threshold."""
        policy = self._callbacks
        assert call.ended_at is not None
        waited = (call.ended_at - call.received_at).total_seconds()
        if waited < policy.after_abandon_s:
            return False
        if policy.on_abandon:
            return True
        return policy.on_abandon_in is not None and call.city_code in await policy.on_abandon_in()

    # --- recovery ---------------------------------------------------------------------------
    async def recover(self) -> Recovery:
        """Put every open call the hot state has lost back in its queue, at its original place.

        Calls the hot state still holds (another instance is running) are left alone. A call
        the database says is offered but whose offer the hot state lost is recorded as queued
        again (`call.requeued`, reason `recovered`) and its agent told the offer is gone;
        nothing is recorded when another instance recovering at the same time recorded it.
        """
        async with self._sessions() as session, session.begin():
            calls = await calls_service.open_calls(session=session)
            where = await self._state.locate([call.id for call in calls])
            absent = [call.id for call in calls if where[call.id] is CallLocation.ABSENT]
            # Read those again: one may have been offered, accepted and connected by another
            # instance between the first read and `locate` (the hot state no longer holds a
            # connected call).
            still_open = set(
                (
                    await session.execute(
                        select(Call.id).where(
                            Call.id.in_(absent),
                            Call.status.in_([s.value for s in OPEN_STATUSES]),
                        )
                    )
                ).scalars()
            )
            lost = [call for call in calls if call.id in still_open]
            offers = [
                calls_service.LostOffer(call.offer_id, calls_service.as_queued(call), call.agent_id)
                for call in lost
                if call.status == CallStatus.OFFERED and call.offer_id is not None
            ]
            connection = await session.connection()
            out: list[events.Event] = []
            recorded = 0
            at = datetime.now(UTC)
            for offer in offers:
                requeued = await self._record_requeue(connection, offer, reason="recovered", at=at)
                recorded += requeued.recorded
                out += requeued.frames
            await self._state.enqueue([calls_service.as_queued(call) for call in lost])
        await self._announce(out)
        if lost:
            log.info("recovered %d open calls (%d lost offers)", len(lost), recorded)
            self.poke()
        return Recovery(open_calls=len(calls), requeued=len(lost), offers_lost=recorded)
