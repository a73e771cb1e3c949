"""The reciprocity ledger (互助台账): what each city lent each host over a range of days.

Three grouped queries over the calls *received* in the range (local days, inclusive), none
returning a row per call, each column labelled and read back by its label:

1. `seat_statement`, per lender and host: `seat_s`, the seconds the lender's agents held the
   host's calls. A call's history records every offer, connection, transfer and end with the
   agent and its time (`call_event`): each `offered`, `dialing` or `connected` event of an agent
   of another city lasts until the call's next event (`lead()` over the call's events; now when
   there is none yet), and a completed call adds its wrap-up (`ended_at` to `wrapped_up_at`).
   That is exactly the time the lender's seat quota counts the agent as lent (`lent_to` in the
   hot state runs from the offer to the release), so no separate record of serving is needed.
2. `answered_statement`, per lender and host: the host's calls answered by the lender's agents.
3. `lending_statement`, per lender and host: the lender's own calls received while it was a helper
   of an activated wave of the host's surge (from the wave's activation to the surge's end),
   judged by the report's service level (`surges.service.service_level_conditions`, the mechanism
   the lender protection reads): `lending_in_time` and `lending_counted`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from surge.calls.lifecycle import CallStatus
from surge.calls.models import Call, CallEvent
from surge.cities.models import City
from surge.db import epoch_seconds, seconds_between, utcnow
from surge.reports import definitions
from surge.reports.schemas import (
    LEDGER_MAX_DAYS,
    Definition,
    Ledger,
    LedgerCity,
    LedgerMetadata,
    LedgerPair,
)
from surge.reports.service import Day, _Statement, ratio
from surge.seats.models import Agent
from surge.settings import Settings
from surge.surges import service as surges_service
from surge.surges.models import Surge, SurgeWave, SurgeWaveCity

_SERVING = (CallStatus.OFFERED.value, CallStatus.DIALING.value, CallStatus.CONNECTED.value)
"""An agent holding the call: from an event to one of these to the call's next event."""

Pair = tuple[str, str]
"""(lender, host)"""


@dataclass(slots=True)
class _Balance:
    """A city's sums over its pairs."""

    lent_h: float = 0.0
    received_h: float = 0.0
    answered_for_others: int = 0
    answered_by_others: int = 0


class _LedgerQuery:
    """The range's window and the statements of the ledger."""

    def __init__(self, *, dialect: str, first: Day, last: Day, settings: Settings):
        self.dialect = dialect
        self.start, self.end = first.start, last.end
        self.in_range = and_(Call.received_at >= self.start, Call.received_at < self.end)
        self.settings = settings
        self.now_s = utcnow().timestamp()

    def seat_statement(self) -> _Statement:
        """Per lender and host: `seat_s`, the seconds the lender's agents held the host's calls."""
        at_s = epoch_seconds(self.dialect, CallEvent.at)
        order = (CallEvent.at, CallEvent.id)
        # Only the histories of calls another city's agent held: the window sorts a fraction
        # of the events (on the 1,008,000-call day about half the time of sorting them all).
        lent = (
            select(CallEvent.call_id)
            .join(Call, Call.id == CallEvent.call_id)
            .join(Agent, Agent.id == CallEvent.agent_id)
            .where(self.in_range, Agent.city_code != Call.city_code)
        )
        events = (
            select(
                CallEvent.call_id.label("call_id"),
                CallEvent.agent_id.label("agent_id"),
                CallEvent.to_status.label("to_status"),
                at_s.label("at_s"),
                func.lead(at_s)
                .over(partition_by=CallEvent.call_id, order_by=order)
                .label("next_s"),
            )
            .where(CallEvent.call_id.in_(lent))
            .subquery()
        )
        now = cast(literal(self.now_s), Float)
        held = (
            select(
                Agent.city_code.label("lender"),
                Call.city_code.label("host"),
                func.sum(func.coalesce(events.c.next_s, now) - events.c.at_s).label("seat_s"),
            )
            .select_from(events)
            .join(Call, Call.id == events.c.call_id)
            .join(Agent, Agent.id == events.c.agent_id)
            .where(events.c.to_status.in_(_SERVING), Agent.city_code != Call.city_code)
            .group_by(Agent.city_code, Call.city_code)
        )
        wrap_up = seconds_between(self.dialect, Call.wrapped_up_at, Call.ended_at)
        wrapped = (
            select(
                Agent.city_code.label("lender"),
                Call.city_code.label("host"),
                func.sum(wrap_up).label("seat_s"),
            )
            .join(Agent, Agent.id == Call.agent_id)
            .where(
                self.in_range,
                Call.status == CallStatus.COMPLETED.value,
                Call.wrapped_up_at.is_not(None),
                Agent.city_code != Call.city_code,
            )
            .group_by(Agent.city_code, Call.city_code)
        )
        both = held.union_all(wrapped).subquery()
        return select(both.c.lender, both.c.host, func.sum(both.c.seat_s).label("seat_s")).group_by(
            both.c.lender, both.c.host
        )

    def answered_statement(self) -> _Statement:
        """Per lender and host: the host's calls answered by the lender's agents."""
        return (
            select(
                Agent.city_code.label("lender"),
                Call.city_code.label("host"),
                func.count().label("answered"),
            )
            .join(Agent, Agent.id == Call.agent_id)
            .where(self.in_range, Call.connected_at.is_not(None), Agent.city_code != Call.city_code)
            .group_by(Agent.city_code, Call.city_code)
        )

    def lending_statement(self) -> _Statement:
        """Per lender and host: the lender's own calls judged while it helped the host's surge."""
        helping = (
            select(
                Surge.host_city.label("host"),
                SurgeWaveCity.city_code.label("lender"),
                func.min(SurgeWave.activated_at).label("since"),
                Surge.ended_at.label("until"),
            )
            .join(SurgeWave, SurgeWave.surge_id == Surge.id)
            .join(SurgeWaveCity, SurgeWaveCity.wave_id == SurgeWave.id)
            .where(SurgeWave.activated_at.is_not(None), SurgeWave.activated_at < self.end)
            .group_by(Surge.id, Surge.host_city, SurgeWaveCity.city_code, Surge.ended_at)
            .subquery()
        )
        in_time, counted = surges_service.service_level_conditions(
            self.dialect,
            within_s=self.settings.service_level_s,
            short_abandon_s=self.settings.report_short_abandon_s,
        )
        return (
            select(
                helping.c.lender,
                helping.c.host,
                func.sum(case((in_time, 1), else_=0)).label("lending_in_time"),
                func.sum(case((counted, 1), else_=0)).label("lending_counted"),
            )
            .select_from(helping)
            .join(
                Call,
                and_(
                    Call.city_code == helping.c.lender,
                    Call.received_at >= helping.c.since,
                    or_(helping.c.until.is_(None), Call.received_at < helping.c.until),
                ),
            )
            .where(self.in_range)
            .group_by(helping.c.lender, helping.c.host)
        )


def _metadata(settings: Settings) -> LedgerMetadata:
    return LedgerMetadata(
        service_level_s=settings.service_level_s,
        short_abandon_s=settings.report_short_abandon_s,
        max_days=LEDGER_MAX_DAYS,
        definitions={
            part: {
                key: Definition(
                    zh=metric.zh, en=metric.en, unit=metric.unit.value, definition=metric.definition
                )
                for key, metric in catalogue.items()
            }
            for part, catalogue in definitions.LEDGER_SECTIONS.items()
        },
    )


async def _by_pair(session: AsyncSession, statement: _Statement) -> dict[Pair, Any]:
    rows = (await session.execute(statement)).mappings()
    return {(row["lender"], row["host"]): row for row in rows}


async def ledger(
    *, session: AsyncSession, first: date, last: date, city: str | None, settings: Settings
) -> Ledger:
    """The ledger of the local days `first` to `last`: every pair, or those `city` is in."""
    first_day, last_day = (
        Day.of(first, settings.report_timezone),
        Day.of(last, settings.report_timezone),
    )
    query = _LedgerQuery(
        dialect=session.get_bind().dialect.name, first=first_day, last=last_day, settings=settings
    )
    names = {c.code: c.name for c in (await session.execute(select(City))).scalars()}
    seats = await _by_pair(session, query.seat_statement())
    answered = await _by_pair(session, query.answered_statement())
    lending = await _by_pair(session, query.lending_statement())

    def seat_hours(pair: Pair) -> float:
        row = seats.get(pair)
        return float(row["seat_s"] or 0) / 3600 if row else 0.0

    def calls(pair: Pair) -> int:
        row = answered.get(pair)
        return int(row["answered"]) if row else 0

    pairs = set(seats) | set(answered) | {p for p in lending if seat_hours(p) or calls(p)}
    if city is not None:
        pairs = {pair for pair in pairs if city in pair}
    rows = []
    for lender, host in sorted(pairs):
        judged = lending.get((lender, host))
        counted = int(judged["lending_counted"] or 0) if judged else 0
        in_time = int(judged["lending_in_time"] or 0) if judged else 0
        lent, back = seat_hours((lender, host)), seat_hours((host, lender))
        rows.append(
            LedgerPair(
                lender=lender,
                lender_name=names[lender],
                host=host,
                host_name=names[host],
                seat_hours_lent=lent,
                seat_hours_received=back,
                balance_hours=lent - back,
                calls_answered=calls((lender, host)),
                calls_answered_back=calls((host, lender)),
                lender_calls_while_lending=counted,
                lender_service_level_while_lending=ratio(in_time, counted),
            )
        )
    totals: dict[str, _Balance] = defaultdict(_Balance)
    for lender, host in set(seats) | set(answered):
        totals[lender].lent_h += seat_hours((lender, host))
        totals[host].received_h += seat_hours((lender, host))
        totals[lender].answered_for_others += calls((lender, host))
        totals[host].answered_by_others += calls((lender, host))
    places = sorted(totals) if city is None else [city] if city in totals else []
    cities = [
        LedgerCity(
            code=code,
            name=names[code],
            seat_hours_lent=totals[code].lent_h,
            seat_hours_received=totals[code].received_h,
            balance_hours=totals[code].lent_h - totals[code].received_h,
            calls_answered_for_others=totals[code].answered_for_others,
            calls_answered_by_others=totals[code].answered_by_others,
        )
        for code in places
    ]
    return Ledger(
        from_date=first,
        to_date=last,
        scope=city or "province",
        timezone=settings.report_timezone,
        start=first_day.start,
        end=last_day.end,
        generated_at=utcnow().astimezone(first_day.zone),
        pairs=rows,
        cities=cities,
        metadata=_metadata(settings),
    )
