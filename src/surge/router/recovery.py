"""Rebuilding the hot state from the database, so losing Redis (or a restart) loses no call."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from surge.calls import service as calls_service
from surge.calls.lifecycle import CallStatus
from surge.db import utcnow
from surge.state.base import CallLocation, HotState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a rebuild did."""

    open_calls: int
    requeued: int
    offers_lost: int


async def rebuild(*, session: AsyncSession, state: HotState, instance: str) -> Recovery:
    """Put every open call the hot state has lost back in its queue, at its original place.

    Calls the hot state still holds (another instance is running) are left alone. A call the
    database says is offered but whose offer the hot state lost is recorded as queued again.
    """
    calls = await calls_service.open_calls(session=session)
    where = await state.locate([call.id for call in calls])
    lost = [call for call in calls if where[call.id] is CallLocation.ABSENT]
    at = utcnow()
    offers_lost = 0
    for call in lost:
        if call.status == CallStatus.OFFERED:
            offers_lost += 1
            await calls_service.move(
                session=session,
                call_id=call.id,
                target=CallStatus.QUEUED,
                at=at,
                instance=instance,
                reason="recovered",
                agent_id=call.agent_id,
                offer_id=call.offer_id,
                values={"agent_id": None, "offer_id": None},
            )
    await state.enqueue([calls_service.as_queued(call) for call in lost])
    if lost:
        log.info("recovered %d open calls (%d lost offers)", len(lost), offers_lost)
    return Recovery(open_calls=len(calls), requeued=len(lost), offers_lost=offers_lost)
