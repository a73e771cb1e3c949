"""Hot issues: the detection rules, by hand and as invariants."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from surge.hotspots import service as hotspots_service
from surge.hotspots.detection import (
    Hotspot,
    Kind,
    Rules,
    Ticket,
    appeared,
    detect,
    question_terms,
)
from surge.settings import Settings

NOW = 100_000.0
RULES = Rules()  # hour 3600 s, baseline 6 h, 20 tickets, 5 counts, lift 3, rise 0.05, floor 0.01
HOUR_AT = NOW - 60  # in the hour
BASE_AT = NOW - 3600 - 600  # in the baseline


def tickets(n: int, *, at: float, city: str = "320100", category: str | None = "0301",
            summary: str = "") -> list[Ticket]:  # fmt: skip
    return [Ticket(city, at, category, question_terms(summary)) for _ in range(n)]


def test_question_terms_drop_stop_words_digits_and_letters() -> None:
    assert question_terms("市民来电咨询地铁停运 line 2 a subway") == frozenset(
        {"民来", "电咨", "询地", "地铁", "铁停", "停运", "line", "subway"}
    )
    assert question_terms(None) == frozenset()


def test_a_category_tripling_its_share_is_hot_with_hand_computed_figures() -> None:
    # Baseline: 100 tickets, 5 of category 0101 (5 %). Hour: 40 tickets, 10 of 0101 (25 %).
    day = (
        tickets(95, at=BASE_AT) + tickets(5, at=BASE_AT, category="0101")
        + tickets(30, at=HOUR_AT) + tickets(10, at=HOUR_AT, category="0101")
    )  # fmt: skip
    (spot,) = detect(day, now=NOW, rules=RULES, city="320100")
    assert (spot.kind, spot.key, spot.count, spot.cities) == (
        Kind.CATEGORY,
        "0101",
        10,
        ("320100",),
    )
    assert (spot.share, spot.baseline_share, spot.lift) == (0.25, 0.05, 5.0)
    assert round(spot.rise, 9) == 0.2


def test_a_new_term_is_measured_against_the_floor_and_its_pairs_collapse_into_one() -> None:
    day = tickets(100, at=BASE_AT, summary="社保卡") + tickets(
        14, at=HOUR_AT, summary="社保卡"
    ) + tickets(6, at=HOUR_AT, summary="地铁停运")  # fmt: skip
    spots = detect(day, now=NOW, rules=RULES)
    # 地铁, 铁停, 停运: each 6/20 = 30 % against the 1 % floor; one kept (the first by key).
    assert [(s.kind, s.key, s.count) for s in spots] == [(Kind.TERM, "停运", 6)]
    assert spots[0].share == 0.3
    assert spots[0].baseline_share == 0.01
    assert spots[0].province
    assert spots[0].cities == ("320100",)


def test_the_guards_hold_back_small_samples_and_rare_terms() -> None:
    # 19 tickets in the hour: below the minimum, however sharp the rise.
    small = tickets(100, at=BASE_AT) + tickets(19, at=HOUR_AT, category="0101")
    assert detect(small, now=NOW, rules=RULES) == []
    # No baseline at all: nothing to rise above.
    assert detect(tickets(50, at=HOUR_AT, category="0101"), now=NOW, rules=RULES) == []
    # 4 tickets of the term: under `min_count` although 4/100 is four times the floor.
    rare = tickets(100, at=BASE_AT) + tickets(96, at=HOUR_AT) + tickets(
        4, at=HOUR_AT, summary="停电"
    )  # fmt: skip
    assert detect(rare, now=NOW, rules=RULES) == []
    # Tripled but only from 1 % to 3 %: under the 5-point rise.
    mild = tickets(99, at=BASE_AT) + tickets(1, at=BASE_AT, category="0101") + tickets(
        97, at=HOUR_AT
    ) + tickets(3 * 1, at=HOUR_AT, category="0101")  # fmt: skip
    assert detect(mild, now=NOW, rules=RULES) == []


def test_the_province_list_names_the_cities_where_it_is_hot() -> None:
    nanjing, wuxi = "320100", "320200"
    day = (
        tickets(100, at=BASE_AT, city=nanjing) + tickets(100, at=BASE_AT, city=wuxi)
        + tickets(10, at=HOUR_AT, city=nanjing, category="0201")
        + tickets(30, at=HOUR_AT, city=nanjing)
        + tickets(200, at=HOUR_AT, city=wuxi)
    )  # fmt: skip
    (spot,) = detect(day, now=NOW, rules=RULES)
    # Nanjing: 10/40 = 25 % against the floor: hot. Pooled: 10/240 ≈ 4.2 %: under the rise.
    assert (spot.key, spot.cities, spot.province, spot.count) == ("0201", (nanjing,), False, 10)
    assert detect(day, now=NOW, rules=RULES, city=wuxi) == []


def test_tickets_outside_both_windows_do_not_count() -> None:
    old = tickets(100, at=NOW - 3600 - 6 * 3600 - 1, category="0101")
    day = old + tickets(100, at=BASE_AT) + tickets(20, at=HOUR_AT, category="0101")
    assert [s.key for s in detect(day, now=NOW, rules=RULES)] == ["0101"]
    assert detect(day + tickets(50, at=NOW + 1, category="0102"), now=NOW, rules=RULES)[0].key == (
        "0101"
    )


def spot(key: str, cities: tuple[str, ...] = (), province: bool = True) -> Hotspot:
    return Hotspot(Kind.TERM, key, 5, 0.3, 0.01, 30.0, cities, province)


def test_what_appeared_is_new_or_hot_somewhere_new() -> None:
    before = [spot("地铁", ("320100",)), spot("停电", (), province=False)]
    now = [spot("地铁", ("320100",)), spot("停电", ("320200",)), spot("暴雨")]
    assert [s.key for s in appeared(before, now)] == ["停电", "暴雨"]
    assert appeared(now, now) == []


CITIES = ("320100", "320200", "320300")
CATEGORIES = ("0101", "0102", "0201", None)
WORDS = ("地铁停运", "社保卡", "flood", "核酸检测", "")

ticket_strategy = st.builds(
    Ticket,
    city=st.sampled_from(CITIES),
    ended_at=st.sampled_from((HOUR_AT, BASE_AT, NOW - 1800, NOW - 4 * 3600)),
    category=st.sampled_from(CATEGORIES),
    terms=st.sampled_from(WORDS).map(question_terms),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(ticket_strategy, max_size=60), st.sampled_from((None, *CITIES)))
def test_no_hotspot_below_the_minimum_sample(day: list[Ticket], city: str | None) -> None:
    strict = Rules(min_tickets=61)  # more than any example holds
    assert detect(day, now=NOW, rules=strict, city=city) == []
    for found in detect(day, now=NOW, rules=RULES, city=city):
        assert found.count >= RULES.min_count
        if found.province or city is not None:
            assert found.lift >= RULES.min_lift
            assert found.rise >= RULES.min_rise - 1e-12


@settings(max_examples=150, deadline=None)
@given(st.lists(ticket_strategy, min_size=1, max_size=80), st.integers(2, 5),
       st.sampled_from((None, *CITIES)))  # fmt: skip
def test_scaling_every_count_does_not_change_the_verdict(
    day: list[Ticket], factor: int, city: str | None
) -> None:
    # Guards met by any ticket at all (1 ticket, 1 count): then only shares decide; a larger
    # guard met at factor 1 stays met, counts only grow.
    rules = Rules(min_tickets=1, min_count=1)
    once = detect(day, now=NOW, rules=rules, city=city)
    scaled = detect(day * factor, now=NOW, rules=rules, city=city)
    assert [(s.kind, s.key, s.cities, s.province) for s in scaled] == [
        (s.kind, s.key, s.cities, s.province) for s in once
    ]
    for a, b in zip(once, scaled, strict=True):
        assert b.count == a.count * factor
        assert abs(b.share - a.share) < 1e-9


def test_the_settings_defaults_are_the_rules_defaults() -> None:
    assert hotspots_service.rules(Settings(_env_file=None)) == Rules()
