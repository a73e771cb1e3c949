"""What an agent's console does: connect, change status, accept, decline and complete calls.

Each function takes the caller's session (already in a transaction) and returns the events to
publish once that transaction commits.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from surge import events
from surge.calls import service as calls_service
from surge.calls.lifecycle import CallStatus
from surge.calls.models import Call
from surge.db import utcnow
from surge.errors import (
    AgentEngaged,
    AgentNotPresent,
    CallNotOpen,
    Forbidden,
    OfferUnavailable,
    SurgeError,
    Unauthorized,
)
from surge.scripts import service as scripts_service
from surge.scripts.classification import Classification
from surge.seats import frames
from surge.seats.gateway import AgentConsole
from surge.seats.models import Agent
from surge.seats.schemas import CompleteMessage, ScriptsAckMessage
from surge.state.base import AgentPresence, AgentState, HotState, Outcome
from surge.surges.roster import ActiveSurges


@dataclass(frozen=True, slots=True)
class Seat:
    """The agent behind a console, as loaded when it connects."""

    agent_id: int
    name: str
    city: str
    endpoint: str


async def load_seat(*, session: AsyncSession, agent_id: int) -> Seat:
    """Load the agent a token names."""
    agent = await session.get(Agent, agent_id)
    if agent is None:
        raise Unauthorized("the token names no agent")
    return Seat(agent.id, agent.name, agent.city_code, agent.endpoint)


async def connect(
    *,
    session: AsyncSession,
    state: HotState,
    seat: Seat,
    instance: str,
    surges: ActiveSurges,
) -> list[frames.AgentFrame]:
    """Make the agent present here: its `hello` (with the call in hand), the surges its city
    serves (`surge.joined`), and a pending offer.

    A console that reconnects while an offer is held for it sees that offer again.
    """
    in_hand = (
        await session.execute(
            select(Call).where(
                Call.agent_id == seat.agent_id, Call.status == CallStatus.CONNECTED.value
            )
        )
    ).scalar_one_or_none()
    presence = await state.agent_connect(
        seat.agent_id,
        seat.city,
        instance=instance,
        now=time.time(),
        call_id=in_hand.id if in_hand else None,
        call_city=in_hand.city_code if in_hand else None,  # a host's call counts on its quota
    )
    serving = surges.joined_by(seat.city)
    cities = [seat.city, *(surge.host for surge in serving)]
    current = await scripts_service.current_versions(session=session, cities=cities)
    out: list[frames.AgentFrame] = [
        frames.hello(
            agent=seat.name,
            agent_id=seat.agent_id,
            city=seat.city,
            state=presence.state.value,
            call=frames.call_brief(
                call_id=in_hand.id,
                city=in_hand.city_code,
                caller=in_hand.caller,
                channel=in_hand.channel,
                agent_city=seat.city,
            )
            if in_hand
            else None,
            scripts={seat.city: current[seat.city]},
        )
    ]
    out += [
        frames.surge_joined(
            surge_id=surge.surge_id, host_city=surge.host, scripts_version=current[surge.host]
        )
        for surge in serving
    ]
    pending = await state.get_offer(presence.offer_id) if presence.offer_id else None
    if pending is not None:
        out.append(frames.offer(pending, agent_city=seat.city, surge_id=None, now=time.time()))
    return out


async def restore_presence(
    *, session: AsyncSession, state: HotState, instance: str, consoles: Sequence[AgentConsole]
) -> list[events.Event]:
    """Register again, after the hot state was rebuilt, the agents whose consoles are here.

    An agent with a connected call (the database says so) is busy with it; one that was last
    available (or held an offer the state lost) is available again; one on break stays on break.
    An offer the console still shows is revoked (`recovered`): the rebuilt state has none, and
    the revocation the rebuilding instance announced may have crossed the bus before this
    instance listened again.
    """
    rows = await session.execute(
        select(Call.agent_id, Call.id, Call.city_code).where(
            Call.agent_id.in_([console.agent_id for console in consoles]),
            Call.status == CallStatus.CONNECTED.value,
        )
    )
    in_hand: dict[int | None, tuple[int, str]] = {
        agent_id: (call_id, city) for agent_id, call_id, city in rows.tuples().all()
    }
    out: list[events.Event] = []
    for console in consoles:
        if console.offer_id is not None:
            revoked = frames.offer_revoked(offer_id=console.offer_id, reason="recovered")
            out.append(events.to_agent(console.agent_id, revoked))
        now = time.time()
        call_id, call_city = in_hand.get(console.agent_id, (None, None))
        presence = await state.agent_connect(
            console.agent_id,
            console.city,
            instance=instance,
            now=now,
            call_id=call_id,
            call_city=call_city,  # a host's call in hand counts on its quota again
        )
        if console.available and presence.state is AgentState.BREAK:
            try:
                presence = await state.set_agent_state(console.agent_id, AgentState.AVAILABLE, now)
            except (AgentNotPresent, AgentEngaged):
                continue  # it left, or an offer reached it, in the meantime
        out.append(events.to_agent(console.agent_id, state_frame(presence)))
    return out


def state_frame(presence: AgentPresence) -> frames.State:
    """Tell the console the agent's state (sent after every change)."""
    return frames.state(state=presence.state.value)


async def set_status(*, state: HotState, seat: Seat, target: AgentState) -> list[events.Event]:
    """Go available or on break."""
    presence = await state.set_agent_state(seat.agent_id, target, time.time())
    return [events.to_agent(seat.agent_id, state_frame(presence))]


async def accept(
    *, session: AsyncSession, state: HotState, seat: Seat, offer_id: str, instance: str
) -> list[events.Event]:
    """Take an offered call: the agent is busy with it and the telephony side bridges the voice."""
    outcome, offer = await state.accept(offer_id, seat.agent_id, time.time())
    if outcome is Outcome.NOT_YOURS:
        raise Forbidden("this offer is held for another agent")
    if offer is None:
        raise OfferUnavailable("the offer has expired, was withdrawn or was already answered")
    at = utcnow()
    try:
        connected = await calls_service.record_connect(
            session=session, offer=offer, at=at, instance=instance
        )
    except BaseException:
        # The database did not take it: the agent is free again, the call back at its place
        # (the dispatcher records the offer's end, which the database missed too).
        with contextlib.suppress(SurgeError):
            await state.finish_call(seat.agent_id, offer.call.call_id, at.timestamp())
            await state.enqueue([offer.call])
        raise
    if not connected:
        await state.finish_call(seat.agent_id, offer.call.call_id, at.timestamp())
        raise CallNotOpen("the caller hung up before the call was connected")
    call = offer.call  # the hot state's copy: no need to read the row back
    brief = frames.call_brief(
        call_id=call.call_id,
        city=call.city,
        caller=call.caller,
        channel=call.channel,
        agent_city=seat.city,
    )
    return [
        events.to_agent(seat.agent_id, frames.call_connected(call_id=call.call_id, call=brief)),
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


async def decline(
    *, session: AsyncSession, state: HotState, seat: Seat, offer_id: str, instance: str
) -> list[events.Event]:
    """Turn an offer down: the call goes back to its place, the agent stays available."""
    outcome, offer = await state.decline(offer_id, seat.agent_id, time.time())
    if outcome is Outcome.NOT_YOURS:
        raise Forbidden("this offer is held for another agent")
    if offer is None:
        raise OfferUnavailable("the offer has expired, was withdrawn or was already answered")
    return await calls_service.record_requeue(
        session=session, offer=offer, reason="declined", at=utcnow(), instance=instance
    )


async def complete(
    *,
    session: AsyncSession,
    seat: Seat,
    message: CompleteMessage,
    instance: str,
    classification: Classification,
) -> list[events.Event]:
    """Close the ticket of the call in hand (the agent is released once this commits).

    The ticket's category, script version and entry are checked in the same transaction: a
    ticket naming ones that do not exist is refused and the call stays open.
    """
    at = utcnow()
    city = await calls_service.record_completion(
        session=session,
        call_id=message.call_id,
        agent_id=seat.agent_id,
        disposition=message.disposition,
        category_code=message.category_code,
        summary=message.summary,
        script_version=message.script_version,
        script_key=message.script_key,
        at=at,
        instance=instance,
    )
    await scripts_service.check_ticket(
        session=session,
        city=city,
        category_code=message.category_code,
        script_version=message.script_version,
        script_key=message.script_key,
        classification=classification,
    )
    return [
        events.to_agent(seat.agent_id, frames.call_completed(call_id=message.call_id)),
        events.to_cti(
            city,
            frames.cti_call_completed(
                call_id=message.call_id,
                at=at.timestamp(),
                disposition=message.disposition.value,
            ),
        ),
    ]


async def acknowledge_scripts(
    *, session: AsyncSession, seat: Seat, message: ScriptsAckMessage, surges: ActiveSurges
) -> None:
    """The console has loaded a script version of its own city or of a host it serves."""
    serves = surges.serves(seat.city, message.city)
    await scripts_service.acknowledge(
        session=session, agent_id=seat.agent_id, city=message.city, number=message.version,
        serves=serves,
    )  # fmt: skip


async def release(*, state: HotState, seat: Seat, call_id: int) -> list[events.Event]:
    """After a completion commits and is acknowledged: the agent is available for the next call."""
    presence = await state.finish_call(seat.agent_id, call_id, time.time())
    return [events.to_agent(seat.agent_id, state_frame(presence))] if presence else []
