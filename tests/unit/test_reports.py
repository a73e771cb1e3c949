"""The report's pure parts: days and hours, the tally's rates, staffing advice, the catalogue."""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from surge import erlang
from surge.cities.models import City
from surge.reports import definitions, staffing
from surge.reports.ledger import _LedgerQuery
from surge.reports.schemas import (
    CityDay,
    HelperContribution,
    HourFigures,
    LedgerCity,
    LedgerPair,
    StaffingHour,
)
from surge.reports.service import Day, Tally, _Helped, _Query, _Statement, ratio
from surge.settings import Settings

DOCS = Path(__file__).parents[2] / "docs" / "REPORT.md"


def test_a_shanghai_day_has_24_hours_from_local_midnight() -> None:
    day = Day.of(date(2021, 7, 25), "Asia/Shanghai")

    assert day.start.isoformat() == "2021-07-25T00:00:00+08:00"
    assert day.end.isoformat() == "2021-07-26T00:00:00+08:00"
    assert len(day.hours) == 24
    assert day.hours[23].isoformat() == "2021-07-25T23:00:00+08:00"
    assert day.next().day == date(2021, 7, 26)


def test_days_where_clocks_change_have_23_or_25_hours() -> None:
    spring = Day.of(date(2021, 3, 28), "Europe/Berlin")
    autumn = Day.of(date(2021, 10, 31), "Europe/Berlin")

    assert len(spring.hours) == 23
    assert [h.hour for h in spring.hours[:4]] == [0, 1, 3, 4]
    assert len(autumn.hours) == 25
    assert [h.hour for h in autumn.hours[:5]] == [0, 1, 2, 2, 3]


def test_a_tally_adds_up_and_divides_only_by_something() -> None:
    morning = Tally(received=4, answered=3, abandoned=1, abandoned_short=1, answered_in_time=2)
    morning.wait_s, morning.completed, morning.handling_s = 30.0, 2, 500.0
    evening = Tally(received=2, answered=1, abandoned=1, answered_in_time=0, wait_s=50.0)

    total = Tally.total([morning, evening])

    assert (total.received, total.answered, total.abandoned) == (6, 4, 2)
    assert total.abandoned_long == 1
    assert total.connection_rate == pytest.approx(4 / 6)
    assert total.asa_s == pytest.approx(80 / 4)
    assert total.service_level == pytest.approx(2 / (4 + 1))
    assert total.aht_s == pytest.approx(250)
    empty = Tally()
    assert (empty.connection_rate, empty.asa_s, empty.service_level, empty.aht_s) == (None,) * 4
    assert ratio(0, 0) is None
    assert ratio(0, 5) == 0.0


def test_a_tally_reads_a_query_row_by_column_name() -> None:
    figures = [3, 2, 1, 0, 1, 12.5, None, 1, None, 0, 1, 0, 0, 0, 1, 1, 0, None, 2]
    names = [field.name for field in fields(Tally)]
    row = {"code": "320100", "hour": 9} | dict(reversed(list(zip(names, figures, strict=True))))

    tally = Tally.of_row(row)

    assert (tally.received, tally.wait_s, tally.abandoned_wait_s, tally.handling_s) == (
        3,
        12.5,
        0.0,
        0.0,
    )
    assert isinstance(tally.completed, int)
    assert (tally.callbacks, tally.callbacks_reached, tally.callback_wait_s) == (1, 1, 0.0)
    assert tally.stale_tickets == 2
    del row["satisfied"]
    with pytest.raises(KeyError, match="satisfied"):
        Tally.of_row(row)


def test_patience_is_the_total_wait_over_the_abandonments() -> None:
    assert staffing.patience_estimate(abandoned=4, total_wait_s=1000) == 250
    assert staffing.patience_estimate(abandoned=0, total_wait_s=1000) is None
    assert staffing.patience_estimate(abandoned=3, total_wait_s=0) is None


def test_staffing_advice_per_hour_against_own_agents() -> None:
    tomorrow = Day.of(date(2021, 7, 26), "Asia/Shanghai")
    forecast = [0] * 9 + [360, 3600] + [0] * 13

    advice = staffing.advise(
        for_date=tomorrow.day,
        hours=tomorrow.hours,
        forecast=forecast,
        aht_s=240,
        patience_s=None,
        own_agents=30,
        target=0.8,
        within_s=20,
    )

    # 360 calls an hour of 4 minutes is 24 Erlangs; 3,600 is 240.
    light = erlang.agents_for_service_level(erlang.Load(0.1, 240), target=0.8, within_s=20)
    heavy = erlang.agents_for_service_level(erlang.Load(1.0, 240), target=0.8, within_s=20)
    assert 24 < light < 40
    assert 240 < heavy < 270
    assert advice.method == "erlang_c"
    assert [h.agents_needed for h in advice.hours[8:12]] == [0, light, heavy, 0]
    assert [h.helper_seats for h in advice.hours[8:12]] == [0, max(0, light - 30), heavy - 30, 0]
    assert advice.peak_agents_needed == heavy
    assert advice.peak_helper_seats == heavy - 30
    assert advice.agent_hours_needed == light + heavy
    assert advice.hours[9].hour == datetime(2021, 7, 26, 9, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_staffing_with_measured_patience_uses_erlang_a() -> None:
    tomorrow = Day.of(date(2021, 7, 26), "Asia/Shanghai")
    forecast = [3600] * 24

    patient = staffing.advise(
        for_date=tomorrow.day, hours=tomorrow.hours, forecast=forecast, aht_s=240,
        patience_s=None, own_agents=0, target=0.8, within_s=20,
    )  # fmt: skip
    impatient = staffing.advise(
        for_date=tomorrow.day, hours=tomorrow.hours, forecast=forecast, aht_s=240,
        patience_s=60, own_agents=0, target=0.8, within_s=20,
    )  # fmt: skip

    assert impatient.method == "erlang_a"
    assert impatient.patience_s == 60
    load = erlang.Load(1.0, 240)
    expected = erlang.agents_for_service_level(load, target=0.8, within_s=20, patience_s=60)
    assert impatient.peak_agents_needed == expected
    assert patient.peak_agents_needed == erlang.agents_for_service_level(
        load, target=0.8, within_s=20
    )


def test_every_figure_of_the_report_is_defined() -> None:
    summary = set(definitions.CITY)
    assert summary <= set(CityDay.model_fields)
    undefined = set(CityDay.model_fields) - summary - {"name_en", "helpers", "hourly", "staffing"}
    assert undefined == set()
    assert set(definitions.HOURLY) - {"code"} == set(HourFigures.model_fields)
    assert set(definitions.HELPER) == set(HelperContribution.model_fields)
    assert set(definitions.STAFFING) - {"code"} == set(StaffingHour.model_fields)


@pytest.fixture
def statements() -> dict[str, _Statement]:
    """Every statement of the report, built (not run) for SQLite."""
    engine = create_async_engine("sqlite+aiosqlite://")
    query = _Query(
        session=AsyncSession(engine),
        day=Day.of(date(2021, 7, 25), "Asia/Shanghai"),
        city=None,
        settings=Settings(_env_file=None),
    )
    serving, active, in_all = query.agents_statements()
    gaps_raised, gaps_closed = query.gaps_statements()
    return {
        "hours": query.hours_statement(),
        "helped": query.helped_statement(),
        "kinds": query.kinds_statement(),
        "seats_active": serving,
        "agents_active": active,
        "agents_in_all": in_all,
        "wait_p90_s": query.wait_p90_statement(by_city=True),
        "wait_p90_s_in_all": query.wait_p90_statement(by_city=False),
        "surges": query.surges_statement(),
        "unique_callers": query.callers_statement(by_city=True),
        "unique_callers_in_all": query.callers_statement(by_city=False),
        "gaps_raised": gaps_raised,
        "gaps_closed": gaps_closed,
    }


def _labels(statement: _Statement) -> list[str]:
    return list(statement.selected_columns.keys())


def _names(figures: Any) -> set[str]:
    return {field.name for field in fields(figures)}


def test_every_column_of_the_report_is_labelled_once(
    statements: dict[str, _Statement],
) -> None:
    for name, statement in statements.items():
        labels = _labels(statement)
        assert len(labels) == len(set(labels)), f"{name}: a label used twice in {labels}"
        assert all(label and not label.startswith("anon") for label in labels), name


def test_the_tallies_are_their_queries_columns_by_name(
    statements: dict[str, _Statement],
) -> None:
    assert _labels(statements["hours"]) == ["code", "hour", *(f.name for f in fields(Tally))]
    assert set(_labels(statements["helped"])) == {"host", "helper"} | _names(_Helped)


def test_every_figure_is_computed_from_columns_the_queries_select(
    statements: dict[str, _Statement],
) -> None:
    selected = {label for statement in statements.values() for label in _labels(statement)}
    city = set(City.__table__.columns.keys())  # the city's own name and staffing
    used: set[str] = set()
    for part, catalogue in definitions.SECTIONS.items():
        for metric in catalogue.values():
            assert metric.columns, f"{part}.{metric.key} names no column"
            missing = set(metric.columns) - selected - city
            assert missing == set(), f"{part}.{metric.key}: no column labelled {missing}"
            used |= set(metric.columns)
    assert selected - used == set(), "a column no figure is computed from"


def test_every_figure_of_the_ledger_is_defined_and_selected() -> None:
    assert set(definitions.LEDGER_PAIR) == set(LedgerPair.model_fields)
    assert set(definitions.LEDGER_CITY) == set(LedgerCity.model_fields)
    day = Day.of(date(2021, 7, 25), "Asia/Shanghai")
    query = _LedgerQuery(dialect="sqlite", first=day, last=day, settings=Settings(_env_file=None))
    statements = [query.seat_statement(), query.answered_statement(), query.lending_statement()]
    selected = {label for statement in statements for label in _labels(statement)}
    used = {column for part in definitions.LEDGER_SECTIONS.values() for m in part.values()
            for column in m.columns}  # fmt: skip
    assert used - selected - set(City.__table__.columns.keys()) == set()
    assert selected - used == set(), "a column no figure is computed from"


def test_the_docs_define_every_figure_as_the_catalogue_does() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for part, catalogue in (definitions.SECTIONS | definitions.LEDGER_SECTIONS).items():
        for metric in catalogue.values():
            row = f"| `{metric.key}` | {metric.zh} | {metric.en} | {metric.unit.value} | "
            assert row + metric.definition + " |" in text, f"{part}.{metric.key} in docs/REPORT.md"
    for note in definitions.NOTES:
        assert note in text


def test_the_docs_name_the_columns_of_every_figure() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for part, catalogue in (definitions.SECTIONS | definitions.LEDGER_SECTIONS).items():
        for metric in catalogue.values():
            columns = ", ".join(f"`{column}`" for column in metric.columns)
            row = f"| `{metric.key}` | {metric.zh} | {metric.en} | {metric.unit.value} | "
            assert f"{row}{metric.definition} | {columns} |" in text, f"{part}.{metric.key}"
