"""The agent websocket's incoming messages, validated as one tagged union on `type`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from surge.calls.lifecycle import Disposition
from surge.cities.schemas import CityCode

OfferId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _chosen_by_agents(disposition: Disposition) -> Disposition:
    if disposition is Disposition.RELEASED:
        raise ValueError("`released` is set by a supervisor's release, not by an agent")
    return disposition


AgentDisposition = Annotated[Disposition, AfterValidator(_chosen_by_agents)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StatusMessage(_Message):
    """The agent goes available or on break."""

    type: Literal["status"]
    state: Literal["available", "break"]


class AcceptMessage(_Message):
    """The agent takes the offered call."""

    type: Literal["accept"]
    offer_id: OfferId


class DeclineMessage(_Message):
    """The agent turns the offered call down; it goes back to its place in the queue."""

    type: Literal["decline"]
    offer_id: OfferId


class CompleteMessage(_Message):
    """The agent closes the ticket of the call in hand."""

    type: Literal["complete"]
    call_id: int
    disposition: AgentDisposition
    category_code: Annotated[str, StringConstraints(max_length=16)] | None = None
    summary: Annotated[str, StringConstraints(max_length=4000)] | None = None
    script_version: int | None = Field(default=None, ge=1)
    script_key: Annotated[str, StringConstraints(max_length=64)] | None = None


class ScriptsAckMessage(_Message):
    """The console has loaded this version of a city's scripts."""

    type: Literal["scripts.ack"]
    city: CityCode
    version: int = Field(ge=0)


AgentMessage = Annotated[
    StatusMessage | AcceptMessage | DeclineMessage | CompleteMessage | ScriptsAckMessage,
    Field(discriminator="type"),
]
agent_message = TypeAdapter[AgentMessage](AgentMessage)
