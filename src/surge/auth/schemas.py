"""Login payloads."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, StringConstraints

from surge.auth.models import Role
from surge.schemas import RequestModel


class TokenRequest(RequestModel):
    """A username and password."""

    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class TokenRead(BaseModel):
    """An access token; `expires_in` and `agent_id` extend the contract."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    role: Role
    city: str | None
    expires_in: int
    agent_id: int | None
