"""The daily report as the API and the CLI give it (JSON), and the query that asks for it."""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

from surge.errors import BadRequest

FIRST_DAY = date(1970, 1, 1)
"""The earliest day a report covers: before it, old local offsets (+08:05) break the arithmetic."""

_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _written_as_iso_day(value: object) -> object:
    """Only YYYY-MM-DD: not a timestamp, a datetime or an ISO week, which a date would accept."""
    if isinstance(value, str) and not _ISO_DAY.fullmatch(value):
        raise ValueError("expected a day written YYYY-MM-DD, like 2021-07-25")
    return value


def _not_before_the_first_day(value: date) -> date:
    if value < FIRST_DAY:
        raise ValueError(f"reports begin on {FIRST_DAY.isoformat()}")
    return value


ReportDay = Annotated[
    date, BeforeValidator(_written_as_iso_day), AfterValidator(_not_before_the_first_day)
]
"""The day of a report, as the API and the CLI take it."""


def check_day(day: date, timezone: str) -> None:
    """A report may be asked for any day up to today (today's is the day so far)."""
    today = datetime.now(ZoneInfo(timezone)).date()
    if day > today:
        raise BadRequest(f"{day.isoformat()} has not happened yet (today is {today.isoformat()})")


def _rounded(places: int) -> AfterValidator:
    def to_places(value: float) -> float:
        return round(value, places)

    return AfterValidator(to_places)


Figure = Annotated[float, _rounded(6)]
"""A rate or a number of seconds of the report or the ledger, to six decimal places (seconds to
the microsecond, as PostgreSQL keeps times): finer than any figure means, coarser than the noise
of the float arithmetic behind it (times are seconds since 1970 subtracted in the database, then
summed), so 1.337 s reads 1.337, not 1.3370001316070557."""

HourFigure = Annotated[float, _rounded(9)]
"""A number of hours, to nine decimal places (3.6 microseconds), for the same reason."""


class ReportFormat(StrEnum):
    """The formats the report is written in."""

    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"


class Part(StrEnum):
    """A part of the report: one CSV table, one XLSX sheet."""

    SUMMARY = "summary"
    HELPERS = "helpers"
    HOURLY = "hourly"
    STAFFING = "staffing"


class Lang(StrEnum):
    """The language of CSV and XLSX headers."""

    ZH = "zh"
    EN = "en"


class HourFigures(BaseModel):
    """One local hour of a city's (or the province's) calls, by the hour they were received."""

    hour: datetime = Field(description="Local start of the hour")
    received: int
    answered: int
    abandoned: int
    answered_by_helpers: int
    connection_rate: Figure | None
    asa_s: Figure | None
    service_level: Figure | None
    aht_s: Figure | None


class HelperContribution(BaseModel):
    """What one helper city did for one host city in the day."""

    host: str
    host_name: str
    code: str
    name: str
    answered: int
    share: Figure | None
    asa_s: Figure | None
    aht_s: Figure | None
    handling_hours: HourFigure
    agents: int
    stale_tickets: int
    surges: list[int]
    gaps_raised: int


class StaffingHour(BaseModel):
    """The advice for one hour of the next day."""

    hour: datetime = Field(description="Local start of the hour (next day)")
    forecast_calls: int
    agents_needed: int
    own_agents: int
    helper_seats: int


class Staffing(BaseModel):
    """Next-day staffing advice for a city (Erlang C, or Erlang A with measured patience)."""

    for_date: date
    method: str = Field(description="erlang_c, or erlang_a when abandonment was measured")
    aht_s: Figure
    patience_s: Figure | None = Field(description="Estimated mean caller patience (Erlang A)")
    target: float
    within_s: float
    own_agents: int
    peak_agents_needed: int
    peak_helper_seats: int
    agent_hours_needed: int
    helper_seat_hours: int
    hours: list[StaffingHour]


class CityDay(BaseModel):
    """One city's day (or, with `code` null, the province's)."""

    code: str | None
    name: str
    name_en: str
    received: int
    answered: int
    abandoned: int
    abandoned_short: int
    abandoned_long: int
    open: int
    unique_callers: int
    repeat_attempts: int
    connection_rate: Figure | None
    abandonment_rate: Figure | None
    asa_s: Figure | None
    wait_p90_s: Figure | None
    service_level: Figure | None
    aht_s: Figure | None
    answered_by_helpers: int
    helper_share: Figure | None
    answered_for_others: int
    answered_online: int
    transferred: int
    online_rate: Figure | None
    consultation: int
    consultation_aht_s: Figure | None
    other: int
    other_aht_s: Figure | None
    unclassified: int
    feedback: int
    satisfied: int
    satisfaction_rate: Figure | None
    callbacks: int
    callbacks_reached: int
    callbacks_unreached: int
    callback_wait_s: Figure | None
    stale_tickets: int
    agents_active: int
    seats_active: int
    seats: int
    gaps_raised: int
    gaps_raised_for_others: int
    gaps_closed: int
    helpers: list[HelperContribution]
    hourly: list[HourFigures]
    staffing: Staffing | None


class Definition(BaseModel):
    """How one figure is counted."""

    zh: str
    en: str
    unit: str
    definition: str


class ReportMetadata(BaseModel):
    """The report's parameters and the definition of every figure."""

    service_level_s: float
    short_abandon_s: float
    service_level_target: float
    satisfied_from_score: int
    notes: list[str]
    definitions: dict[str, dict[str, Definition]] = Field(
        description="Per part (summary, helpers, hourly, staffing): each figure's definition"
    )


class DailyReport(BaseModel):
    """The daily data report (数据日报) for the province or one city."""

    date: date
    scope: str = Field(description="province, or the city's code")
    timezone: str
    start: datetime = Field(description="Local midnight opening the day")
    end: datetime = Field(description="Local midnight closing the day")
    generated_at: datetime
    cities: list[CityDay]
    province: CityDay | None = Field(description="The province's totals (province scope only)")
    metadata: ReportMetadata

    def as_json(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return self.model_dump(mode="json")


class ExportRead(BaseModel):
    """A scheduled export: the day, who wrote it, when, and the files."""

    day: date
    status: str
    instance: str
    started_at: datetime
    finished_at: datetime | None
    files: list[str]
    error: str | None


LEDGER_MAX_DAYS = 92
"""The longest range the reciprocity ledger covers in one request (a quarter)."""


class LedgerPart(StrEnum):
    """A part of the reciprocity ledger: one CSV table, one XLSX sheet."""

    PAIRS = "pairs"
    CITIES = "cities"


def check_range(start: date, end: date, timezone: str) -> None:
    """`from` no later than `to`, neither in the future, at most `LEDGER_MAX_DAYS` days."""
    if start > end:
        raise BadRequest(f"from {start.isoformat()} is after to {end.isoformat()}")
    check_day(end, timezone)
    days = (end - start).days + 1
    if days > LEDGER_MAX_DAYS:
        raise BadRequest(f"the range covers {days} days; at most {LEDGER_MAX_DAYS} per request")


class LedgerPair(BaseModel):
    """What one lender city gave one host city over the range, and what it got back."""

    lender: str
    lender_name: str
    host: str
    host_name: str
    seat_hours_lent: HourFigure
    seat_hours_received: HourFigure
    balance_hours: HourFigure
    calls_answered: int
    calls_answered_back: int
    lender_calls_while_lending: int
    lender_service_level_while_lending: Figure | None


class LedgerCity(BaseModel):
    """One city's balance over the range: seat-hours lent against seat-hours received."""

    code: str
    name: str
    seat_hours_lent: HourFigure
    seat_hours_received: HourFigure
    balance_hours: HourFigure
    calls_answered_for_others: int
    calls_answered_by_others: int


class LedgerMetadata(BaseModel):
    """The ledger's parameters and the definition of every figure."""

    service_level_s: float
    short_abandon_s: float
    max_days: int
    definitions: dict[str, dict[str, Definition]] = Field(
        description="Per part (pairs, cities): each figure's definition"
    )


class Ledger(BaseModel):
    """The reciprocity ledger (互助台账): seat-hours lent and received per city pair."""

    from_date: date = Field(serialization_alias="from")
    to_date: date = Field(serialization_alias="to")
    scope: str = Field(description="province, or the city whose pairs these are")
    timezone: str
    start: datetime = Field(description="Local midnight opening the first day")
    end: datetime = Field(description="Local midnight closing the last day")
    generated_at: datetime
    pairs: list[LedgerPair]
    cities: list[LedgerCity]
    metadata: LedgerMetadata

    def as_json(self) -> dict[str, Any]:
        """The ledger as JSON-ready data."""
        return self.model_dump(mode="json", by_alias=True)
