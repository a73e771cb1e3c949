"""The live surges' answers: who serves which host, with which quotas, and what drains."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from surge.router.policy import SurgeView
from surge.surges.models import Surge, SurgeWave, SurgeWaveCity
from surge.surges.roster import ActiveSurges, Helper

NANJING, YANGZHOU, SUZHOU = "320100", "321000", "320500"
XUZHOU, WUXI, LYG, HUAIAN = "320300", "320200", "320700", "320800"
AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def surge(
    surge_id: int,
    host: str,
    waves: list[tuple[list[str], int, int, bool]],
    *,
    status: str = "active",
    severity: float = 1.0,
) -> Surge:
    """A surge row as loaded: each wave (cities, seats per city, reserve, activated)."""
    return Surge(
        id=surge_id,
        host_city=host,
        status=status,
        overflow_after_s=5.0,
        severity=severity,
        waves=[
            SurgeWave(
                number=number,
                seats_per_city=seats,
                reserve=reserve,
                activated_at=AT if active else None,
                cities=[SurgeWaveCity(city_code=code) for code in cities],
            )
            for number, (cities, seats, reserve, active) in enumerate(waves, start=1)
        ],
    )


@pytest.fixture
def live() -> ActiveSurges:
    """Nanjing active with two of its three waves; Yangzhou draining; an ended Suzhou surge."""
    return ActiveSurges.of(
        [
            surge(
                1,
                NANJING,
                [([XUZHOU, LYG], 3, 1, True), ([WUXI], 2, 0, True), ([HUAIAN], 4, 0, False)],
                severity=2.0,
            ),
            surge(2, YANGZHOU, [([WUXI, SUZHOU], 5, 0, True)], status="draining"),
            surge(3, SUZHOU, [([HUAIAN], 1, 0, True)], status="ended"),
        ]
    )


def test_a_host_has_its_live_surge(live: ActiveSurges) -> None:
    nanjing = live.of_host(NANJING)
    assert nanjing is not None
    assert (nanjing.surge_id, nanjing.draining, nanjing.severity) == (1, False, 2.0)
    yangzhou = live.of_host(YANGZHOU)
    assert yangzhou is not None
    assert yangzhou.draining
    assert live.of_host(SUZHOU) is None  # ended: no longer live
    assert live.of_host(XUZHOU) is None


def test_only_the_active_waves_helpers_count_with_their_seats(live: ActiveSurges) -> None:
    nanjing = live.of_host(NANJING)
    assert nanjing is not None
    assert nanjing.helpers == (
        Helper(XUZHOU, 1, 3, 1),
        Helper(LYG, 1, 3, 1),
        Helper(WUXI, 2, 2, 0),
    )
    assert live.helpers_of(NANJING) == (XUZHOU, LYG, WUXI)  # not Huai'an: wave 3 waits
    assert live.helpers_of(SUZHOU) == ()


@pytest.mark.parametrize(
    ("city", "host", "serves"),
    [
        (NANJING, NANJING, True),  # a city's own agents
        (XUZHOU, NANJING, True),
        (WUXI, NANJING, True),
        (HUAIAN, NANJING, False),  # its wave is not active yet
        (WUXI, YANGZHOU, True),  # draining: its helpers finish the calls in hand
        (HUAIAN, SUZHOU, False),  # that surge has ended
        (NANJING, XUZHOU, False),
    ],
)
def test_who_serves_a_host(live: ActiveSurges, city: str, host: str, serves: bool) -> None:
    assert live.serves(city, host) is serves
    assert (city in live.serving_cities(host)) is serves


def test_a_helper_joins_only_active_surges(live: ActiveSurges) -> None:
    assert [s.host for s in live.joined_by(WUXI)] == [NANJING]  # Yangzhou's is draining
    assert [s.host for s in live.joined_by(XUZHOU)] == [NANJING]
    assert live.joined_by(HUAIAN) == ()
    assert live.joined_by(NANJING) == ()


def test_the_draining_surges(live: ActiveSurges) -> None:
    assert [(s.surge_id, s.host) for s in live.draining] == [(2, YANGZHOU)]


def test_the_policy_sees_the_active_surges_with_quotas_and_reserves(live: ActiveSurges) -> None:
    assert live.views == (
        SurgeView(
            surge_id=1,
            host=NANJING,
            overflow_after_s=5.0,
            quotas={XUZHOU: 3, LYG: 3, WUXI: 2},
            reserves={XUZHOU: 1, LYG: 1, WUXI: 0},
            severity=2.0,
        ),
    )
    assert live.reserves() == {XUZHOU: 1, LYG: 1, WUXI: 0}


def test_no_surges_answer_nothing() -> None:
    empty = ActiveSurges()
    assert (empty.views, empty.draining, empty.joined_by(WUXI)) == ((), (), ())
    assert empty.serving_cities(NANJING) == [NANJING]
    assert not empty.serves(WUXI, NANJING)
