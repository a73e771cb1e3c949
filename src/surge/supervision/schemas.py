"""Supervision bodies: the live agent list, a notice posted and read back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from surge.schemas import RequestModel

NOTICE_MAX_CHARS = 2000  # a notice is read on a console during calls: a few lines, not a manual


class AgentRead(BaseModel):
    """One agent as a supervisor sees it now."""

    id: int
    name: str
    city: str = Field(description="the agent's home city")
    state: str = Field(description="offline | available | break | offered | busy | lost (...)")
    since: datetime | None = Field(description="when it entered that state; null when offline")
    call_id: int | None = Field(
        description="the connected call in hand, if any (an offline agent's: the one it left)"
    )
    serving_host: str | None = Field(
        description="the city whose offer or call it holds (its own or a host's); null if none"
    )
    scripts_version: int | None = Field(
        description="the script version its console loaded for the city it serves (its own "
        "city when it holds nothing); null before any acknowledgement"
    )
    instance: str | None = Field(description="the service instance its console is on")


class NoticeCreate(RequestModel):
    """A notice's text."""

    text: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NOTICE_MAX_CHARS)
    ]


class NoticeRead(BaseModel):
    """A notice as recorded (and sent as the `notice` frame)."""

    model_config = ConfigDict(populate_by_name=True)

    id: int
    author: str = Field(serialization_alias="from", validation_alias="from")
    text: str
    at: datetime
    surge_id: int | None
    city: str | None
