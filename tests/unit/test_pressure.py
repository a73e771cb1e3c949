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
    read_all,
    suggest_release,
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
    if waiting == 0:
        assert not reading.over
        assert reading.reasons == ()
        assert reading.score < 1
    assert reading.capacity_per_hour == round((free + busy) * 3600 / aht, 1)
    assert reading.demand_per_hour == arrivals * 4


# Seen on issue 11 -----------------------------------------------------------------------------


def drained(code: str) -> CityLoad:
    """Yangzhou once helpers have emptied its queue: arrivals still high, the hour's calls lost."""
    return replace(swamped(code), waiting=0, longest_wait_s=0)


def test_a_city_with_nothing_waiting_is_never_over() -> None:
    # Two calls in the hour, one answered in 2 s, one abandoned; nobody logged in now.
    quiet = calm(
        "320200",
        waiting=0,
        longest_wait_s=0,
        arrivals_15min=2,
        agents_free=0,
        agents_busy=0,
        received_1h=2,
        answered_1h=1,
        aht_s=2,
    )
    reading = read(quiet, T)
    assert not reading.over
    assert reading.reasons == ()
    assert reading.score < 1
    assert not read(drained("321000"), T).over
    assert read(drained("321000"), T).score < 1


def test_one_abandoned_call_out_of_two_does_not_trip_the_connection_rate() -> None:
    # One call waiting 70 s (a real signal), and an hour of two calls, one of them abandoned.
    small = calm("320200", waiting=1, longest_wait_s=70, received_1h=2, answered_1h=1)
    reading = read(small, T)
    assert not reading.over
    assert [r.split(" ")[0] for r in reading.reasons] == ["longest"]


def test_a_few_arrivals_do_not_trip_the_arrival_ratio() -> None:
    # A city that normally takes 4 calls an hour gets 3 in a quarter: 3x, from three calls.
    small = calm("320200", waiting=1, longest_wait_s=70, arrivals_15min=3, normal_rate_per_hour=4)
    reading = read(small, T)
    assert not reading.over
    assert [r.split(" ")[0] for r in reading.reasons] == ["longest"]


def test_a_drained_incumbent_gives_way_to_a_challenger_with_real_load() -> None:
    yangzhou = read(drained("321000"), T)
    nanjing = read(replace(swamped("320100", 4), waiting=80, longest_wait_s=45), T)
    assert nanjing.over
    assert elect([yangzhou, nanjing], incumbent="321000", thresholds=T) == "320100"
    assert [r.code for r in rank([yangzhou, nanjing])] == ["320100", "321000"]


def test_a_drained_incumbent_stays_elected_until_under_the_release_threshold() -> None:
    # Helpers keep Yangzhou's queue empty, but its own agents could not meet its arrivals.
    yangzhou = read(drained("321000"), T)
    assert T.release_score <= yangzhou.score < 1
    assert elect([yangzhou], incumbent="321000", thresholds=T) == "321000"
    assert elect([yangzhou], incumbent=None, thresholds=T) is None  # never elected drained
    # Arrivals back to normal and enough agents of its own: the hysteresis lets it go.
    recovered = read(replace(calm("321000"), waiting=0, longest_wait_s=0, received_1h=400), T)
    assert recovered.score < T.release_score
    assert elect([recovered], incumbent="321000", thresholds=T) is None


def test_an_empty_city_on_few_arrivals_scores_nothing() -> None:
    nobody = calm("320200", waiting=0, longest_wait_s=0, arrivals_15min=2, agents_free=0,
                  agents_busy=0, received_1h=2, answered_1h=1, aht_s=2)  # fmt: skip
    assert read(nobody, T).score == 0
    stuck = replace(nobody, waiting=3, longest_wait_s=400, aht_s=300)
    reading = read(stuck, T)
    assert reading.over
    assert "no agent logged in for the 3 calls waiting" in reading.reasons


def test_a_minimum_sample_is_a_setting() -> None:
    small = calm("320200", waiting=1, longest_wait_s=70, received_1h=2, answered_1h=1)
    assert read(small, replace(T, min_sample=2)).over
    assert not read(small, replace(T, min_sample=3)).over


def test_capacity_demand_and_the_provinces_shortfall() -> None:
    # Nanjing: 400 calls/h against 20 agents at 360 s (200 calls/h); Xuzhou: 40 calls/h against
    # 10 agents at 240 s (150 calls/h): 110 free. Yangzhou: 120 calls/h against nobody.
    nanjing = calm("320100", arrivals_15min=100, agents_free=0, agents_busy=20, aht_s=360)
    xuzhou = calm("320300", arrivals_15min=10, agents_free=4, agents_busy=6, aht_s=240)
    yangzhou = calm("321000", arrivals_15min=30, agents_free=0, agents_busy=0, aht_s=300)
    alone = read(nanjing, T)
    assert (alone.capacity_per_hour, alone.demand_per_hour) == (200, 400)
    assert alone.shortfall_per_hour == 200  # nobody else to help
    readings = {r.code: r for r in read_all([nanjing, xuzhou, yangzhou], T)}
    assert readings["320300"].shortfall_per_hour == 0
    # 320 calls/h short in all, 110 free: 210 unmet, shared 200:120 between the two.
    assert readings["320100"].shortfall_per_hour == round(200 * 210 / 320, 1)
    assert readings["321000"].shortfall_per_hour == round(120 * 210 / 320, 1)
    covered = {r.code: r for r in read_all([nanjing, replace(xuzhou, agents_free=40)], T)}
    assert covered["320100"].shortfall_per_hour == 0  # the province can route it all


def test_release_is_suggested_after_the_host_stays_under_the_threshold() -> None:
    quiet = read(replace(calm("321000"), waiting=0, longest_wait_s=0), T)
    busy = read(drained("321000"), T)
    later = suggest_release(quiet, under_for_s=T.release_after_s, thresholds=T)
    assert later.suggested
    assert later.reasons[0].startswith("pressure 0.5 under the release threshold 0.75 for 300 s")
    assert "own capacity 210 calls/h for 100 calls/h arriving" in later.reasons
    soon = suggest_release(quiet, under_for_s=40, thresholds=T)
    assert not soon.suggested
    assert "for 40 s of the 300 s needed" in soon.reasons[0]
    held = suggest_release(busy, under_for_s=None, thresholds=T)
    assert not held.suggested
    assert held.reasons[0] == "pressure 0.99 at or over the release threshold 0.75"


@given(
    st.lists(
        st.tuples(st.integers(0, 2000), st.integers(0, 200), st.floats(30, 1200)),
        min_size=1,
        max_size=13,
    )
)
def test_the_shortfalls_add_up_to_what_the_province_cannot_meet(
    cities: list[tuple[int, int, float]],
) -> None:
    loads = [
        calm(f"32{i:04d}", arrivals_15min=arrivals, agents_free=agents, agents_busy=0, aht_s=aht)
        for i, (arrivals, agents, aht) in enumerate(cities)
    ]
    demand = sum(load.demand_per_hour for load in loads)
    capacity = sum(load.capacity_per_hour for load in loads)
    readings = read_all(loads, T)
    unmet = sum(reading.shortfall_per_hour for reading in readings)
    assert unmet >= 0
    assert abs(unmet - max(0.0, demand - capacity)) <= 0.05 * len(loads) + 1e-6 * demand
    for reading in readings:
        assert (
            reading.shortfall_per_hour
            <= max(0.0, reading.demand_per_hour - reading.capacity_per_hour) + 0.05
        )
