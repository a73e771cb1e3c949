"""FastAPI dependencies: the runtime, a database session, the caller's identity and role checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from surge.auth.directory import WITHDRAWN
from surge.auth.models import Role
from surge.auth.service import Principal, read_token
from surge.errors import Forbidden, Unauthorized
from surge.runtime import Runtime
from surge.settings import Settings
from surge.state.base import HotState


async def get_runtime(request: Request) -> Runtime:
    """The running instance's resources."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings(runtime: RuntimeDep) -> Settings:
    """The instance's settings."""
    return runtime.settings


async def get_state(runtime: RuntimeDep) -> HotState:
    """The hot state."""
    return runtime.state


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """A database session; the route opens the transaction (`async with session.begin()`)."""
    async with runtime.sessions() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
StateDep = Annotated[HotState, Depends(get_state)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="An access token from POST /api/v1/auth/token")


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def authenticate(
    runtime: Runtime, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """The caller, from its bearer token, while its user may still use it."""
    if credentials is None:
        raise Unauthorized("send an access token: Authorization: Bearer <token>")
    principal = read_token(settings=runtime.settings, token=credentials.credentials)
    if not await runtime.users.admits(principal):
        raise Unauthorized(WITHDRAWN)
    return principal


async def get_principal(runtime: RuntimeDep, credentials: BearerDep) -> Principal:
    """The caller, from its bearer token, while its user may still use it (any role)."""
    return await authenticate(runtime, credentials)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def _admit(
    runtime: Runtime, credentials: HTTPAuthorizationCredentials | None, roles: Collection[Role]
) -> Principal:
    principal = await authenticate(runtime, credentials)
    if principal.role not in roles:
        allowed = ", ".join(role.value for role in roles)
        raise Forbidden(f"this needs the role {allowed}; you are {principal.role.value}")
    return principal


def require_role(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets only the given roles through."""

    # One flat dependency (no runtime or principal sub-dependencies to solve), async: FastAPI
    # would run a plain function in a worker thread, a hop per request.
    async def check(request: Request, credentials: BearerDep) -> Principal:
        return await _admit(request.app.state.runtime, credentials, roles)

    return check


async def authorize(request: Request, *roles: Role) -> Principal:
    """What `require_role(*roles)` checks, called by a route that solves no dependencies."""
    return await _admit(request.app.state.runtime, await _bearer(request), roles)


def require_city_access(principal: Principal, city: str) -> None:
    """A city-bound caller may act only for its own city; province-wide callers for any."""
    if principal.city is not None and principal.city != city:
        raise Forbidden(f"your token is for city {principal.city}, not {city}")
