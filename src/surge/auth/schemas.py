"""Login and user payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictBool, StringConstraints

from surge.auth.models import Role
from surge.cities.schemas import CityCode
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


class UserCreate(RequestModel):
    """A new user; `endpoint` (an agent's SIP URI or extension) extends the contract."""

    username: str = Field(description="1 to 64 printable characters without spaces")
    password: str = Field(description="8 to 256 characters")
    role: Role
    city: CityCode | None = Field(
        default=None, description="the 6-digit city code (city_admin, agent; optional for cti)"
    )
    endpoint: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = Field(
        default=None, description="an agent's SIP URI or extension (default sip:NAME@CITY...)"
    )


class UserChange(RequestModel):
    """What to change of a user: at least one of the two."""

    # Strict: "false" as a flag is a client's bug, not an answer.
    disabled: StrictBool | None = Field(
        default=None, description="true withdraws its tokens and closes its sockets at once"
    )
    password: str | None = Field(
        default=None, description="a new password (8 to 256 characters); withdraws its tokens"
    )


class UserRead(BaseModel):
    """A user as its managers see it (never its password); `agent_id` extends the contract."""

    id: int
    username: str
    role: Role
    city: str | None
    disabled: bool
    agent_id: int | None
    created_at: datetime
