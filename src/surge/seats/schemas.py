"""The agent websocket's incoming messages, validated as one tagged union on `type`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictInt, StringConstraints, TypeAdapter

from surge.calls.lifecycle import Disposition
from surge.cities.schemas import CityCode
from surge.db import BIG_INTEGER_MAX, INTEGER_MAX
from surge.schemas import RequestModel

OfferId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _chosen_by_agents(disposition: Disposition) -> Disposition:
    if disposition is Disposition.RELEASED:
        raise ValueError("`released` is set by a supervisor's release, not by an agent")
    return disposition


AgentDisposition = Annotated[Disposition, AfterValidator(_chosen_by_agents)]


class _Message(RequestModel):
    """A message from an agent's console."""


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


GAP_QUESTION_MAX = 500
GAP_NOTE_MAX = 1000
GapQuestion = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=GAP_QUESTION_MAX)
]
GapNote = Annotated[str, StringConstraints(strip_whitespace=True, max_length=GAP_NOTE_MAX)]


class GapReport(RequestModel):
    """A question the host's scripts do not answer (a knowledge gap), with an optional note."""

    question: GapQuestion
    note: GapNote | None = None


class CompleteMessage(_Message):
    """The agent closes the ticket of the call in hand."""

    type: Literal["complete"]
    call_id: StrictInt = Field(ge=1, le=BIG_INTEGER_MAX)
    disposition: AgentDisposition
    category_code: Annotated[str, StringConstraints(max_length=16)] | None = None
    summary: Annotated[str, StringConstraints(max_length=4000)] | None = None
    script_version: StrictInt | None = Field(default=None, ge=1, le=INTEGER_MAX)
    script_key: Annotated[str, StringConstraints(max_length=64)] | None = None
    gap: GapReport | None = None


class TransferMessage(_Message):
    """The agent sends the call in hand to a city's queue (`host`: back to the call's own city),
    with a note for the agent who takes it next."""

    type: Literal["transfer"]
    call_id: StrictInt = Field(ge=1, le=BIG_INTEGER_MAX)
    to: Literal["host"] | CityCode
    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class ScriptsAckMessage(_Message):
    """The console has loaded this version of a city's scripts."""

    type: Literal["scripts.ack"]
    city: CityCode
    version: StrictInt = Field(ge=0, le=INTEGER_MAX)


class GapMessage(_Message, GapReport):
    """The agent tells the host its scripts do not answer a question of the call in hand (or
    of the call it is wrapping up)."""

    type: Literal["gap"]
    call_id: StrictInt = Field(ge=1, le=BIG_INTEGER_MAX)


AgentMessage = Annotated[
    StatusMessage
    | AcceptMessage
    | DeclineMessage
    | CompleteMessage
    | TransferMessage
    | ScriptsAckMessage
    | GapMessage,
    Field(discriminator="type"),
]
agent_message = TypeAdapter[AgentMessage](AgentMessage)
