"""Stale tickets: answered under, or citing, a script version older than the host's current one.

The server pins the host's current version on the call twice, in the statement that makes each
move (`calls.service.move(pinned=...)`): `script_version_at_accept` when the agent takes the
offer, `script_version_at_complete` when it closes the ticket; `script_version` is what the
agent cited. A ticket is stale when the cited version or the version at accept is older than the
version at completion: the agent answered on scripts the host had replaced by then.

Recording the version at completion, rather than working it out later from the publish times,
keeps the report's count one comparison of two columns of the call row (no join of the day's
calls against the versions' times, on a million-call day) and says exactly what the server held
current when it took the ticket, whatever the clocks of the instances.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from surge.calls.lifecycle import CallStatus
from surge.calls.models import Call
from surge.seats.models import Agent


def is_stale() -> ColumnElement[bool]:
    """The SQL condition: a completed ticket cited, or was answered under, an older version."""
    current = Call.script_version_at_complete
    return and_(
        Call.status == CallStatus.COMPLETED.value,
        current.is_not(None),
        or_(Call.script_version < current, Call.script_version_at_accept < current),
    )


@dataclass(frozen=True, slots=True)
class StaleTicket:
    """A stale ticket and who answered it."""

    call_id: int
    received_at: datetime
    ended_at: datetime | None
    agent_id: int | None
    agent: str | None
    agent_city: str | None
    script_version: int | None
    script_version_at_accept: int | None
    script_version_at_complete: int | None


async def listed(
    *,
    session: AsyncSession,
    city: str,
    start: datetime,
    end: datetime,
    answered_by: str | None = None,
) -> Sequence[StaleTicket]:
    """The city's stale tickets of the calls received in [start, end), in call order; only
    those its agents of `answered_by` answered when given."""
    query = (
        select(
            Call.id,
            Call.received_at,
            Call.ended_at,
            Call.agent_id,
            Agent.name,
            Agent.city_code,
            Call.script_version,
            Call.script_version_at_accept,
            Call.script_version_at_complete,
        )
        .outerjoin(Agent, Agent.id == Call.agent_id)
        .where(
            Call.city_code == city,
            Call.received_at >= start,
            Call.received_at < end,
            is_stale(),
        )
        .order_by(Call.id)
    )
    if answered_by is not None:
        query = query.where(Agent.city_code == answered_by)
    return [StaleTicket(*row) for row in (await session.execute(query)).all()]
