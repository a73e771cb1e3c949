"""Call payloads: what the CTI posts and what it, coordinators and admins read back."""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from surge.calls.lifecycle import CallStatus, Channel
from surge.cities.schemas import CityCode
from surge.schemas import RequestModel
from surge.state.base import MAX_PRIORITY


class CallCreate(RequestModel):
    """A call arriving from the telephony side."""

    city: CityCode
    caller: Annotated[
        str, StringConstraints(min_length=1, max_length=32, pattern=r"^[0-9+\-*#() ]+$")
    ]
    channel: Channel
    # Omitted is "no key"; an explicit null is refused (it would silently turn deduplication off).
    external_id: (
        Annotated[str, StringConstraints(min_length=1, max_length=128)] | SkipJsonSchema[None]
    ) = Field(default=None, description="The telephony side's key for the call, unique per city")
    # Strict: "5", true or 5.0 as a priority is a client's bug, not a priority to route by.
    priority: StrictInt = Field(
        default=0, ge=0, le=MAX_PRIORITY, description="Higher is served first"
    )

    @field_validator("external_id", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be omitted, but not null")
        return value


class CallEventRead(BaseModel):
    """One status change in a call's history."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    from_status: CallStatus | None
    to_status: CallStatus
    agent_id: int | None
    offer_id: str | None
    reason: str | None
    note: str | None = None  # a person's words, e.g. why a supervisor released the call


class CallFields(BaseModel):
    """A call and its ticket fields once handled, as a reader sees them."""

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
    wrapped_up_at: datetime | None = Field(
        description="When the agent's wrap-up after the ticket ended (the handling runs to it)"
    )
    disposition: str | None
    category_code: str | None
    summary: str | None
    script_version: int | None
    script_key: str | None
    satisfied: bool | None = Field(description="The follow-up answer, once given")
    feedback_score: int | None = Field(description="The follow-up's 1-5 score, when given")
    transfers: int = Field(description="How often an agent sent the call on to a city's queue")
    transfer_note: str | None = Field(description="The last transfer's note for the next agent")
    callback_requested_at: datetime | None = Field(
        description="When it became a callback (回拨); null for a plain call"
    )
    callback_attempts: int = Field(description="Its callback's dial-outs that did not reach")
    callback_due_at: datetime | None = Field(
        description="While `redial`: when it is queued again for its next dial-out"
    )
    script_version_at_accept: int | None = Field(
        description="The city's script version when the offer was accepted (the server's)"
    )
    script_version_at_complete: int | None = Field(
        description="The city's script version when the ticket was completed (the server's)"
    )


class CallRead(CallFields):
    """A call, its ticket fields once handled, and its full history."""

    history: list[CallEventRead]


class TicketRead(CallFields):
    """A call in the ticket list: its fields and the city whose agent handled it."""

    served_by: str | None = Field(
        description="The city of the agent who answered it (null until connected)"
    )


class TicketPage(BaseModel):
    """One page of the ticket list, newest first."""

    items: list[TicketRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


class TicketFormat(StrEnum):
    """How the ticket list is answered."""

    JSON = "json"
    CSV = "csv"


_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_MOMENT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T\S+")
FIRST_YEAR, LAST_YEAR = 1970, 9998


def _day_or_moment(value: object) -> object:
    """A day (YYYY-MM-DD) or a moment with its offset; not a bare timestamp or a local time."""
    if not isinstance(value, str):
        return value
    parsed: date
    try:
        if _ISO_DAY.fullmatch(value):
            parsed = date.fromisoformat(value)
        elif _ISO_MOMENT.fullmatch(value):
            parsed = datetime.fromisoformat(value)
        else:
            raise ValueError
    except ValueError:
        raise ValueError(
            "expected a day YYYY-MM-DD or a time with its offset, like 2021-07-25T09:00:00+08:00"
            " (in a URL the '+' is written %2B)"
        ) from None
    if isinstance(parsed, datetime) and parsed.utcoffset() is None:
        raise ValueError("give the time with its offset, like 2021-07-25T09:00:00+08:00 or ...Z")
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        raise ValueError(f"the year must be {FIRST_YEAR} to {LAST_YEAR}")
    return parsed


TimeBound = Annotated[date | datetime, BeforeValidator(_day_or_moment)]
"""A bound of the ticket list's `received_at` range: a local day, or a moment with its offset."""


SATISFIED_FROM_SCORE = 4
"""A 1-5 score counts as satisfied from this score up."""


class FeedbackCreate(RequestModel):
    """The citizen's answer to the satisfaction follow-up: satisfied or not, or a 1-5 score."""

    # Strict: a score of `true` or a satisfied of "off" is a client's bug, not an answer to store.
    satisfied: StrictBool | None = Field(default=None, description="The yes/no answer")
    score: StrictInt | None = Field(
        default=None,
        ge=1,
        le=5,
        description=f"A 1-5 score; {SATISFIED_FROM_SCORE} and 5 count as satisfied",
    )

    @model_validator(mode="after")
    def _one_answer(self) -> Self:
        if self.satisfied is None and self.score is None:
            raise ValueError("give `satisfied` (true/false) or `score` (1-5)")
        if self.score is not None and self.satisfied not in (None, self.is_satisfied):
            raise ValueError(
                f"`satisfied` contradicts `score` ({SATISFIED_FROM_SCORE}-5 is satisfied)"
            )
        return self

    @property
    def is_satisfied(self) -> bool:
        """The answer as satisfied or not."""
        if self.score is not None:
            return self.score >= SATISFIED_FROM_SCORE
        return bool(self.satisfied)


class FeedbackRead(BaseModel):
    """A call's recorded satisfaction follow-up."""

    call_id: int
    satisfied: bool
    score: int | None
    at: datetime


class CallbackResult(RequestModel):
    """The telephony's answer to a `callback.dial`: whether the caller was reached."""

    reached: StrictBool


class CallRelease(RequestModel):
    """A supervisor closes a connected call whose agent is gone, and says why."""

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
