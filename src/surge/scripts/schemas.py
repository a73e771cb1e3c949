"""Script book payloads."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, StrictBool, StrictInt, StringConstraints

from surge.db import INTEGER_MAX
from surge.schemas import ReasonCode, RequestModel

MAX_ENTRIES = 5000
MAX_ANSWERED_GAPS = 200

Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]


class ScriptEntry(RequestModel):
    """One unified answer to one hot question."""

    key: Key = Field(description="stable across versions: letters, digits, . _ -")
    title: Text
    question: LongText
    answer: LongText
    category_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]
    tags: list[Tag] = Field(default_factory=list, max_length=20)


class ScriptBookCreate(RequestModel):
    """A whole new version of a city's script book."""

    entries: list[ScriptEntry] = Field(max_length=MAX_ENTRIES)
    note: Annotated[str, StringConstraints(max_length=1000)] | None = None
    base_version: StrictInt | None = Field(
        default=None,
        ge=0,
        le=INTEGER_MAX,
        description="the version this edit started from (409 if stale)",
    )
    required: StrictBool = Field(
        default=False,
        description="agents serving the city get none of its calls until they acknowledge it",
    )
    answers_gaps: list[Annotated[StrictInt, Field(ge=1, le=INTEGER_MAX)]] = Field(
        default_factory=list,
        max_length=MAX_ANSWERED_GAPS,
        description="open knowledge-gap groups of this city the new version answers",
    )


class RollbackRequest(RequestModel):
    """Publish an old version's content again."""

    to_version: StrictInt = Field(ge=1, le=INTEGER_MAX)
    note: Annotated[str, StringConstraints(max_length=1000)] | None = None
    base_version: StrictInt | None = Field(default=None, ge=0, le=INTEGER_MAX)
    required: StrictBool = False


class VersionSummary(BaseModel):
    """A version in the history list."""

    version: int
    author: str
    created_at: datetime
    note: str | None
    note_code: ReasonCode | None = Field(
        description="the note as a code when it is the service's own (a rollback without a note)"
    )
    entry_count: int
    rolled_back_from: int | None
    required: bool = Field(description="serving agents must acknowledge it to get more calls")


class ScriptBookRead(VersionSummary):
    """A version with its entries (version 0: nothing published yet)."""

    city: str
    entries: list[ScriptEntry]


class SearchHit(BaseModel):
    """An entry matching a search, with its score (higher is better)."""

    score: int
    entry: ScriptEntry


class SearchResult(BaseModel):
    """The best entries for a query in the current version."""

    city: str
    version: int
    query: str
    hits: list[SearchHit]


class VersionCount(BaseModel):
    """How many serving agents have loaded a version (None: none acknowledged yet)."""

    version: int | None
    agents: int


class AgentVersion(BaseModel):
    """A serving agent and the version its console has loaded."""

    agent_id: int
    name: str
    city: str
    version: int | None
    held_back: bool = Field(
        description="it has not acknowledged the required version: no offers of the city's calls"
    )


class AdoptionRead(BaseModel):
    """Who among the agents serving a city is on which script version."""

    city: str
    version: int
    required_version: int | None = Field(description="the newest required version, if any")
    serving: int
    held_back: int = Field(description="serving agents getting no offers until they acknowledge")
    by_version: list[VersionCount]
    behind: list[AgentVersion]


class StaleTicketRead(BaseModel):
    """A ticket that cited, or was answered under, a version older than the one current when
    it was completed."""

    call_id: int
    received_at: datetime
    completed_at: datetime | None
    agent_id: int | None
    agent: str | None
    agent_city: str | None
    helper_city: str | None = Field(description="the agent's city when it is not the host")
    script_version: int | None = Field(description="the version the agent cited")
    script_version_at_accept: int | None
    script_version_at_complete: int | None


class StaleTickets(BaseModel):
    """A host's stale tickets of the calls received in one local day."""

    city: str
    date: date
    count: int
    tickets: list[StaleTicketRead]


class ChangedEntry(BaseModel):
    """An entry present in both versions, and which of its fields differ."""

    key: str
    fields: list[str]


class ScriptDiff(BaseModel):
    """What changed between two versions, by entry key."""

    city: str
    from_version: int
    to_version: int
    added: list[str]
    removed: list[str]
    changed: list[ChangedEntry]


class CategoryRead(BaseModel):
    """A level-2 request category, as ticket forms offer it."""

    code: str
    name: str
    name_en: str
    kind: str
    parent: str
    parent_name: str


class GapStatus(StrEnum):
    """A knowledge-gap group is open until a publish answers it."""

    OPEN = "open"
    ANSWERED = "answered"


class GapGroupRead(BaseModel):
    """Similar questions the city's scripts did not answer, raised by agents on its calls."""

    id: int
    city: str
    question: str = Field(description="the representative: the first question of the group")
    count: int = Field(description="gaps raised in the group")
    first_at: datetime
    last_at: datetime
    cities: list[str] = Field(description="the home cities of the agents who raised them")
    status: GapStatus
    answered_version: int | None = Field(description="the version whose publish answered it")
