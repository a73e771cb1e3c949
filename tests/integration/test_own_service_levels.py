"""The own service levels the lender protection reads, in SQL on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from surge.calls.models import Call
from surge.db import create_engine, create_sessionmaker
from surge.surges import service as surges_service
from tests.conftest import Backend
from tests.helpers import seed

WUXI, SUZHOU, CHANGZHOU = "320200", "320500", "320400"
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def call(
    city: str,
    ago_s: float,
    *,
    waited: float | None = None,
    abandoned_after: float | None = None,
) -> Call:
    """A call received `ago_s` before NOW: answered after `waited`, abandoned, or still waiting."""
    received = NOW - timedelta(seconds=ago_s)
    row = Call(city_code=city, caller="13800000000", channel="phone", status="queued",
               received_at=received)  # fmt: skip
    if waited is not None:
        row.status, row.connected_at = "connected", received + timedelta(seconds=waited)
    if abandoned_after is not None:
        row.status, row.ended_at = "abandoned", received + timedelta(seconds=abandoned_after)
    return row


async def test_own_service_level_over_the_window(backend: Backend) -> None:
    settings = backend.settings()
    await seed(settings)
    rows = [
        *(call(WUXI, 100 + i, waited=10) for i in range(8)),  # in time
        call(WUXI, 200, waited=20),  # in time, just
        call(WUXI, 300, waited=21),  # late
        call(WUXI, 310, waited=80),  # late
        call(WUXI, 320, abandoned_after=60),  # a long abandon counts as late
        call(WUXI, 330, abandoned_after=3),  # a short one does not count
        call(WUXI, 340),  # still waiting: not judged yet
        *(call(WUXI, 1000 + i, waited=90) for i in range(5)),  # before the window
        call(SUZHOU, 50),  # only a waiting call: nothing to judge by
        call(CHANGZHOU, 60, waited=45),  # one late call of a quiet window: 9 of 10
    ]
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            async with session.begin():
                session.add_all(rows)
            levels = await surges_service.own_service_levels(
                session=session,
                since=NOW - timedelta(seconds=900),
                within_s=20,
                short_abandon_s=5,
            )
    finally:
        await engine.dispose()
    assert levels[WUXI] == pytest.approx(9 / 12)
    assert levels[SUZHOU] is None
    assert levels[CHANGZHOU] == pytest.approx(0.9)
