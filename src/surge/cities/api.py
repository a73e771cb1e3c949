"""GET /api/v1/cities."""

from __future__ import annotations

import time

from fastapi import APIRouter

from surge.cities import service as cities_service
from surge.cities.schemas import CityRead
from surge.deps import PrincipalDep, RuntimeDep

router = APIRouter(tags=["cities"])


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
