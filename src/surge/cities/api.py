"""GET /api/v1/cities, the pressure board and a city's pressure history."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from surge import errors
from surge.auth.models import Role
from surge.auth.service import Principal
from surge.cities import pressure
from surge.cities import service as cities_service
from surge.cities.schemas import (
    CITY_CODE,
    CityRead,
    PressureBoard,
    PressureHistory,
    PressureRead,
    PressureSample,
    ProvinceRead,
)
from surge.deps import PrincipalDep, RuntimeDep, require_role
from surge.schemas import ReasonCode

router = APIRouter(
    tags=["cities"], responses=errors.responses(errors.Forbidden, errors.UnknownCity)
)
Coordinator = Annotated[Principal, Depends(require_role(Role.COORDINATOR))]


@router.get("/pressure", response_model=PressureBoard)
async def get_pressure(_: Coordinator, runtime: RuntimeDep) -> PressureBoard:
    """Every city's pressure, ranked, with its reasons; the elected city; the province's totals."""
    survey = await runtime.pressure.current()
    return PressureBoard(
        at=survey.at,
        cities=[
            PressureRead(
                **{
                    **asdict(reading),
                    "reasons": list(reading.reasons),
                    "reason_codes": [ReasonCode.of(r) for r in reading.reason_codes],
                }
            )
            for reading in survey.readings
        ],
        elected=survey.elected,
        province=ProvinceRead(**asdict(pressure.province(survey.readings))),
    )


@router.get("/pressure/history", response_model=PressureHistory)
async def get_pressure_history(
    city: Annotated[str, Query(pattern=CITY_CODE, description="the city's code")],
    _: Coordinator,
    runtime: RuntimeDep,
    minutes: Annotated[int, Query(ge=1, le=60, description="how far back")] = 60,
) -> PressureHistory:
    """A city's queue and staffing at each survey of the last minutes (this instance's samples)."""
    await runtime.cities.require(city)
    await runtime.pressure.current()  # at least one sample, and a fresh one
    since = datetime.now(UTC) - timedelta(minutes=minutes)
    return PressureHistory(
        city=city,
        minutes=minutes,
        samples=[
            PressureSample(at=at, **asdict(sample))
            for at, sample in runtime.pressure.history(city=city, since=since)
        ],
    )


@router.get("/cities", response_model=list[CityRead])
async def list_cities(_: PrincipalDep, runtime: RuntimeDep) -> list[CityRead]:
    """Every city with its live queue and staffing figures."""
    figures = await cities_service.live_figures(
        registry=runtime.cities, state=runtime.state, now=time.time()
    )
    return [
        CityRead(
            code=f.city.code,
            name=f.city.name,
            name_en=f.city.name_en,
            seats=f.city.seats,
            waiting=f.waiting,
            longest_wait_s=f.longest_wait_s,
            agents_available=f.agents_available,
            agents_busy=f.agents_busy,
            agents_on_break=f.agents_on_break,
        )
        for f in figures
    ]
