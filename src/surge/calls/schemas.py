"""Call payloads: what the CTI posts and what it, coordinators and admins read back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from surge.calls.lifecycle import CallStatus, Channel
from surge.state.base import MAX_PRIORITY

CityCode = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]


class CallCreate(BaseModel):
    """A call arriving from the telephony side."""

    model_config = ConfigDict(extra="forbid")

    city: CityCode
    caller: Annotated[
        str, StringConstraints(min_length=1, max_length=32, pattern=r"^[0-9+\-*#() ]+$")
    ]
    channel: Channel
    external_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    priority: int = Field(default=0, ge=0, le=MAX_PRIORITY, description="Higher is served first")


class CallEventRead(BaseModel):
    """One status change in a call's history."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    from_status: CallStatus | None
    to_status: CallStatus
    agent_id: int | None
    offer_id: str | None
    reason: str | None


class CallRead(BaseModel):
    """A call, its ticket fields once handled, and its full history."""

    id: int
    external_id: str | None
    city: str
    caller: str
    channel: Channel
    priority: int
    status: CallStatus
    agent_id: int | None
    received_at: datetime
    connected_at: datetime | None
    ended_at: datetime | None
    disposition: str | None
    category_code: str | None
    summary: str | None
    script_version: int | None
    script_key: str | None
    history: list[CallEventRead]
