"""Supervision: who is on duty now (the users table and one hot-state read), forced logout's
audit, and notices (recorded, announced to every instance, re-sent on reconnect).

Services take the caller's session and do not commit; each returns what to announce.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from surge import events
from surge.auth.models import Role, User
from surge.auth.service import Principal
from surge.calls.lifecycle import CallStatus
from surge.calls.models import Call
from surge.errors import Forbidden, SurgeEnded
from surge.scripts.models import ScriptAck
from surge.seats import frames
from surge.seats.models import Agent
from surge.state.base import OFFLINE, AgentPresence, HotState
from surge.supervision.models import Notice
from surge.supervision.schemas import AgentRead, NoticeRead
from surge.surges import service as surges_service
from surge.surges.roster import ActiveSurges

NOTICES_ON_ARRIVAL = 20  # the newest notices a console gets again when it connects


def _when(epoch_s: float) -> datetime | None:
    return datetime.fromtimestamp(epoch_s, UTC) if epoch_s > 0 else None


def _serving(presence: AgentPresence) -> str | None:
    """The city whose offer or call the agent holds: a host's, or its own."""
    if presence.lent_to is not None:
        return presence.lent_to
    if presence.offer_id is not None or presence.call_id is not None:
        return presence.city
    return None


async def agents(
    *,
    session: AsyncSession,
    state: HotState,
    homes: Collection[str] | None,
    helpers: Collection[str],
    every_city: Sequence[str],
) -> list[AgentRead]:
    """The live list: every enabled agent of `homes` (None: the province), offline ones too,
    and the agents of `helpers` (the cities helping those homes' surges) connected now or gone
    with a home's call still connected.

    One database read each of the agents, their script acknowledgements and the connected
    calls, and one hot-state read, however many agents there are.
    """
    cities = list(every_city) if homes is None else [*homes, *helpers]
    query = (
        select(Agent.id, Agent.name, Agent.city_code)
        .join(User, User.id == Agent.user_id)
        .where(User.is_active.is_(True))
    )
    acks = select(ScriptAck.agent_id, ScriptAck.city_code, ScriptAck.version)
    # An agent gone (offline) may have left a connected call behind: a supervisor releases it.
    connected = select(Call.agent_id, Call.id, Call.city_code).where(
        Call.status == CallStatus.CONNECTED.value
    )
    if homes is not None:
        query = query.where(Agent.city_code.in_(cities))
        acks = acks.join(Agent, Agent.id == ScriptAck.agent_id).where(Agent.city_code.in_(cities))
        connected = connected.join(Agent, Agent.id == Call.agent_id).where(
            or_(Agent.city_code.in_(homes), Call.city_code.in_(homes))
        )
    known = (await session.execute(query)).all()
    versions = {(a, c): v for a, c, v in (await session.execute(acks)).all()}
    left_behind = {agent: (call, host) for agent, call, host in await session.execute(connected)}
    present = {p.agent_id: p for p in await state.agents(cities)}
    listed: list[AgentRead] = []
    for agent_id, name, city in known:
        presence = present.get(agent_id)
        if presence is None:
            call_id, host = left_behind.get(agent_id, (None, None))
            if homes is not None and city not in homes and call_id is None:
                continue  # a helper's agent serves the surge while connected or holding a call
            listed.append(
                AgentRead(
                    id=agent_id, name=name, city=city, state=OFFLINE, since=None,
                    call_id=call_id, serving_host=host,
                    scripts_version=versions.get((agent_id, host or city)), instance=None,
                )
            )  # fmt: skip
            continue
        serving = _serving(presence)
        listed.append(
            AgentRead(
                id=agent_id,
                name=name,
                city=city,
                state=presence.state.value,
                since=_when(presence.since),
                call_id=presence.call_id,
                serving_host=serving,
                scripts_version=versions.get((agent_id, serving or city)),
                instance=presence.instance,
            )
        )
    listed.sort(key=lambda row: (row.city, row.name, row.id))
    return listed


def logged_out(*, session: AsyncSession, actor: str, agent: Agent, before: AgentPresence) -> None:
    """Record a forced logout in the audit log."""
    surges_service.audit(
        session=session,
        actor=actor,
        action="agent.logged_out",
        surge_id=None,
        detail={
            "agent_id": agent.id,
            "agent": agent.name,
            "city": agent.city_code,
            "state": before.state.value,
            "offer_id": before.offer_id,
            "call_id": before.call_id,
        },
        reason=None,
    )


def check_logout(*, principal: Principal, agent: Agent) -> None:
    """The coordinator, or the admin of the agent's own city, may log it out."""
    if principal.role is Role.CITY_ADMIN and principal.city != agent.city_code:
        raise Forbidden(f"agent {agent.id} is not of your city {principal.city}")


def _read(notice: Notice) -> NoticeRead:
    return NoticeRead(
        id=notice.id,
        author=notice.author,
        text=notice.text,
        at=notice.at,
        surge_id=notice.surge_id,
        city=notice.city_code,
    )


def frame(notice: Notice) -> frames.Notice:
    """The `notice` frame of a recorded notice."""
    return frames.notice(
        notice_id=notice.id,
        author=notice.author,
        text=notice.text,
        at=notice.at.timestamp(),
        surge_id=notice.surge_id,
        city=notice.city_code,
    )


async def _record(
    *,
    session: AsyncSession,
    author: str,
    text: str,
    surge_id: int | None,
    city: str | None,
    to: Sequence[str],
) -> tuple[NoticeRead, list[events.Event]]:
    notice = Notice(surge_id=surge_id, city_code=city, author=author, text=text)
    session.add(notice)
    await session.flush()
    await session.refresh(notice)
    surges_service.audit(
        session=session,
        actor=author,
        action="notice.sent",
        surge_id=surge_id,
        detail={"notice_id": notice.id, "city": city, "to": list(to), "text": text},
        reason=None,
    )
    sent = frame(notice)
    return _read(notice), [events.to_city_agents(c, sent) for c in to]


async def surge_notice(
    *, session: AsyncSession, principal: Principal, surge_id: int, text: str
) -> tuple[NoticeRead, list[events.Event]]:
    """A notice from the coordinator or the host's admin to everyone serving an active surge:
    the host's agents and its active waves' helpers'."""
    surge = await surges_service.get(session=session, surge_id=surge_id)
    if principal.role is Role.CITY_ADMIN and principal.city != surge.host_city:
        raise Forbidden(f"surge {surge_id} is {surge.host_city}'s, not your city's")
    if surge.status != surges_service.ACTIVE:
        raise SurgeEnded(f"surge {surge_id} is {surge.status}: its agents get no more notices")
    to = [surge.host_city, *surges_service.helpers_of(surge, active_only=True)]
    return await _record(
        session=session, author=principal.username, text=text, surge_id=surge.id, city=None, to=to
    )


async def city_notice(
    *, session: AsyncSession, principal: Principal, city: str, text: str
) -> tuple[NoticeRead, list[events.Event]]:
    """A notice from a city's admin to the city's own agents."""
    return await _record(
        session=session, author=principal.username, text=text, surge_id=None, city=city, to=[city]
    )


def day_start(now: datetime, timezone: str) -> datetime:
    """The start of `now`'s day where the centre is (`SURGE_REPORT_TIMEZONE`): a city notice
    lasts until then."""
    local = now.astimezone(ZoneInfo(timezone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(UTC)


async def on_arrival(
    *, session: AsyncSession, city: str, surges: ActiveSurges, since: datetime
) -> list[frames.Notice]:
    """The notices a console of `city` gets again when it connects, oldest first: the newest
    `NOTICES_ON_ARRIVAL` of the active surges it serves (as their host or a helper) and of its
    own city since `since` (the start of the day)."""
    serving = [s.surge_id for s in surges.joined_by(city)]
    own = surges.of_host(city)
    if own is not None and not own.draining:
        serving.append(own.surge_id)
    wanted = Notice.city_code == city
    query = select(Notice).where(
        or_(Notice.surge_id.in_(serving), wanted & (Notice.at >= since))
        if serving
        else wanted & (Notice.at >= since)
    )
    rows = await session.execute(query.order_by(Notice.id.desc()).limit(NOTICES_ON_ARRIVAL))
    return [frame(notice) for notice in reversed(rows.scalars().all())]
