"""GET /hotspots: the hot issues of the last hour, province-wide or of one city."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from surge import errors
from surge.auth.models import Role
from surge.auth.service import Principal
from surge.cities.schemas import CITY_CODE
from surge.deps import RuntimeDep, SessionDep, require_city_access, require_role
from surge.hotspots import service as hotspots_service
from surge.seats.frames import HotspotItem

router = APIRouter(tags=["hotspots"], responses=errors.responses(errors.Forbidden, errors.NotFound))

Reader = Annotated[Principal, Depends(require_role(Role.COORDINATOR, Role.CITY_ADMIN))]


@router.get("/hotspots", response_model=list[HotspotItem])
async def list_hotspots(
    principal: Reader,
    session: SessionDep,
    runtime: RuntimeDep,
    city: Annotated[
        str | None,
        Query(pattern=CITY_CODE, description="One city (default: the province, or your city)"),
    ] = None,
) -> list[HotspotItem]:
    """Categories and terms whose share of the last hour rose well above their baseline.

    The coordinator sees the province (what is hot pooled or in a city) or one city; a city
    admin its own city only (another city: 403; a city that does not exist: 404).
    """
    city = city or principal.city
    if city is not None:
        require_city_access(principal, city)
        try:
            await runtime.cities.require(city)
        except errors.UnknownCity as exc:  # a city named in the path of what is asked: 404
            raise errors.NotFound(exc.message) from None
    spots = await hotspots_service.current(
        session=session,
        rules=hotspots_service.rules(runtime.settings),
        now=time.time(),
        city=city,
    )
    return [hotspots_service.item(spot, runtime.classification) for spot in spots]
