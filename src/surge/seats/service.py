"""What an agent's console does besides the call transitions: connect, change status,
acknowledge scripts (accepting, declining and completing a call are `calls/transitions.py`'s).

Those that use the database take the caller's session; each returns what to send or publish
afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from surge import events
from surge.calls.lifecycle import IN_HAND_STATUSES
from surge.calls.models import Call
from surge.errors import (
    AgentEngaged,
    AgentNotPresent,
    Unauthorized,
)
from surge.scripts import service as scripts_service
from surge.seats import frames
from surge.seats.gateway import AgentConsole
from surge.seats.models import Agent
from surge.seats.schemas import ScriptsAckMessage
from surge.state.base import AgentPresence, AgentState, HotState
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
                Call.agent_id == seat.agent_id,
                Call.status.in_([status.value for status in IN_HAND_STATUSES]),
            )
        )
    ).scalar_one_or_none()
    now = time.time()
    presence = await state.agent_connect(
        seat.agent_id,
        seat.city,
        instance=instance,
        now=now,
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
                priority=in_hand.priority,
                agent_city=seat.city,
            )
            if in_hand
            else None,
            scripts={seat.city: current[seat.city]},
            required=await scripts_service.unacknowledged(
                session=session, agent_id=seat.agent_id, cities=cities
            ),
        )
    ]
    if presence.wrap_up is not None:  # back during its wrap-up: what is left of it
        out.append(state_frame(presence, now=now))
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
            Call.status.in_([status.value for status in IN_HAND_STATUSES]),
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
                presence, _ = await state.set_agent_state(
                    console.agent_id, AgentState.AVAILABLE, now
                )
            except (AgentNotPresent, AgentEngaged):
                continue  # it left, or an offer reached it, in the meantime
        out.append(events.to_agent(console.agent_id, state_frame(presence, now=now)))
    return out


def state_frame(presence: AgentPresence, *, now: float) -> frames.State:
    """Tell the console the agent's state (sent after every change); in its wrap-up, with the
    call it wraps up and the seconds left."""
    if presence.wrap_up is not None:
        wrap_up = presence.wrap_up
        return frames.wrap_up(call_id=wrap_up.call_id, ends_in_s=max(0.0, wrap_up.until - now))
    return frames.state(state=presence.state.value)


async def acknowledge_scripts(
    *, session: AsyncSession, seat: Seat, message: ScriptsAckMessage, surges: ActiveSurges
) -> None:
    """The console has loaded a script version of its own city or of a host it serves."""
    serves = surges.serves(seat.city, message.city)
    await scripts_service.acknowledge(
        session=session, agent_id=seat.agent_id, city=message.city, number=message.version,
        serves=serves,
    )  # fmt: skip
