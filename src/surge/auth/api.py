"""POST /api/v1/auth/token."""

from __future__ import annotations

from fastapi import APIRouter, Request

from surge import errors
from surge.auth import service as auth_service
from surge.auth.schemas import TokenRead, TokenRequest
from surge.deps import SessionDep, SettingsDep, StateDep

router = APIRouter(
    tags=["auth"], responses=errors.responses(errors.InvalidCredentials, errors.TooManyAttempts)
)


@router.post("/auth/token", response_model=TokenRead)
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
