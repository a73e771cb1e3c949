"""Surges: create with waves, activate waves, end; what `roster.py` reads of them; the audit log.

A surge is `active`, then `draining` from the moment it is ended (helpers get no new offers of the
host and finish the calls in hand), then `ended` once no helper agent holds a call of the host.
Active and draining surges are *live*: a host has at most one live surge.

Every coordinator action writes an audit entry in the same transaction. The caller owns the
transaction and announces the returned events once it commits.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from surge import events
from surge.calls.lifecycle import IN_HAND_STATUSES, CallStatus
from surge.calls.models import Call
from surge.cities import pressure
from surge.cities.monitor import Survey
from surge.cities.service import CityRegistry
from surge.db import epoch_seconds, seconds_between, utcnow
from surge.errors import BadRequest, HelperInSurge, HostInSurge, NotFound, SurgeEnded
from surge.reasons import Reason
from surge.router.policy import lending_refusal, own_service_level
from surge.scripts.models import ScriptVersion
from surge.seats import frames
from surge.seats.models import Agent
from surge.state.base import CityView
from surge.surges import sizing
from surge.surges.models import AuditEntry, Surge, SurgeWave, SurgeWaveCity
from surge.surges.schemas import (
    MAX_AHT_S,
    MAX_PATIENCE_S,
    MIN_AHT_S,
    MIN_PATIENCE_S,
    SurgeCreate,
    WhatIfCreate,
)

log = logging.getLogger(__name__)

ACTIVE = "active"
DRAINING = "draining"
ENDED = "ended"
LIVE = (ACTIVE, DRAINING)
SYSTEM = "system"  # the actor of automatic changes
_TOLERANCE_S = 0.001  # the report's: epoch arithmetic in the database is exact to the millisecond


def audit(
    *,
    session: AsyncSession,
    actor: str,
    action: str,
    surge_id: int | None,
    detail: dict[str, Any],
    reason: str | None,
) -> None:
    """Record who did what, and why (and log it: `surge.created`, `wave.activated`, ...)."""
    log.info(action, extra={"actor": actor, "surge_id": surge_id, "detail": detail})
    session.add(
        AuditEntry(actor=actor, action=action, surge_id=surge_id, detail=detail, reason=reason)
    )


async def active_surges(*, session: AsyncSession) -> list[Surge]:
    """Every active surge, oldest first, with its waves and their cities."""
    rows = await session.execute(select(Surge).where(Surge.status == ACTIVE).order_by(Surge.id))
    return list(rows.scalars())


async def live_surges(*, session: AsyncSession) -> list[Surge]:
    """Every active or draining surge, oldest first, with its waves and their cities."""
    rows = await session.execute(select(Surge).where(Surge.status.in_(LIVE)).order_by(Surge.id))
    return list(rows.scalars())


def helpers_of(surge: Surge, *, active_only: bool) -> list[str]:
    """The helper cities of a surge (of its active waves only, if asked)."""
    return [
        c.city_code
        for wave in surge.waves
        if wave.activated_at is not None or not active_only
        for c in wave.cities
    ]


async def create(
    *, session: AsyncSession, registry: CityRegistry, payload: SurgeCreate, actor: str
) -> tuple[Surge, list[events.Event]]:
    """Start a surge for the host with its first wave active; refuse what cannot work."""
    host = payload.host_city
    await registry.require(host)
    helpers = [code for wave in payload.waves for code in wave.cities]
    for code in helpers:
        await registry.require(code)
    if host in helpers:
        raise BadRequest(f"the host city {host} cannot be one of its own helpers")
    repeated = sorted({code for code in helpers if helpers.count(code) > 1})
    if repeated:
        raise BadRequest(f"helper cities appear in more than one wave: {', '.join(repeated)}")
    for other in await live_surges(session=session):
        if other.host_city == host:
            state = "an active" if other.status == ACTIVE else "a draining"
            raise HostInSurge(f"{host} already has {state} surge ({other.id})")
        if other.status != ACTIVE:
            continue  # its helpers get no new offers: they are free to help elsewhere
        if host in helpers_of(other, active_only=False):
            raise HostInSurge(f"{host} is helping the surge for {other.host_city} ({other.id})")
        if other.host_city in helpers:
            raise HelperInSurge(f"{other.host_city} is itself the host of surge {other.id}")
        shared = sorted(set(helpers) & set(helpers_of(other, active_only=False)))
        if shared and not payload.allow_shared_helpers:
            raise HelperInSurge(
                f"{', '.join(shared)} already help the surge for {other.host_city} ({other.id});"
                " send allow_shared_helpers to let them serve both"
            )
    now = utcnow()
    surge = Surge(
        host_city=host,
        status=ACTIVE,
        overflow_after_s=payload.overflow_after_s,
        allow_shared_helpers=payload.allow_shared_helpers,
        severity=payload.severity,
        callbacks=payload.callbacks,
        created_by=actor,
        created_at=now,
        waves=[
            SurgeWave(
                number=number,
                seats_per_city=wave.seats_per_city,
                reserve=wave.reserve,
                activated_at=now if number == 1 else None,
                cities=[SurgeWaveCity(city_code=code) for code in wave.cities],
            )
            for number, wave in enumerate(payload.waves, start=1)
        ],
    )
    session.add(surge)
    try:
        await session.flush()
    except IntegrityError as exc:  # another coordinator started one a moment ago
        raise HostInSurge(f"{host} already has a live surge") from exc
    audit(
        session=session,
        actor=actor,
        action="surge.created",
        surge_id=surge.id,
        detail=payload.model_dump(exclude={"reason"}),
        reason=payload.reason,
    )
    return surge, await _joined(session=session, surge=surge, wave=surge.waves[0])


async def listing(*, session: AsyncSession, live_only: bool) -> list[Surge]:
    """Surges, newest first (only the active and draining ones, if asked)."""
    query = select(Surge).order_by(Surge.id.desc())
    if live_only:
        query = query.where(Surge.status.in_(LIVE))
    return list((await session.execute(query)).scalars())


async def get(*, session: AsyncSession, surge_id: int) -> Surge:
    """Return the surge or raise `NotFound`."""
    surge = await session.get(Surge, surge_id)
    if surge is None:
        raise NotFound(f"no surge with id {surge_id}")
    return surge


async def activate_wave(
    *, session: AsyncSession, surge_id: int, number: int, actor: str, reason: str | None
) -> tuple[Surge, list[events.Event]]:
    """Bring the next helper cities in (activating an active wave again changes nothing)."""
    surge = await get(session=session, surge_id=surge_id)
    if surge.status != ACTIVE:
        raise SurgeEnded(f"surge {surge_id} is {surge.status}: no wave can be activated")
    wave = next((w for w in surge.waves if w.number == number), None)
    if wave is None:
        raise NotFound(f"surge {surge_id} has no wave {number}")
    if wave.activated_at is not None:
        return surge, []
    wave.activated_at = utcnow()
    audit(
        session=session,
        actor=actor,
        action="wave.activated",
        surge_id=surge.id,
        detail={"wave": number, "cities": [c.city_code for c in wave.cities]},
        reason=reason,
    )
    await session.flush()
    return surge, await _joined(session=session, surge=surge, wave=wave)


async def end(
    *, session: AsyncSession, surge_id: int, actor: str, reason: str | None
) -> tuple[Surge, list[events.Event]]:
    """Start draining: no new helper offers, calls in hand finish (ending again changes nothing).

    The caller then revokes the helpers' pending offers in the hot state (`HotState.end_lending`);
    `finish_draining` ends the surge once the helpers' calls in hand are done.
    """
    surge = await get(session=session, surge_id=surge_id)
    if surge.status != ACTIVE:
        return surge, []
    surge.status = DRAINING
    surge.ended_by = actor
    audit(session=session, actor=actor, action="surge.ended", surge_id=surge.id, detail={},
          reason=reason)  # fmt: skip
    await session.flush()
    frame = frames.surge_left(surge_id=surge.id, host_city=surge.host_city)
    return surge, [events.to_city_agents(c, frame) for c in helpers_of(surge, active_only=True)]


async def finish_draining(*, session: AsyncSession, surge_id: int, host: str) -> bool:
    """End a draining surge if no helper agent has a call of its host connected; say if it did.

    A compare-and-set on the status: of several instances checking at once, one ends it.
    """
    if await helper_calls_in_hand(session=session, host=host):
        return False
    changed = await session.execute(
        update(Surge)
        .where(Surge.id == surge_id, Surge.status == DRAINING)
        .values(status=ENDED, ended_at=utcnow())
        .returning(Surge.id)
        .execution_options(synchronize_session=False)
    )
    if changed.scalar_one_or_none() is None:
        return False
    audit(session=session, actor=SYSTEM, action="surge.drained", surge_id=surge_id,
          detail={}, reason=None)  # fmt: skip
    return True


async def helper_calls_in_hand(*, session: AsyncSession, host: str) -> int:
    """How many of the host's calls other cities' agents have connected now."""
    count = await session.execute(
        select(func.count())
        .select_from(Call)
        .join(Agent, Agent.id == Call.agent_id)
        .where(
            Call.city_code == host,
            Call.status.in_([status.value for status in IN_HAND_STATUSES]),
            Agent.city_code != host,
        )
    )
    return int(count.scalar_one())


async def _joined(*, session: AsyncSession, surge: Surge, wave: SurgeWave) -> list[events.Event]:
    """Tell the wave's cities they help the host, and which version of its scripts is current."""
    newest = await session.execute(
        select(func.max(ScriptVersion.version)).where(ScriptVersion.city_code == surge.host_city)
    )
    frame = frames.surge_joined(
        surge_id=surge.id, host_city=surge.host_city, scripts_version=newest.scalar_one() or 0
    )
    return [events.to_city_agents(c.city_code, frame) for c in wave.cities]


async def serving(*, session: AsyncSession, hosts: Sequence[str]) -> dict[str, dict[str, int]]:
    """For each helper city, how many of its agents hold an offer or a call of each host."""
    if not hosts:
        return {}
    rows = await session.execute(
        select(Agent.city_code, Call.city_code, func.count())
        .join(Agent, Agent.id == Call.agent_id)
        .where(
            Call.status.in_([s.value for s in IN_HAND_STATUSES | {CallStatus.OFFERED}]),
            Call.city_code.in_(hosts),
            Agent.city_code != Call.city_code,
        )
        .group_by(Agent.city_code, Call.city_code)
    )
    counts: defaultdict[str, dict[str, int]] = defaultdict(dict)
    for helper, host, count in rows:
        counts[helper][host] = count
    return dict(counts)


def service_level_conditions(
    dialect: str, *, within_s: float, short_abandon_s: float
) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """A call's two service-level conditions, the report's definition: (answered within
    `within_s`, counted: answered or abandoned after `short_abandon_s`)."""
    received = epoch_seconds(dialect, Call.received_at)
    answered = Call.connected_at.is_not(None)
    in_time = and_(
        answered, epoch_seconds(dialect, Call.connected_at) - received <= within_s + _TOLERANCE_S
    )
    long_abandon = and_(
        Call.status == CallStatus.ABANDONED.value,
        epoch_seconds(dialect, Call.ended_at) - received >= short_abandon_s - _TOLERANCE_S,
    )
    return in_time, or_(answered, long_abandon)


async def own_service_levels(
    *, session: AsyncSession, since: datetime, within_s: float, short_abandon_s: float
) -> dict[str, float | None]:
    """Each city's own service level over its calls received since `since` (lender protection).

    Answered within `within_s` / (answered + abandoned after `short_abandon_s`), the report's
    definition, through `router.policy.own_service_level` (its rule for small samples).
    """
    in_time, counted = service_level_conditions(
        session.get_bind().dialect.name, within_s=within_s, short_abandon_s=short_abandon_s
    )
    rows = await session.execute(
        select(
            Call.city_code,
            func.sum(case((in_time, 1), else_=0)).label("in_time"),
            func.sum(case((counted, 1), else_=0)).label("counted"),
        )
        .where(Call.received_at >= since)
        .group_by(Call.city_code)
    )
    return {
        row.city_code: own_service_level(int(row.in_time or 0), int(row.counted or 0))
        for row in rows
    }


def lending(
    surge: Surge,
    *,
    cities: Mapping[str, CityView],
    serving: Mapping[str, Mapping[str, int]],
    levels: Mapping[str, float | None],
    reserves: Mapping[str, int],
    target: float | None,
) -> dict[str, str | None]:
    """Why each helper of the surge's active waves lends no agent now (None: it lends).

    The policy's own rule (`router.policy.lending_refusal`) on the live figures: the hot state's
    queues and free agents, the agents serving the host, the cached own service levels and the
    reserves helpers keep across every active surge (`ActiveSurges.reserves`).
    """
    refusals: dict[str, str | None] = {}
    for wave in surge.waves:
        if wave.activated_at is None or surge.status != ACTIVE:
            continue
        for helper in (c.city_code for c in wave.cities):
            city = cities.get(helper)
            refusals[helper] = lending_refusal(
                service_level=levels.get(helper),
                target=target,
                own_waiting=city.waiting if city else 0,
                in_use=serving.get(helper, {}).get(surge.host_city, 0),
                quota=wave.seats_per_city,
                free=len(city.idle) if city else 0,
                reserve=reserves.get(helper, 0),
            )
    return refusals


async def answered_by_helpers(*, session: AsyncSession, surge: Surge) -> dict[str, int]:
    """Per helper city, the host's calls its agents answered during the surge (so far)."""
    query = (
        select(Agent.city_code, func.count())
        .select_from(Call)
        .join(Agent, Agent.id == Call.agent_id)
        .where(
            Call.city_code == surge.host_city,
            # A bound the (city, received_at) index can use: no caller waits a day.
            Call.received_at >= surge.created_at - timedelta(days=1),
            Call.connected_at >= surge.created_at,
            Agent.city_code != surge.host_city,
        )
        .group_by(Agent.city_code)
    )
    if surge.ended_at is not None:
        query = query.where(Call.connected_at <= surge.ended_at)
    rows = await session.execute(query)
    return {city: int(count) for city, count in rows}


async def propose(
    *, session: AsyncSession, survey: Survey, host: str, thresholds: pressure.Thresholds
) -> tuple[pressure.Proposal, dict[str, Reason]]:
    """Helper waves for `host` from a pressure survey, and the cities left out with why."""
    over = Reason("under_pressure", {}, "under pressure itself")
    unavailable = {r.code: over for r in survey.readings if r.over}
    for surge in await active_surges(session=session):
        hosting = Reason("host_of_surge", {"surge_id": surge.id}, f"host of surge {surge.id}")
        helping = Reason("helping_surge", {"surge_id": surge.id}, f"helping surge {surge.id}")
        unavailable[surge.host_city] = hosting
        for city in helpers_of(surge, active_only=False):
            unavailable.setdefault(city, helping)
    unavailable.pop(host, None)
    loads = {load.code: load for load in survey.loads}
    proposal = pressure.propose(
        loads[host], list(loads.values()), thresholds, unavailable=unavailable
    )
    return proposal, unavailable


@dataclass(frozen=True, slots=True)
class HostReadings:
    """A host's live figures for a what-if (None: no reading)."""

    arrivals_per_hour: float | None  # the last 15 minutes' rate; None if no call arrived
    aht_s: float | None  # mean handling of the calls completed in the hour
    patience_s: float | None  # with at least `min_abandons` abandonments in the hour
    own_agents: int  # its own agents logged in, free or busy


@dataclass(frozen=True, slots=True)
class WhatIf:
    """A what-if's sizing and the figures behind it, each with where it came from."""

    result: sizing.Sizing
    figures: sizing.Figures
    sources: dict[str, str]  # figure -> given | live | default | unknown
    service_level: float
    within_s: float


async def host_readings(
    *, session: AsyncSession, survey: Survey, host: str, min_abandons: int
) -> HostReadings:
    """The host's arrival rate and agents (from the survey), handling time and patience (SQL).

    Patience is estimated as pressure's staffing advice does (exponential patience, censored
    waits): the time all the hour's callers spent waiting (answered: until connected; abandoned:
    until they hung up; still waiting: until now) over the number who hung up.
    """
    load = next((load for load in survey.loads if load.code == host), None)
    if load is None:  # a city seeded since the survey: nothing read of it yet
        return HostReadings(arrivals_per_hour=None, aht_s=None, patience_s=None, own_agents=0)
    dialect = session.get_bind().dialect.name
    now = survey.at.astimezone(UTC)
    abandoned = Call.status == CallStatus.ABANDONED.value
    waiting = Call.status.in_([CallStatus.QUEUED.value, CallStatus.OFFERED.value])
    received = epoch_seconds(dialect, Call.received_at)
    answered = Call.connected_at.is_not(None)
    waited = case(
        (answered, seconds_between(dialect, Call.connected_at, Call.received_at)),
        (abandoned, seconds_between(dialect, Call.ended_at, Call.received_at)),
        (waiting, now.timestamp() - received),
        else_=None,
    )
    completed = Call.status == CallStatus.COMPLETED.value
    handling = seconds_between(dialect, Call.ended_at, Call.connected_at)
    row = (
        await session.execute(
            select(
                func.sum(case((abandoned, 1), else_=0)),
                func.sum(waited),
                func.avg(case((completed, handling), else_=None)),
            ).where(Call.city_code == host, Call.received_at >= now - timedelta(hours=1))
        )
    ).one()
    gave_up, total_wait, aht = int(row[0] or 0), float(row[1] or 0.0), row[2]
    patience = total_wait / gave_up if gave_up >= max(1, min_abandons) and total_wait > 0 else None
    # Measurements held within the bounds a figure given must keep (a test call handled in
    # 50 ms is no handling time to size a surge by).
    return HostReadings(
        arrivals_per_hour=load.demand_per_hour if load.arrivals_15min else None,
        aht_s=None if aht is None else min(max(float(aht), MIN_AHT_S), MAX_AHT_S),
        patience_s=None if patience is None else min(max(patience, MIN_PATIENCE_S), MAX_PATIENCE_S),
        own_agents=load.agents,
    )


def what_if(
    payload: WhatIfCreate,
    *,
    readings: HostReadings,
    default_aht_s: float,
    service_level: float,
    within_s: float,
) -> WhatIf:
    """Size the host from the figures given, the live readings for the others.

    Without an arrival rate given or read, there is nothing to size (`BadRequest`); without a
    handling time, the default AHT; without a patience, Erlang C.
    """
    given, live = payload, readings
    if given.arrivals_per_hour is None and live.arrivals_per_hour is None:
        raise BadRequest(
            f"no call arrived at {payload.host_city} in the last 15 minutes: "
            "give arrivals_per_hour to size it"
        )
    sources = {
        "arrivals_per_hour": _source(given.arrivals_per_hour, live.arrivals_per_hour),
        "aht_s": _source(given.aht_s, live.aht_s, "default"),
        "patience_s": _source(given.patience_s, live.patience_s, "unknown"),
        "own_agents": _source(given.own_agents, live.own_agents),
    }
    arrivals = _first(given.arrivals_per_hour, live.arrivals_per_hour, 0.0)
    aht = _first(given.aht_s, live.aht_s, default_aht_s)
    patience = given.patience_s if given.patience_s is not None else live.patience_s
    own = given.own_agents if given.own_agents is not None else live.own_agents
    figures = sizing.Figures(
        arrivals_per_hour=arrivals, aht_s=aht, patience_s=patience, own_agents=own
    )
    if (why := sizing.too_heavy(figures)) is not None:
        raise BadRequest(why)
    if payload.target is not None:
        service_level, within_s = payload.target.service_level, payload.target.within_s
    result = sizing.size(
        figures, target=service_level, within_s=within_s, helper_seats=payload.helper_seats
    )
    return WhatIf(result, figures, sources, service_level, within_s)


def _source(given: object, live: object, otherwise: str = "live") -> str:
    """Where a what-if figure comes from: given, else live, else `otherwise`."""
    if given is not None:
        return "given"
    return "live" if live is not None else otherwise


def _first(given: float | None, live: float | None, fallback: float) -> float:
    """The figure given, else the live one, else the fallback."""
    if given is not None:
        return given
    return live if live is not None else fallback


async def audit_log(
    *,
    session: AsyncSession,
    limit: int,
    before_id: int | None,
    actions: Sequence[str] = (),
    actor: str | None = None,
) -> list[AuditEntry]:
    """The newest audit entries first, of these actions (any if none) and this actor if given."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    if actions:
        query = query.where(AuditEntry.action.in_(actions))
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    return list((await session.execute(query)).scalars())
