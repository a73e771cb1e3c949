"""The daily report, aggregated in the database.

Seven grouped queries read the day's calls, an eighth the day's knowledge gaps; none returns a
row per call:

1. per city and local hour: counts and sums (received, answered, abandoned, waits, handling...);
2. per host and helper city: the calls helpers answered, with their waits and handling;
3. per city and category code: completed calls and their handling, for consultation vs other;
4. distinct agents: per call city (seats serving), per agent city (agents active), in all;
5. the nearest-rank 90th-percentile wait per city and province-wide (window functions);
6. the surges active in the day, with their activated helper cities;
7. distinct callers (by the day's caller key, never the number) per city and province-wide;
8. knowledge gaps raised in the day per host and raising city, and closed in the day per host.

Python then adds up at most cities x hours rows and derives the rates. Every figure is defined in
`surge.reports.definitions`, with the columns it is computed from. Every column is labelled and
read back by its label (`row._mapping`), never by its place: the tally's figures are the hourly
query's columns of the same names. docs/REPORT.md says how to add a figure.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Self, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, Select, and_, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql.elements import ColumnElement, Label

from surge.calls.lifecycle import CallStatus, Disposition
from surge.calls.models import Call
from surge.calls.schemas import SATISFIED_FROM_SCORE
from surge.cities.models import City
from surge.db import Column, epoch_seconds, seconds_between, utcnow
from surge.errors import UnknownCity
from surge.reports import definitions, staffing
from surge.reports.schemas import (
    CityDay,
    DailyReport,
    Definition,
    HelperContribution,
    HourFigures,
    ReportMetadata,
)
from surge.scripts import stale
from surge.scripts.classification import Classification, Kind
from surge.scripts.models import ScriptGap, ScriptGapGroup
from surge.seats.models import Agent
from surge.settings import Settings
from surge.surges.models import Surge, SurgeWave, SurgeWaveCity

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
R = TypeVar("R", bound="DataclassInstance")
_Statement = Select[*tuple[Any, ...]]
PROVINCE_NAME = ("全省", "Province")
_TOLERANCE_S = 0.001
"""Thresholds hold to the millisecond: SQLite's date arithmetic is exact only to ~0.1 ms."""


@dataclass(frozen=True, slots=True)
class Day:
    """A local calendar day: its bounds and its hours (23 or 25 where clocks change)."""

    day: date
    zone: ZoneInfo

    @classmethod
    def of(cls, day: date, timezone: str) -> Self:
        """The day `day` in the IANA time zone `timezone`."""
        return cls(day=day, zone=ZoneInfo(timezone))

    @property
    def start(self) -> datetime:
        """Local midnight opening the day."""
        return datetime.combine(self.day, time(0), tzinfo=self.zone)

    @property
    def end(self) -> datetime:
        """Local midnight closing the day."""
        return datetime.combine(self.day + timedelta(days=1), time(0), tzinfo=self.zone)

    @property
    def hours(self) -> list[datetime]:
        """The local start of each real hour of the day."""
        start, end = self.start.astimezone(UTC), self.end.astimezone(UTC)
        count = round((end - start).total_seconds() / 3600)
        return [(start + timedelta(hours=i)).astimezone(self.zone) for i in range(count)]

    def next(self) -> Day:
        """The following day."""
        return Day(day=self.day + timedelta(days=1), zone=self.zone)


@dataclass(slots=True)
class Tally:
    """The additive figures of a set of calls (a city's hour, a city's day, the province).

    Each field is a column of the hourly query, labelled with the field's name.
    """

    received: int = 0
    answered: int = 0
    abandoned: int = 0
    abandoned_short: int = 0
    answered_in_time: int = 0
    wait_s: float = 0.0
    abandoned_wait_s: float = 0.0
    completed: int = 0
    handling_s: float = 0.0
    answered_by_helpers: int = 0
    answered_online: int = 0
    transferred: int = 0
    feedback: int = 0
    satisfied: int = 0
    callbacks: int = 0
    callbacks_reached: int = 0
    callbacks_unreached: int = 0
    callback_wait_s: float = 0.0
    stale_tickets: int = 0

    @classmethod
    def of_row(cls, row: Mapping[Any, Any]) -> Tally:
        """A tally from a query row's columns of the fields' names."""
        return _of_columns(cls, row)

    def add(self, other: Tally) -> None:
        """Add `other`'s figures to these."""
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    @classmethod
    def total(cls, tallies: Iterable[Tally]) -> Tally:
        """The sum of `tallies`."""
        total = cls()
        for tally in tallies:
            total.add(tally)
        return total

    @property
    def abandoned_long(self) -> int:
        """Abandoned at or after the short-abandon threshold."""
        return self.abandoned - self.abandoned_short

    @property
    def connection_rate(self) -> float | None:
        """answered / received."""
        return ratio(self.answered, self.received)

    @property
    def asa_s(self) -> float | None:
        """Mean wait of the answered calls."""
        return ratio(self.wait_s, self.answered)

    @property
    def service_level(self) -> float | None:
        """Answered in time / (answered + abandoned after the threshold)."""
        return ratio(self.answered_in_time, self.answered + self.abandoned_long)

    @property
    def aht_s(self) -> float | None:
        """Mean handling time of the completed calls."""
        return ratio(self.handling_s, self.completed)


def _of_columns(cls: type[R], row: Mapping[Any, Any]) -> R:
    """A dataclass of figures from a row's columns of its fields' names (SQL sums of nothing
    are NULL). A column missing or misnamed is a KeyError, not a figure read from its neighbour.
    """
    values: dict[str, Any] = {
        field.name: (float if field.type == "float" else int)(row[field.name] or 0)
        for field in fields(cls)
    }
    return cls(**values)


def ratio(part: float, whole: float) -> float | None:
    """`part / whole`, or None when there is nothing to divide by."""
    return part / whole if whole else None


@dataclass(slots=True)
class _Helped:
    """One helper city's work for one host: answered calls, waits, handling, agents.

    Each field is a column of the helper query, labelled with the field's name.
    """

    helper_answered: int = 0
    helper_wait_s: float = 0.0
    helper_completed: int = 0
    helper_handling_s: float = 0.0
    helper_agents: int = 0
    helper_stale: int = 0

    @classmethod
    def of_row(cls, row: Mapping[Any, Any]) -> _Helped:
        """The helper's figures from a query row's columns of the fields' names."""
        return _of_columns(cls, row)


@dataclass(slots=True)
class _Figures:
    """Everything the queries return, keyed by city."""

    hours: dict[str, dict[int, Tally]]
    helped: dict[tuple[str, str], _Helped]
    kinds: dict[str, dict[str, _Kind]]
    seats_active: dict[str, int]
    agents_active: dict[str, int]
    agents_in_all: int
    wait_p90_s: dict[str | None, float]
    surges: dict[tuple[str, str], list[int]]
    unique_callers: dict[str | None, int]
    gaps_raised: dict[tuple[str, str], int]  # (host, the raising agent's city) -> gaps
    gaps_closed: dict[str, int]  # host -> gaps whose group a publish answered in the day


def _labelled(columns: Mapping[str, Any]) -> list[Label[Any]]:
    """Each column labelled with its name: rows are read back by these names, never by place."""
    return [column.label(name) for name, column in columns.items()]


def _hour_index(dialect: str, since_start: ColumnElement[float]) -> ColumnElement[int]:
    """Which hour of the day (0-based) a number of seconds since its start falls in."""
    if dialect == "postgresql":
        return cast(func.floor(since_start / 3600.0), Integer)
    return cast(since_start / 3600.0, Integer)  # SQLite truncates; the seconds are never negative


_Kind = tuple[int, float]
"""Completed calls of a kind (consultation, other, unclassified) and their handling seconds."""


def _add_kind(kinds: dict[str, _Kind], kind: str, calls: int, handling_s: float) -> None:
    before = kinds.get(kind, (0, 0.0))
    kinds[kind] = (before[0] + calls, before[1] + handling_s)


class _Query:
    """The day's window, the city filter and the expressions the queries share."""

    def __init__(self, *, session: AsyncSession, day: Day, city: str | None, settings: Settings):
        self.session = session
        dialect = session.get_bind().dialect.name
        self.received_s = epoch_seconds(dialect, Call.received_at)
        self.wait = epoch_seconds(dialect, Call.connected_at) - self.received_s
        self.abandoned_wait = epoch_seconds(dialect, Call.ended_at) - self.received_s
        self.callback_wait = seconds_between(dialect, Call.connected_at, Call.callback_requested_at)
        # The wrap-up after the ticket is handling too (ends with the ticket without one).
        handled_until = func.coalesce(Call.wrapped_up_at, Call.ended_at)
        self.handling = seconds_between(dialect, handled_until, Call.connected_at)
        self.hour = _hour_index(dialect, self.received_s - day.start.timestamp())
        self.in_day = and_(Call.received_at >= day.start, Call.received_at < day.end)
        self.city = city
        self.day = day
        self.settings = settings

    def own(self, column: Column) -> ColumnElement[bool]:
        """The day's calls, of the report's city when it has one."""
        return self.in_day if self.city is None else and_(self.in_day, column == self.city)

    def tally_columns(self) -> dict[str, ColumnElement[Any]]:
        """The hourly query's figures, keyed by the `Tally` field each one fills."""
        answered = Call.connected_at.is_not(None)
        abandoned = Call.status == CallStatus.ABANDONED.value
        completed = Call.status == CallStatus.COMPLETED.value
        short_abandon = self.settings.report_short_abandon_s

        def count(condition: ColumnElement[bool]) -> ColumnElement[int]:
            return func.sum(case((condition, 1), else_=0))

        def total(condition: ColumnElement[bool], value: ColumnElement[float]) -> Any:
            return func.sum(case((condition, value), else_=None))

        in_time = self.wait <= self.settings.service_level_s + _TOLERANCE_S
        reached = and_(answered, Call.callback_requested_at.is_not(None))
        return {
            "received": func.count(),
            "answered": func.count(Call.connected_at),
            "abandoned": count(abandoned),
            "abandoned_short": count(
                and_(abandoned, self.abandoned_wait < short_abandon - _TOLERANCE_S)
            ),
            "answered_in_time": count(and_(answered, in_time)),
            "wait_s": total(answered, self.wait),
            "abandoned_wait_s": total(abandoned, self.abandoned_wait),
            "completed": count(completed),
            "handling_s": total(completed, self.handling),
            "answered_by_helpers": count(and_(answered, Agent.city_code != Call.city_code)),
            "answered_online": count(
                and_(completed, Call.disposition == Disposition.ANSWERED.value)
            ),
            "transferred": count(
                and_(completed, Call.disposition == Disposition.TRANSFERRED.value)
            ),
            "feedback": func.count(Call.feedback_at),
            "satisfied": count(Call.satisfied.is_(True)),
            "callbacks": func.count(Call.callback_requested_at),
            "callbacks_reached": count(reached),
            "callbacks_unreached": count(Call.status == CallStatus.UNREACHED.value),
            "callback_wait_s": total(reached, self.callback_wait),
            "stale_tickets": count(stale.is_stale()),
        }

    def hours_statement(self) -> _Statement:
        """Per city (`code`) and local hour (`hour`, 0-based): the tally's columns."""
        return (
            select(
                Call.city_code.label("code"),
                self.hour.label("hour"),
                *_labelled(self.tally_columns()),
            )
            .select_from(Call)
            .outerjoin(Agent, Agent.id == Call.agent_id)
            .where(self.own(Call.city_code))
            .group_by(Call.city_code, self.hour)
        )

    async def hours(self) -> dict[str, dict[int, Tally]]:
        hours: dict[str, dict[int, Tally]] = defaultdict(dict)
        for row in (await self.session.execute(self.hours_statement())).mappings():
            hours[row["code"]][int(row["hour"])] = Tally.of_row(row)
        return hours

    def helped_statement(self) -> _Statement:
        """Per host and helper city: the `_Helped` columns (calls answered by helper agents)."""
        completed = Call.status == CallStatus.COMPLETED.value
        where = [self.in_day, Call.connected_at.is_not(None), Agent.city_code != Call.city_code]
        if self.city is not None:
            where.append(or_(Call.city_code == self.city, Agent.city_code == self.city))
        columns: dict[str, ColumnElement[Any]] = {
            "helper_answered": func.count(),
            "helper_wait_s": func.sum(self.wait),
            "helper_completed": func.sum(case((completed, 1), else_=0)),
            "helper_handling_s": func.sum(case((completed, self.handling), else_=None)),
            "helper_agents": func.count(func.distinct(Call.agent_id)),
            "helper_stale": func.sum(case((stale.is_stale(), 1), else_=0)),
        }
        return (
            select(
                Call.city_code.label("host"), Agent.city_code.label("helper"), *_labelled(columns)
            )
            .select_from(Call)
            .join(Agent, Agent.id == Call.agent_id)
            .where(*where)
            .group_by(Call.city_code, Agent.city_code)
        )

    async def helped(self) -> dict[tuple[str, str], _Helped]:
        rows = await self.session.execute(self.helped_statement())
        return {(row["host"], row["helper"]): _Helped.of_row(row) for row in rows.mappings()}

    def kinds_statement(self) -> _Statement:
        """Per city and category code: the completed calls and their handling."""
        columns: dict[str, Any] = {
            "code": Call.city_code,
            "category": Call.category_code,
            "kind_completed": func.count(),
            "kind_handling_s": func.sum(self.handling),
        }
        return (
            select(*_labelled(columns))
            .where(self.own(Call.city_code), Call.status == CallStatus.COMPLETED.value)
            .group_by(Call.city_code, Call.category_code)
        )

    async def kinds(self, classification: Classification) -> dict[str, dict[str, _Kind]]:
        kinds: dict[str, dict[str, _Kind]] = defaultdict(dict)
        for row in (await self.session.execute(self.kinds_statement())).mappings():
            code = row["category"]
            category = classification.categories.get(code) if code else None
            kind = category.kind.value if category else "unclassified"
            calls, handling = int(row["kind_completed"]), float(row["kind_handling_s"] or 0)
            _add_kind(kinds[row["code"]], kind, calls, handling)
        return kinds

    def agents_statements(self) -> tuple[_Statement, _Statement, _Statement]:
        """Distinct agents answering: per call city, per agent city, and in all."""
        answered = and_(self.in_day, Call.connected_at.is_not(None))
        distinct = func.count(func.distinct(Call.agent_id))
        serving = (
            select(Call.city_code.label("code"), distinct.label("seats_active"))
            .where(answered, self.own(Call.city_code))
            .group_by(Call.city_code)
        )
        active = select(Agent.city_code.label("code"), distinct.label("agents_active")).join(
            Agent, Agent.id == Call.agent_id
        )
        if self.city is not None:
            active = active.where(Agent.city_code == self.city)
        active = active.where(answered).group_by(Agent.city_code)
        in_all = select(distinct.label("agents_in_all")).where(answered)
        return serving, active, in_all

    async def agents(self) -> tuple[dict[str, int], dict[str, int], int]:
        serving, active, in_all = self.agents_statements()
        by_call_city = (await self.session.execute(serving)).mappings()
        by_agent_city = (await self.session.execute(active)).mappings()
        everyone = (await self.session.execute(in_all)).mappings().one()
        return (
            {row["code"]: int(row["seats_active"]) for row in by_call_city},
            {row["code"]: int(row["agents_active"]) for row in by_agent_city},
            int(everyone["agents_in_all"] or 0),
        )

    def wait_p90_statement(self, *, by_city: bool) -> _Statement:
        """Nearest rank: the wait at rank ceil(0.9 n) of the answered calls, per city or in all."""
        answered = and_(self.own(Call.city_code), Call.connected_at.is_not(None))
        partition = Call.city_code if by_city else None
        ranked = (
            select(
                Call.city_code.label("code"),
                self.wait.label("wait"),
                func.row_number().over(partition_by=partition, order_by=self.wait).label("rank"),
                func.count().over(partition_by=partition).label("n"),
            )
            .where(answered)
            .subquery()
        )
        return select(ranked.c.code, ranked.c.wait.label("wait_p90_s")).where(
            ranked.c.rank == (ranked.c.n * 9 + 9) // 10
        )

    async def wait_p90(self) -> dict[str | None, float]:
        """The 90th-percentile wait per city, and the province's under None."""
        p90: dict[str | None, float] = {}
        for by_city in (True, False):
            rows = await self.session.execute(self.wait_p90_statement(by_city=by_city))
            for row in rows.mappings():
                p90[row["code"] if by_city else None] = float(row["wait_p90_s"])
        return p90

    def callers_statement(self, *, by_city: bool) -> _Statement:
        """Distinct callers by the day's caller key, per city (`code`) or in all: a call with no
        key (received before keys were recorded) counts as a caller of its own."""
        unkeyed = func.sum(case((Call.caller_key.is_(None), 1), else_=0))
        unique = func.count(func.distinct(Call.caller_key)) + func.coalesce(unkeyed, 0)
        if not by_city:
            return select(unique.label("unique_callers")).where(self.own(Call.city_code))
        return (
            select(Call.city_code.label("code"), unique.label("unique_callers"))
            .where(self.own(Call.city_code))
            .group_by(Call.city_code)
        )

    async def unique_callers(self) -> dict[str | None, int]:
        """Distinct callers per city, and the province's under None (one number, one caller)."""
        callers: dict[str | None, int] = {}
        for by_city in (True, False):
            rows = await self.session.execute(self.callers_statement(by_city=by_city))
            for row in rows.mappings():
                callers[row["code"] if by_city else None] = int(row["unique_callers"] or 0)
        return callers

    def surges_statement(self) -> _Statement:
        """The surges active in the day: host, activated helper city and surge, by surge."""
        return (
            select(
                Surge.host_city.label("host"),
                SurgeWaveCity.city_code.label("helper"),
                Surge.id.label("surge_id"),
            )
            .join(SurgeWave, SurgeWave.surge_id == Surge.id)
            .join(SurgeWaveCity, SurgeWaveCity.wave_id == SurgeWave.id)
            .where(
                Surge.created_at < self.day.end,
                or_(Surge.ended_at.is_(None), Surge.ended_at >= self.day.start),
                SurgeWave.activated_at.is_not(None),
                SurgeWave.activated_at < self.day.end,
            )
            .order_by(Surge.id)
        )

    async def surges(self) -> dict[tuple[str, str], list[int]]:
        surges: dict[tuple[str, str], list[int]] = defaultdict(list)
        for row in (await self.session.execute(self.surges_statement())).mappings():
            host, helper, surge_id = row["host"], row["helper"], row["surge_id"]
            wanted = self.city is None or self.city in (host, helper)
            if wanted and surge_id not in surges[(host, helper)]:
                surges[(host, helper)].append(surge_id)
        return surges

    def gaps_statements(self) -> tuple[_Statement, _Statement]:
        """Knowledge gaps raised in the day per host and raising agent's city; gaps of each
        host whose group a publish answered in the day."""
        start, end = self.day.start, self.day.end
        raised = (
            select(
                ScriptGap.city_code.label("host"),
                ScriptGap.agent_city.label("helper"),
                func.count().label("gaps_raised"),
            )
            .where(ScriptGap.raised_at >= start, ScriptGap.raised_at < end)
            .group_by(ScriptGap.city_code, ScriptGap.agent_city)
        )
        closed = (
            select(ScriptGap.city_code.label("host"), func.count().label("gaps_closed"))
            .join(ScriptGapGroup, ScriptGapGroup.id == ScriptGap.group_id)
            .where(ScriptGapGroup.answered_at >= start, ScriptGapGroup.answered_at < end)
            .group_by(ScriptGap.city_code)
        )
        if self.city is not None:
            raised = raised.where(
                or_(ScriptGap.city_code == self.city, ScriptGap.agent_city == self.city)
            )
            closed = closed.where(ScriptGap.city_code == self.city)
        return raised, closed

    async def gaps(self) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
        raised, closed = self.gaps_statements()
        by_pair = (await self.session.execute(raised)).mappings()
        by_host = (await self.session.execute(closed)).mappings()
        return (
            {(row["host"], row["helper"]): int(row["gaps_raised"]) for row in by_pair},
            {row["host"]: int(row["gaps_closed"]) for row in by_host},
        )


async def _figures(
    *,
    session: AsyncSession,
    day: Day,
    city: str | None,
    settings: Settings,
    classification: Classification,
) -> _Figures:
    """Run the queries side by side, each on a connection of its own from the session's engine.

    On Postgres this roughly halves the report's time on two cores. The queries read a day
    that is over (or today's so far), so separate snapshots agree on everything that matters.
    """
    bind = session.bind
    if not isinstance(bind, AsyncEngine):
        raise TypeError("the report needs a session bound to an engine")

    async def run(work: Callable[[_Query], Awaitable[T]]) -> T:
        async with AsyncSession(bind) as own:
            return await work(_Query(session=own, day=day, city=city, settings=settings))

    try:  # a task group (gather's types stop at six): the first failure is the report's
        async with asyncio.TaskGroup() as group:
            agents_task = group.create_task(run(lambda q: q.agents()))
            hours = group.create_task(run(lambda q: q.hours()))
            helped = group.create_task(run(lambda q: q.helped()))
            kinds = group.create_task(run(lambda q: q.kinds(classification)))
            p90 = group.create_task(run(lambda q: q.wait_p90()))
            surges = group.create_task(run(lambda q: q.surges()))
            callers = group.create_task(run(lambda q: q.unique_callers()))
            gaps = group.create_task(run(lambda q: q.gaps()))
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    seats_active, agents_active, agents_in_all = agents_task.result()
    gaps_raised, gaps_closed = gaps.result()
    return _Figures(
        hours=hours.result(),
        helped=helped.result(),
        kinds=kinds.result(),
        seats_active=seats_active,
        agents_active=agents_active,
        agents_in_all=agents_in_all,
        wait_p90_s=p90.result(),
        surges=surges.result(),
        unique_callers=callers.result(),
        gaps_raised=gaps_raised,
        gaps_closed=gaps_closed,
    )


def _metadata(settings: Settings) -> ReportMetadata:
    return ReportMetadata(
        service_level_s=settings.service_level_s,
        short_abandon_s=settings.report_short_abandon_s,
        service_level_target=settings.service_level_target,
        satisfied_from_score=SATISFIED_FROM_SCORE,
        notes=list(definitions.NOTES),
        definitions={
            part: {
                key: Definition(
                    zh=metric.zh, en=metric.en, unit=metric.unit.value, definition=metric.definition
                )
                for key, metric in catalogue.items()
            }
            for part, catalogue in definitions.SECTIONS.items()
        },
    )


def _hourly(day: Day, hours: dict[int, Tally]) -> list[HourFigures]:
    rows = []
    for index, start in enumerate(day.hours):
        tally = hours.get(index, Tally())
        rows.append(
            HourFigures(
                hour=start,
                received=tally.received,
                answered=tally.answered,
                abandoned=tally.abandoned,
                answered_by_helpers=tally.answered_by_helpers,
                connection_rate=tally.connection_rate,
                asa_s=tally.asa_s,
                service_level=tally.service_level,
                aht_s=tally.aht_s,
            )
        )
    return rows


def _helpers(
    host: City, answered: int, figures: _Figures, names: dict[str, City]
) -> list[HelperContribution]:
    helpers = {helper for (h, helper) in figures.helped if h == host.code}
    helpers |= {helper for (h, helper) in figures.surges if h == host.code}
    helpers |= {helper for (h, helper) in figures.gaps_raised if h == host.code != helper}
    rows = []
    for code in helpers:
        helped = figures.helped.get((host.code, code), _Helped())
        rows.append(
            HelperContribution(
                host=host.code,
                host_name=host.name,
                code=code,
                name=names[code].name,
                answered=helped.helper_answered,
                share=ratio(helped.helper_answered, answered),
                asa_s=ratio(helped.helper_wait_s, helped.helper_answered),
                aht_s=ratio(helped.helper_handling_s, helped.helper_completed),
                handling_hours=helped.helper_handling_s / 3600,
                agents=helped.helper_agents,
                stale_tickets=helped.helper_stale,
                surges=figures.surges.get((host.code, code), []),
                gaps_raised=figures.gaps_raised.get((host.code, code), 0),
            )
        )
    return sorted(rows, key=lambda row: (-row.answered, row.code))


def _city_day(
    *,
    code: str | None,
    names: tuple[str, str],
    tally: Tally,
    kinds: dict[str, _Kind],
    p90: float | None,
    unique_callers: int,
    answered_for_others: int,
    agents_active: int,
    seats_active: int,
    seats: int,
    gaps: tuple[int, int, int],
) -> CityDay:
    """One city's (or the province's) row; `gaps`: raised on its calls, raised by its agents
    on other cities' calls, closed."""
    consultation = kinds.get(Kind.CONSULTATION.value, (0, 0.0))
    other = kinds.get(Kind.OTHER.value, (0, 0.0))
    return CityDay(
        code=code,
        name=names[0],
        name_en=names[1],
        received=tally.received,
        unique_callers=unique_callers,
        repeat_attempts=tally.received - unique_callers,
        answered=tally.answered,
        abandoned=tally.abandoned,
        abandoned_short=tally.abandoned_short,
        abandoned_long=tally.abandoned_long,
        open=tally.received - tally.answered - tally.abandoned - tally.callbacks_unreached,
        connection_rate=tally.connection_rate,
        abandonment_rate=ratio(tally.abandoned, tally.received),
        asa_s=tally.asa_s,
        wait_p90_s=p90,
        service_level=tally.service_level,
        aht_s=tally.aht_s,
        answered_by_helpers=tally.answered_by_helpers,
        helper_share=ratio(tally.answered_by_helpers, tally.answered),
        answered_for_others=answered_for_others,
        answered_online=tally.answered_online,
        transferred=tally.transferred,
        online_rate=ratio(tally.answered_online, tally.completed),
        consultation=consultation[0],
        consultation_aht_s=ratio(consultation[1], consultation[0]),
        other=other[0],
        other_aht_s=ratio(other[1], other[0]),
        unclassified=kinds.get("unclassified", (0, 0.0))[0],
        feedback=tally.feedback,
        satisfied=tally.satisfied,
        satisfaction_rate=ratio(tally.satisfied, tally.feedback),
        callbacks=tally.callbacks,
        callbacks_reached=tally.callbacks_reached,
        callbacks_unreached=tally.callbacks_unreached,
        callback_wait_s=ratio(tally.callback_wait_s, tally.callbacks_reached),
        stale_tickets=tally.stale_tickets,
        agents_active=agents_active,
        seats_active=seats_active,
        seats=seats,
        gaps_raised=gaps[0],
        gaps_raised_for_others=gaps[1],
        gaps_closed=gaps[2],
        helpers=[],
        hourly=[],
        staffing=None,
    )


async def daily(
    *,
    session: AsyncSession,
    day: date,
    city: str | None,
    settings: Settings,
    classification: Classification,
) -> DailyReport:
    """The daily report for `day` (local to the report time zone): one city's, or the province's."""
    when = Day.of(day, settings.report_timezone)
    listed = await session.execute(select(City).order_by(City.code))
    cities = {info.code: info for info in listed.scalars()}
    if city is not None and city not in cities:
        raise UnknownCity(f"no city with code {city!r}")
    figures = await _figures(
        session=session, day=when, city=city, settings=settings, classification=classification
    )
    tomorrow = when.next()
    rows = []
    for code in [city] if city is not None else list(cities):
        info = cities[code]
        tally = Tally.total(figures.hours.get(code, {}).values())
        row = _city_day(
            code=code,
            names=(info.name, info.name_en),
            tally=tally,
            kinds=figures.kinds.get(code, {}),
            p90=figures.wait_p90_s.get(code),
            unique_callers=figures.unique_callers.get(code, 0),
            answered_for_others=sum(
                helped.helper_answered
                for (_, helper), helped in figures.helped.items()
                if helper == code
            ),
            agents_active=figures.agents_active.get(code, 0),
            seats_active=figures.seats_active.get(code, 0),
            seats=info.seats,
            gaps=(
                sum(n for (host, _), n in figures.gaps_raised.items() if host == code),
                sum(
                    n for (host, helper), n in figures.gaps_raised.items() if helper == code != host
                ),
                figures.gaps_closed.get(code, 0),
            ),
        )
        row.helpers = _helpers(info, tally.answered, figures, cities)
        row.hourly = _hourly(when, figures.hours.get(code, {}))
        row.staffing = staffing.advise(
            for_date=tomorrow.day,
            hours=tomorrow.hours,
            forecast=[hour.received for hour in row.hourly],
            aht_s=tally.aht_s or settings.default_aht_s,
            patience_s=staffing.patience_estimate(
                abandoned=tally.abandoned, total_wait_s=tally.wait_s + tally.abandoned_wait_s
            ),
            own_agents=info.seats,
            target=settings.service_level_target,
            within_s=settings.service_level_s,
        )
        rows.append(row)
    province = None
    if city is None:
        hours: dict[int, Tally] = defaultdict(Tally)
        for by_hour in figures.hours.values():
            for index, tally in by_hour.items():
                hours[index].add(tally)
        kinds: dict[str, _Kind] = {}
        for by_kind in figures.kinds.values():
            for kind, (calls, handling) in by_kind.items():
                _add_kind(kinds, kind, calls, handling)
        province = _city_day(
            code=None,
            names=PROVINCE_NAME,
            tally=Tally.total(hours.values()),
            kinds=kinds,
            p90=figures.wait_p90_s.get(None),
            unique_callers=figures.unique_callers.get(None, 0),
            answered_for_others=sum(helped.helper_answered for helped in figures.helped.values()),
            agents_active=figures.agents_in_all,
            seats_active=figures.agents_in_all,
            seats=sum(info.seats for info in cities.values()),
            gaps=(
                sum(figures.gaps_raised.values()),
                sum(n for (host, helper), n in figures.gaps_raised.items() if helper != host),
                sum(figures.gaps_closed.values()),
            ),
        )
        province.helpers = [helper for row in rows for helper in row.helpers]
        province.hourly = _hourly(when, hours)
    return DailyReport(
        date=day,
        scope=city or "province",
        timezone=settings.report_timezone,
        start=when.start,
        end=when.end,
        generated_at=utcnow().astimezone(when.zone),
        cities=rows,
        province=province,
        metadata=_metadata(settings),
    )
