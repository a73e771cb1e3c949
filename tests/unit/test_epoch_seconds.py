"""Seconds since 1970 computed in SQLite agree with Python's to the millisecond, at every edge."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, MetaData, Table, create_engine, insert, select

from surge.db import UTCDateTime, epoch_seconds

TABLE = Table("moment", MetaData(), Column("at", UTCDateTime()))
EDGES = [
    "2026-12-02T04:08:12.999700",  # rounds up into the next second
    "2026-12-02T04:08:12.999400",
    "2026-12-02T04:08:59.999600",  # ... and into the next minute
    "2026-12-31T23:59:59.999900",  # ... and into the next year
    "2026-12-02T04:00:00.000000",  # on the hour
    "1970-01-02T00:00:00.000400",
]


def in_sqlite(moments: list[datetime]) -> list[float]:
    engine = create_engine("sqlite://")
    with engine.begin() as connection:
        TABLE.create(connection)
        connection.execute(insert(TABLE), [{"at": moment} for moment in moments])
        rows = connection.execute(select(epoch_seconds("sqlite", TABLE.c.at)))
        return [row[0] for row in rows]


def expected(moment: datetime) -> float:
    """What SQLite holds: the time rounded to the millisecond, as seconds since 1970."""
    return round(moment.timestamp() * 1000) / 1000


def test_times_next_to_a_second_are_not_a_second_late() -> None:
    moments = [datetime.fromisoformat(text).replace(tzinfo=UTC) for text in EDGES]
    for moment, seconds in zip(moments, in_sqlite(moments), strict=True):
        assert abs(seconds - expected(moment)) < 1e-6, moment


@given(
    st.lists(
        st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1)).map(
            lambda naive: naive.replace(tzinfo=UTC)
        ),
        min_size=1,
        max_size=20,
    )
)
def test_every_time_is_exact_to_the_millisecond(moments: list[datetime]) -> None:
    for moment, seconds in zip(moments, in_sqlite(moments), strict=True):
        # Python's and SQLite's roundings of an exact half millisecond may differ.
        assert abs(seconds - expected(moment)) <= 0.001 + 1e-6, moment
