"""Surge routes for the coordinator (and city admins, read-only) and the audit log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import StringConstraints

from surge import errors, events
from surge.auth.models import Role
from surge.auth.service import Principal
from surge.cities import pressure
from surge.cities.schemas import CityCode
from surge.db import INTEGER_MAX
from surge.deps import RuntimeDep, SessionDep, SettingsDep, require_role
from surge.reasons import Reason
from surge.schemas import NO_NUL, ReasonCode
from surge.surges import service as surges_service
from surge.surges.models import Surge
from surge.surges.schemas import (
    AuditRead,
    HelperOfferRead,
    HelperRead,
    ProposalRead,
    ProposedWave,
    ReleaseRead,
    SurgeAction,
    SurgeCreate,
    SurgeRead,
    WaveRead,
    WhatIfCreate,
    WhatIfInput,
    WhatIfInputs,
    WhatIfRead,
    WhatIfScenario,
)

router = APIRouter(
    tags=["surges"],
    responses=errors.responses(
        errors.Forbidden,
        errors.NotFound,
        errors.UnknownCity,
        errors.HostInSurge,
        errors.HelperInSurge,
        errors.SurgeEnded,
    ),
)

Coordinator = Annotated[Principal, Depends(require_role(Role.COORDINATOR))]
Reader = Annotated[Principal, Depends(require_role(Role.COORDINATOR, Role.CITY_ADMIN))]
SurgeId = Annotated[int, Path(ge=1, le=INTEGER_MAX)]
# Filters of the audit log, no longer than its columns hold.
AuditAction = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=NO_NUL)]
AuditActor = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NO_NUL)]
WaveNumber = Annotated[int, Path(ge=1, le=100)]


async def _read(surge: Surge, *, session: SessionDep, runtime: RuntimeDep) -> SurgeRead:
    helpers = surges_service.helpers_of(surge, active_only=True)
    target = runtime.dispatcher.protection_service_level
    # The roster's cached reads first, with this request's connection given back (what it
    # read is loaded): they may take a connection of their own, and a request must never hold
    # one while waiting for another.
    await session.commit()
    roster = runtime.surges
    levels = await roster.own_service_levels() if helpers and target is not None else {}
    active = await roster.current()
    serving = await surges_service.serving(session=session, hosts=[surge.host_city])
    answered = await surges_service.answered_by_helpers(session=session, surge=surge)
    views = await runtime.state.snapshot([surge.host_city, *helpers], queue_depth=0)
    refusals = surges_service.lending(
        surge,
        cities=views,
        serving=serving,
        levels=levels,
        reserves=active.reserves(),
        target=target,
    )
    return SurgeRead(
        id=surge.id,
        host_city=surge.host_city,
        status=surge.status,
        overflow_after_s=surge.overflow_after_s,
        allow_shared_helpers=surge.allow_shared_helpers,
        severity=surge.severity,
        callbacks=surge.callbacks,
        created_by=surge.created_by,
        created_at=surge.created_at,
        ended_by=surge.ended_by,
        ended_at=surge.ended_at,
        host_waiting=views[surge.host_city].waiting,
        release=_release(surge, runtime=runtime),
        waves=[
            WaveRead(
                number=wave.number,
                cities=[c.city_code for c in wave.cities],
                seats_per_city=wave.seats_per_city,
                reserve=wave.reserve,
                active=wave.activated_at is not None,
                activated_at=wave.activated_at,
                helpers=[
                    HelperRead(
                        city=c.city_code,
                        seats=wave.seats_per_city,
                        in_use=serving.get(c.city_code, {}).get(surge.host_city, 0),
                        answered=answered.get(c.city_code, 0),
                        lending=refusals[c.city_code] is None if c.city_code in refusals else None,
                        lending_reason=refusals.get(c.city_code),
                    )
                    for c in wave.cities
                ],
            )
            for wave in surge.waves
        ],
    )


def _release(surge: Surge, *, runtime: RuntimeDep) -> ReleaseRead:
    """Whether the host could let its helpers go (only an active surge has any to let go)."""
    if surge.status != surges_service.ACTIVE:
        over = Reason(f"surge_{surge.status}", {}, f"the surge is {surge.status}")
        release = pressure.Release(False, (over,))
    else:
        release = runtime.pressure.release(surge.host_city, since=surge.created_at)
    return ReleaseRead(
        suggested=release.suggested,
        reasons=list(release.reasons),
        reason_codes=[ReasonCode.of(reason) for reason in release.reason_codes],
    )


async def _apply(
    change: Callable[[], Awaitable[tuple[Surge, list[events.Event]]]],
    *,
    session: SessionDep,
    runtime: RuntimeDep,
) -> SurgeRead:
    """Run a coordinator's change in one transaction, announce it, and read the surge back."""
    async with session.begin():
        surge, out = await change()
    await runtime.gateway.announce([*out, events.SURGES_CHANGED])
    return await _read(surge, session=session, runtime=runtime)


@router.post("/surges", response_model=SurgeRead, status_code=status.HTTP_201_CREATED)
async def create_surge(
    body: SurgeCreate, principal: Coordinator, session: SessionDep, runtime: RuntimeDep
) -> SurgeRead:
    """Start many-help-one for a host city; its first wave is active at once."""
    return await _apply(
        lambda: surges_service.create(
            session=session, registry=runtime.cities, payload=body, actor=principal.username
        ),
        session=session,
        runtime=runtime,
    )


@router.get("/surges", response_model=list[SurgeRead])
async def list_surges(
    _: Reader,
    session: SessionDep,
    runtime: RuntimeDep,
    active: Annotated[
        bool,
        Query(
            description="only the live surges: active, and draining (ended, helpers "
            "still finishing calls in hand)"
        ),
    ] = False,
) -> list[SurgeRead]:
    """Surges, newest first, with their waves and live counts."""
    surges = await surges_service.listing(session=session, live_only=active)
    return [await _read(surge, session=session, runtime=runtime) for surge in surges]


@router.get("/surges/proposal", response_model=ProposalRead)
async def propose_helpers(
    host: Annotated[CityCode, Query(description="the host city's code")],
    _: Coordinator,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ProposalRead:
    """Suggest helper waves for a host from the latest pressure survey."""
    await runtime.cities.require(host)
    survey = await runtime.pressure.current()
    proposal, unavailable = await surges_service.propose(
        session=session, survey=survey, host=host, thresholds=runtime.pressure.thresholds
    )
    return ProposalRead(
        host_city=host,
        agents_short=proposal.agents_short,
        waves=[
            ProposedWave(
                cities=[offer.code for offer in wave],
                seats_per_city=min(offer.suggested_seats for offer in wave),
                helpers=[
                    HelperOfferRead(city=o.code, spare=o.spare, suggested_seats=o.suggested_seats)
                    for o in wave
                ],
            )
            for wave in proposal.waves
        ],
        unavailable={city: reason.text for city, reason in unavailable.items()},
        unavailable_codes={city: ReasonCode.of(reason) for city, reason in unavailable.items()},
    )


@router.post("/surges/what-if", response_model=WhatIfRead)
async def what_if(
    body: WhatIfCreate,
    _: Coordinator,
    session: SessionDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
) -> WhatIfRead:
    """Size a host's load by Erlang A (C without a patience), from live or given figures."""
    await runtime.cities.require(body.host_city)
    survey = await runtime.pressure.current()
    readings = await surges_service.host_readings(
        session=session,
        survey=survey,
        host=body.host_city,
        min_abandons=runtime.pressure.thresholds.min_sample,
    )
    sized = surges_service.what_if(
        body,
        readings=readings,
        default_aht_s=settings.default_aht_s,
        service_level=settings.service_level_target,
        within_s=settings.service_level_s,
    )
    figures, sources = sized.figures, sized.sources
    values = {
        "arrivals_per_hour": figures.arrivals_per_hour,
        "aht_s": figures.aht_s,
        "patience_s": figures.patience_s,
        "own_agents": figures.own_agents,
    }
    return WhatIfRead(
        host_city=body.host_city,
        method=sized.result.method,
        agents_needed=sized.result.agents_needed,
        helper_seats_needed=sized.result.helper_seats_needed,
        scenarios=[WhatIfScenario(**asdict(s)) for s in sized.result.scenarios],
        inputs=WhatIfInputs(
            **{name: WhatIfInput(value=values[name], source=sources[name]) for name in values},
            service_level=sized.service_level,
            within_s=sized.within_s,
        ),
    )


@router.get("/surges/{surge_id}", response_model=SurgeRead)
async def get_surge(
    surge_id: SurgeId, _: Reader, session: SessionDep, runtime: RuntimeDep
) -> SurgeRead:
    """One surge with its waves and live counts."""
    surge = await surges_service.get(session=session, surge_id=surge_id)
    return await _read(surge, session=session, runtime=runtime)


@router.post("/surges/{surge_id}/waves/{number}/activate", response_model=SurgeRead)
async def activate_wave(
    surge_id: SurgeId,
    number: WaveNumber,
    principal: Coordinator,
    session: SessionDep,
    runtime: RuntimeDep,
    body: SurgeAction | None = None,
) -> SurgeRead:
    """Bring the next wave of helper cities in."""
    return await _apply(
        lambda: surges_service.activate_wave(
            session=session,
            surge_id=surge_id,
            number=number,
            actor=principal.username,
            reason=body.reason if body else None,
        ),
        session=session,
        runtime=runtime,
    )


@router.post("/surges/{surge_id}/end", response_model=SurgeRead)
async def end_surge(
    surge_id: SurgeId,
    principal: Coordinator,
    session: SessionDep,
    runtime: RuntimeDep,
    body: SurgeAction | None = None,
) -> SurgeRead:
    """Stop offering the host's calls to helpers: their pending offers are revoked at once, the
    calls in hand finish normally (`draining`), then the surge is `ended`."""
    async with session.begin():
        surge, out = await surges_service.end(
            session=session,
            surge_id=surge_id,
            actor=principal.username,
            reason=body.reason if body else None,
        )
    try:
        if surge.status == surges_service.DRAINING:
            # After the commit: from here on no instance lends for it, even one whose view of
            # the surges is older (the hot state refuses the claim). Should the hot state fail,
            # the maintenance loops revoke the offers as soon as it answers again.
            await runtime.transitions.surge_ended(surge.id, surge.host_city)
    finally:  # surge.left after the revocations
        await runtime.gateway.announce([*out, events.SURGES_CHANGED])
    return await _read(surge, session=session, runtime=runtime)


@router.get("/audit", response_model=list[AuditRead])
async def audit_log(
    _: Coordinator,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[
        int | None, Query(ge=1, le=INTEGER_MAX, description="page: entries older than this")
    ] = None,
    action: Annotated[
        list[AuditAction] | None,
        Query(description="only these actions (`user.disabled`; repeat for several)"),
    ] = None,
    actor: Annotated[
        AuditActor | None, Query(description="only this actor's (a user name, or `system`)")
    ] = None,
) -> list[AuditRead]:
    """Every coordinator, city admin, operator (`cli`) and automatic action, newest first."""
    entries = await surges_service.audit_log(
        session=session, limit=limit, before_id=before_id, actions=action or (), actor=actor
    )
    return [AuditRead.model_validate(entry) for entry in entries]
