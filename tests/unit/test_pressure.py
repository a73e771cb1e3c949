"""Pressure readings, election with hysteresis, and helper-wave proposals."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from surge.cities.pressure import (
    OVERLOADED_WAIT_S,
    CityLoad,
    Thresholds,
    elect,
    propose,
    rank,
    read,
)

T = Thresholds()


def calm(code: str, **change: object) -> CityLoad:
    """A city on an ordinary day: normal arrivals, short waits, enough agents."""
    base = CityLoad(
        code=code,
        waiting=1,
        longest_wait_s=8,
        arrivals_15min=25,
        normal_rate_per_hour=100,
        agents_free=6,
        agents_busy=8,
        received_1h=100,
        answered_1h=95,
        aht_s=240,
    )
    return replace(base, **change)  # type: ignore[arg-type]


def swamped(code: str, factor: float = 10) -> CityLoad:
    """Nanjing, 25 July 2021: arrivals many times normal, long waits, calls lost."""
    return calm(
        code,
        waiting=400,
        longest_wait_s=900,
        arrivals_15min=int(37.5 * factor),
        agents_free=0,
        agents_busy=113,
        received_1h=int(150 * factor),
        answered_1h=300,
        normal_rate_per_hour=150,
        aht_s=360,
    )


def test_a_calm_city_is_not_over_and_has_no_reasons() -> None:
    reading = read(calm("320200"), T)
    assert not reading.over
    assert reading.reasons == ()
    assert reading.score < 1
    assert reading.arrival_ratio == 1.0
    assert reading.connection_rate == 0.95


def test_a_swamped_city_is_over_with_its_reasons_in_words() -> None:
    reading = read(swamped("320100"), T)
    assert reading.over
    assert reading.score > 4
    assert reading.predicted_wait_s == OVERLOADED_WAIT_S
    text = " | ".join(reading.reasons)
    assert "arrivals 10.0x normal" in text
    assert "longest wait 900 s" in text
    assert "overloaded: 150 Erlangs offered to 113 agents" in text
    assert "connection rate 20% in the last hour" in text


def test_one_signal_alone_is_not_a_crisis() -> None:
    # 2.4x normal arrivals (16 Erlangs) but 24 agents: everything else is fine.
    busy_but_staffed = calm("320500", arrivals_15min=60, agents_free=10, agents_busy=14)
    reading = read(busy_but_staffed, T)
    assert len(reading.reasons) == 1
    assert not reading.over


def test_election_picks_the_top_city_over_the_thresholds() -> None:
    readings = [
        read(calm("320200"), T),
        read(swamped("320100", 10), T),
        read(swamped("321000", 6), T),
    ]
    assert [r.code for r in rank(readings)][:2] == ["320100", "321000"]
    assert elect(readings, incumbent=None, thresholds=T) == "320100"
    assert elect([read(calm("320200"), T)], incumbent="320200", thresholds=T) is None


def test_election_does_not_flap_within_the_hysteresis() -> None:
    nanjing, yangzhou = read(swamped("320100", 10), T), read(swamped("321000", 10), T)
    slightly_worse = replace(yangzhou, score=nanjing.score * 1.1)
    assert elect([nanjing, slightly_worse], incumbent="320100", thresholds=T) == "320100"
    much_worse = replace(yangzhou, score=nanjing.score * 2)
    assert elect([nanjing, much_worse], incumbent="320100", thresholds=T) == "321000"
    recovered = read(calm("320100"), T)
    assert elect([recovered, yangzhou], incumbent="320100", thresholds=T) == "321000"


def test_proposal_ranks_helpers_by_spare_capacity_in_waves() -> None:
    host = swamped("321000", 8)
    helpers = [
        calm(code, agents_free=free, agents_busy=8)
        for code, free in [
            ("320300", 9),
            ("320500", 12),
            ("320700", 7),
            ("320200", 3),
            ("320400", 6),
            ("320600", 5),
            ("320900", 4),
            ("321300", 8),
            ("320800", 2),
            ("321100", 10),
            ("321200", 1),
        ]
    ]
    proposal = propose(host, helpers, T, unavailable={"320400": "serving the 320100 surge"})
    assert proposal.host == "321000"
    assert proposal.agents_short > 0
    ranked = [offer for wave in proposal.waves for offer in wave]
    assert [len(wave) for wave in proposal.waves][:2] == [3, 5]
    assert ranked[0].code == "320500"
    assert "320400" not in {o.code for o in ranked}
    spares = [o.spare for o in ranked]
    assert spares == sorted(spares, reverse=True)
    assert all(1 <= o.suggested_seats <= o.spare for o in ranked)


def test_a_city_needing_all_its_agents_is_not_proposed() -> None:
    host = swamped("321000")
    stretched = calm("320300", arrivals_15min=60, agents_free=1, agents_busy=13)
    assert propose(host, [stretched], T).waves == ()


@given(
    waiting=st.integers(0, 5000),
    longest=st.floats(0, 5000),
    arrivals=st.integers(0, 20_000),
    free=st.integers(0, 500),
    busy=st.integers(0, 500),
    received=st.integers(0, 50_000),
    answered_share=st.floats(0, 1),
    aht=st.floats(30, 1200),
)
def test_readings_are_always_finite_and_consistent(
    waiting: int,
    longest: float,
    arrivals: int,
    free: int,
    busy: int,
    received: int,
    answered_share: float,
    aht: float,
) -> None:
    load = calm(
        "320100",
        waiting=waiting,
        longest_wait_s=longest,
        arrivals_15min=arrivals,
        agents_free=free,
        agents_busy=busy,
        received_1h=received,
        answered_1h=int(received * answered_share),
        aht_s=aht,
    )
    reading = read(load, T)
    assert 0 <= reading.score < 100
    assert 0 <= reading.predicted_wait_s <= OVERLOADED_WAIT_S
    assert reading.over == (len(reading.reasons) >= T.min_signals)
