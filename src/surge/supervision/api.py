"""Supervision routes: GET /agents, POST /agents/{id}/logout, notices to a surge or a city."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from surge import errors
from surge.auth.models import Role
from surge.auth.service import Principal
from surge.cities.schemas import CITY_CODE
from surge.db import INTEGER_MAX
from surge.deps import RuntimeDep, SessionDep, require_city_access, require_role
from surge.errors import NotFound
from surge.seats.models import Agent
from surge.supervision import service as supervision_service
from surge.supervision.schemas import AgentRead, NoticeCreate, NoticeRead

router = APIRouter(
    tags=["supervision"],
    responses=errors.responses(
        errors.Forbidden,
        errors.NotFound,
        errors.UnknownCity,
        errors.AgentNotPresent,
        errors.SurgeEnded,
        errors.PayloadTooLarge,
    ),
)

Supervisor = Annotated[Principal, Depends(require_role(Role.COORDINATOR, Role.CITY_ADMIN))]
CityAdmin = Annotated[Principal, Depends(require_role(Role.CITY_ADMIN))]
AgentId = Annotated[int, Path(ge=1, le=INTEGER_MAX, description="The agent's id")]
SurgeId = Annotated[int, Path(ge=1, le=INTEGER_MAX)]
CityCode = Annotated[str, Path(pattern=CITY_CODE)]


@router.get("/agents", response_model=list[AgentRead])
async def list_agents(
    principal: Supervisor,
    session: SessionDep,
    runtime: RuntimeDep,
    city: Annotated[
        str | None,
        Query(
            pattern=CITY_CODE,
            description="a city's agents and the helpers' agents serving its surge now "
            "(a city admin: its own city, the default)",
        ),
    ] = None,
) -> list[AgentRead]:
    """Every agent with its live state, offline ones included, by city and name."""
    city = city or principal.city
    helpers: tuple[str, ...] = ()
    if city is not None:
        require_city_access(principal, city)
        await runtime.cities.require(city)
        helpers = (await runtime.surges.current()).helpers_of(city)
    return await supervision_service.agents(
        session=session,
        state=runtime.state,
        homes=None if city is None else [city],
        helpers=helpers,
        every_city=runtime.cities.codes,
    )


@router.post("/agents/{agent_id}/logout", response_model=AgentRead)
async def logout_agent(
    agent_id: AgentId, principal: Supervisor, session: SessionDep, runtime: RuntimeDep
) -> AgentRead:
    """Log an agent out: its console closes (4408) wherever it is connected and a pending offer
    goes back to its place in the queue; the agent is offline. 409 when it is offline already."""
    async with session.begin():
        agent = await session.get(Agent, agent_id)
        if agent is None:
            raise NotFound(f"no agent with id {agent_id}")
        supervision_service.check_logout(principal=principal, agent=agent)
    # The transition takes a connection of its own: none is held while it runs.
    before = await runtime.transitions.logout(agent_id)
    async with session.begin():
        supervision_service.logged_out(
            session=session, actor=principal.username, agent=agent, before=before
        )
    (after,) = [
        row
        for row in await supervision_service.agents(
            session=session,
            state=runtime.state,
            homes=[agent.city_code],
            helpers=(),
            every_city=runtime.cities.codes,
        )
        if row.id == agent_id
    ]
    return after


@router.post(
    "/surges/{surge_id}/notices", response_model=NoticeRead, status_code=status.HTTP_201_CREATED
)
async def post_surge_notice(
    surge_id: SurgeId,
    body: NoticeCreate,
    principal: Supervisor,
    session: SessionDep,
    runtime: RuntimeDep,
) -> NoticeRead:
    """Tell everyone serving an active surge (the host's agents and the helpers')."""
    async with session.begin():
        notice, out = await supervision_service.surge_notice(
            session=session, principal=principal, surge_id=surge_id, text=body.text
        )
    await runtime.gateway.announce(out)
    return notice


@router.post(
    "/cities/{code}/notices", response_model=NoticeRead, status_code=status.HTTP_201_CREATED
)
async def post_city_notice(
    code: CityCode,
    body: NoticeCreate,
    principal: CityAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> NoticeRead:
    """Tell the city's own agents (the city's admin); re-sent on reconnect for the day."""
    await runtime.cities.require(code)
    require_city_access(principal, code)
    async with session.begin():
        notice, out = await supervision_service.city_notice(
            session=session, principal=principal, city=code, text=body.text
        )
    await runtime.gateway.announce(out)
    return notice
