"""POST /api/v1/auth/token, and the users: GET /users, POST /users, PATCH /users/{id}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status

from surge import errors
from surge.auth import service as auth_service
from surge.auth.models import Role, User
from surge.auth.schemas import TokenRead, TokenRequest, UserChange, UserCreate, UserRead
from surge.auth.service import Principal
from surge.cities.schemas import CityCode
from surge.db import INTEGER_MAX
from surge.deps import (
    RuntimeDep,
    SessionDep,
    SettingsDep,
    StateDep,
    require_city_access,
    require_role,
)
from surge.runtime import Runtime

router = APIRouter()

Manager = Annotated[Principal, Depends(require_role(Role.COORDINATOR, Role.CITY_ADMIN))]
UserId = Annotated[int, Path(ge=1, le=INTEGER_MAX, description="The user's id")]
USER_ERRORS = errors.responses(
    errors.Forbidden, errors.NotFound, errors.UnknownCity, errors.Conflict, errors.UsernameTaken
)


@router.post(
    "/auth/token",
    response_model=TokenRead,
    tags=["auth"],
    responses=errors.responses(errors.InvalidCredentials, errors.TooManyAttempts),
)
async def issue_token(
    body: TokenRequest,
    request: Request,
    session: SessionDep,
    state: StateDep,
    settings: SettingsDep,
) -> TokenRead:
    """Exchange a username and password for an access token (failed logins are throttled)."""
    # The peer, or what a trusted proxy says in X-Forwarded-For (uvicorn's --forwarded-allow-ips).
    address = request.client.host if request.client is not None else "unknown"
    principal = await auth_service.login(
        session=session,
        state=state,
        settings=settings,
        username=body.username,
        password=body.password,
        address=address,
    )
    return TokenRead(
        access_token=auth_service.issue_token(settings=settings, principal=principal),
        role=principal.role,
        city=principal.city,
        expires_in=settings.token_ttl_s,
        agent_id=principal.agent_id,
    )


def _read(user: User, agent_id: int | None) -> UserRead:
    return UserRead(
        id=user.id,
        username=user.username,
        role=Role(user.role),
        city=user.city_code,
        disabled=not user.is_active,
        agent_id=agent_id,
        created_at=user.created_at,
    )


@router.get("/users", response_model=list[UserRead], tags=["users"], responses=USER_ERRORS)
async def list_users(
    principal: Manager,
    session: SessionDep,
    city: Annotated[CityCode | None, Query(description="only this city's users")] = None,
    role: Annotated[Role | None, Query(description="only users of this role")] = None,
) -> list[UserRead]:
    """Users, oldest first: every user for the coordinator, its city's agents for a city admin."""
    if principal.role is Role.CITY_ADMIN:
        assert principal.city is not None  # a city admin's token carries its city
        require_city_access(principal, city or principal.city)
        if role not in (None, Role.AGENT):
            raise errors.Forbidden("a city admin sees only the agents of its own city")
        city, role = principal.city, Role.AGENT
    found = await auth_service.users(session=session, city=city, role=role)
    return [_read(user, agent_id) for user, agent_id in found]


@router.post(
    "/users",
    response_model=UserRead,
    status_code=status.HTTP_201_CREATED,
    tags=["users"],
    responses=USER_ERRORS,
)
async def create_user(body: UserCreate, principal: Manager, session: SessionDep) -> UserRead:
    """Create a user (a city admin: an agent of its own city); the audit log records it."""
    auth_service.require_manages(principal, role=body.role, city=body.city)
    async with session.begin():
        user = await auth_service.create_user(
            session=session,
            actor=principal.username,
            username=body.username,
            password=body.password,
            role=body.role,
            city=body.city,
            endpoint=body.endpoint,
        )
        return _read(user, await auth_service.agent_id_of(session=session, user=user))


@router.patch("/users/{user_id}", response_model=UserRead, tags=["users"], responses=USER_ERRORS)
async def change_user(
    user_id: UserId, body: UserChange, principal: Manager, session: SessionDep, runtime: RuntimeDep
) -> UserRead:
    """Disable or enable a user, or reset its password: a disabled user, or one with a new
    password, is out at once (its tokens refused, its sockets closed)."""
    async with session.begin():
        user = await auth_service.get_user(session=session, user_id=user_id)
        auth_service.require_may_change(principal, user)
        await auth_service.change_user(
            session=session,
            actor=principal.username,
            user=user,
            disabled=body.disabled,
            password=body.password,
        )
        read = _read(user, await auth_service.agent_id_of(session=session, user=user))
    _withdraw_at_once(runtime, user)
    return read


def _withdraw_at_once(runtime: Runtime, user: User) -> None:
    """Tell this instance now what it would read within `SURGE_USER_REFRESH_S`, and close the
    sockets here whose tokens are withdrawn (the other instances do at their next reading)."""
    runtime.users.learn(user.id, version=user.token_version, active=user.is_active)
    runtime.gateway.close_withdrawn(runtime.users.verdict)
