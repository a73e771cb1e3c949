"""Which categories and question terms are hot: a pure function, tickets in, hotspots out.

A ticket counts in the **hour** (the last `window_s`, ending at `now`) or in the **baseline**
(the `baseline_s` before the hour: a trailing window, so a night's quiet does not stand for the
morning) by when it was completed. Each ticket carries its category and the terms of its
summary, cut as the script search cuts a query (`surge.scripts.search.terms`: Chinese character
pairs, English words), each term counted once per ticket; stop-words, digits and one-letter
words are dropped.

For a category or term x in a scope (one city, or the province pooled):

    share          = hour tickets with x ÷ hour tickets
    baseline_share = max(baseline tickets with x ÷ baseline tickets, baseline_floor)
    lift           = share ÷ baseline_share
    rise           = share − baseline_share

The floor is the smoothing for what the baseline never saw: a term new this hour is measured
against `baseline_floor` (1 %), not against zero. x is **hot** when

- the hour has at least `min_tickets` tickets and the baseline as many (small-sample guard:
  with no baseline there is nothing to rise above), and x is on at least `min_count` of the
  hour's tickets;
- lift ≥ `min_lift` (3: three times its usual share) **and** rise ≥ `min_rise` (5 points: a
  rare term tripling from 0.1 % to 0.3 % is not an alert).

Every test but the guards is on shares, so the verdict does not change when every count is
multiplied by the same factor. A term on (almost) the same hour tickets as a hotter term of the
same scope is the same issue cut differently (核酸, 酸检, 检测 of 核酸检测): only the first is
kept, the others are dropped when at least `same_issue` (80 %) of their tickets carry it.

The province-wide list holds what is hot in the pooled province or in at least one city, with
the province's figures and the cities where it is hot on their own tickets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from surge.scripts.search import terms

STOP_TERMS = frozenset(
    {
        # Chinese pairs on any call: greetings, the hotline's own words, question words.
        "市民", "来电", "反映", "咨询", "询问", "请问", "你好", "您好", "问题", "情况", "表示",
        "希望", "要求", "是否", "什么", "怎么", "如何", "为什么", "可以", "能否", "需要", "一个",
        "没有", "这个", "那个", "我们", "他们", "自己", "现在", "目前", "已经", "相关", "工作",
        "处理", "答复", "告知", "热线", "电话", "谢谢",
        # English words too common to mean anything.
        "the", "and", "for", "with", "about", "from", "that", "this", "what", "when", "where",
        "how", "why", "who", "can", "could", "would", "should", "will", "not", "are", "was",
        "were", "has", "have", "had", "his", "her", "our", "their", "they", "she", "you",
        "your", "caller", "asked", "asks", "ask", "called", "call", "calls", "wants", "want",
        "please", "thanks", "is", "it", "of", "to", "in", "on", "at", "by", "or", "an", "be",
        "do", "if", "my", "me", "we", "he", "as", "so", "no",
    }
)  # fmt: skip


def question_terms(text: str | None) -> frozenset[str]:
    """The terms a ticket's summary counts for: search terms less stop-words, digits, letters."""
    if not text:
        return frozenset()
    return frozenset(
        term
        for term in terms(text)
        if term not in STOP_TERMS and not term.isdigit() and not (term.isascii() and len(term) < 2)
    )


class Kind(StrEnum):
    """What rose: a request category, or a term of the tickets' summaries."""

    CATEGORY = "category"
    TERM = "term"


@dataclass(frozen=True, slots=True)
class Ticket:
    """A completed ticket, as far as hot issues care."""

    city: str
    ended_at: float  # epoch seconds
    category: str | None
    terms: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Rules:
    """The windows, the thresholds and the small-sample guards (`SURGE_HOTSPOT_*`)."""

    window_s: float = 3600.0
    baseline_s: float = 6 * 3600.0
    min_tickets: int = 20
    min_count: int = 5
    min_lift: float = 3.0
    min_rise: float = 0.05
    baseline_floor: float = 0.01
    same_issue: float = 0.8


@dataclass(frozen=True, slots=True)
class Hotspot:
    """A category or term whose share of the hour rose well above its baseline."""

    kind: Kind
    key: str
    count: int  # hour tickets carrying it
    share: float
    baseline_share: float  # after the floor
    lift: float
    cities: tuple[str, ...] = ()  # where it is hot on the city's own tickets
    province: bool = False  # hot in the pooled province (province-wide list only)

    @property
    def rise(self) -> float:
        """The share's rise over the baseline, in share points."""
        return self.share - self.baseline_share


@dataclass(slots=True)
class _Tally:
    """The hour's and the baseline's tickets of one scope, counted per category and term.

    Counted by `Counter.update` over each ticket's terms (a loop in C: a big day's window is
    a hundred thousand tickets); which hour tickets carry a term is only worked out for the
    few terms found hot, for the same-issue test.
    """

    hour: int = 0
    baseline: int = 0
    counts: dict[tuple[Kind, bool], Counter[str]] = field(
        default_factory=lambda: {(kind, hour): Counter() for kind in Kind for hour in (True, False)}
    )
    hour_terms: list[frozenset[str]] = field(default_factory=list)  # each hour ticket's

    def add(self, ticket: Ticket, *, in_hour: bool) -> None:
        if in_hour:
            self.hour += 1
            self.hour_terms.append(ticket.terms)
        else:
            self.baseline += 1
        self.counts[(Kind.TERM, in_hour)].update(ticket.terms)
        if ticket.category:
            self.counts[(Kind.CATEGORY, in_hour)][ticket.category] += 1

    def merge(self, other: _Tally) -> None:
        self.hour += other.hour
        self.baseline += other.baseline
        for key, counter in other.counts.items():
            self.counts[key].update(counter)
        self.hour_terms += other.hour_terms

    def figures(self, kind: Kind, key: str, rules: Rules) -> Hotspot:
        count = self.counts[(kind, True)][key]
        share = count / self.hour if self.hour else 0.0
        usual = self.counts[(kind, False)][key] / self.baseline if self.baseline else 0.0
        baseline_share = max(usual, rules.baseline_floor)
        return Hotspot(kind, key, count, share, baseline_share, share / baseline_share)

    def hot(self, rules: Rules) -> list[Hotspot]:
        """The hot keys of this scope, hottest first, a term repeating a hotter one left out."""
        if self.hour < rules.min_tickets or self.baseline < rules.min_tickets:
            return []
        found = [
            figures
            for kind in Kind
            for key, count in self.counts[(kind, True)].items()
            if count >= rules.min_count
            and (figures := self.figures(kind, key, rules)).lift >= rules.min_lift
            and figures.rise >= rules.min_rise
        ]
        found.sort(key=_hottest_first)
        carrying = self._carrying({spot.key for spot in found if spot.kind is Kind.TERM})
        kept: list[Hotspot] = []
        for spot in found:
            if spot.kind is Kind.TERM and any(
                len(carrying[spot.key] & carrying[other.key])
                >= rules.same_issue * len(carrying[spot.key])
                for other in kept
                if other.kind is Kind.TERM
            ):
                continue
            kept.append(spot)
        return kept

    def _carrying(self, wanted: set[str]) -> dict[str, set[int]]:
        """For each wanted term, the hour tickets (by number) that carry it."""
        carrying: dict[str, set[int]] = {term: set() for term in wanted}
        if wanted:
            for number, terms_of in enumerate(self.hour_terms):
                for term in terms_of & wanted:
                    carrying[term].add(number)
        return carrying


def _hottest_first(spot: Hotspot) -> tuple[float, int, str, str]:
    return (-spot.lift, -spot.count, spot.kind.value, spot.key)


def _tallies(
    tickets: Iterable[Ticket], *, now: float, rules: Rules
) -> tuple[_Tally, dict[str, _Tally]]:
    """The province's tally and each city's, of the tickets inside the two windows."""
    hour_from = now - rules.window_s
    baseline_from = hour_from - rules.baseline_s
    cities: dict[str, _Tally] = {}
    for ticket in tickets:
        if baseline_from <= ticket.ended_at <= now:
            tally = cities.get(ticket.city)
            if tally is None:
                tally = cities[ticket.city] = _Tally()
            tally.add(ticket, in_hour=ticket.ended_at >= hour_from)
    province = _Tally()
    for code in sorted(cities):
        province.merge(cities[code])
    return province, cities


def detect(
    tickets: Sequence[Ticket], *, now: float, rules: Rules, city: str | None = None
) -> list[Hotspot]:
    """The hotspots at `now`: of one city's tickets, or province-wide (pooled, or in a city)."""
    province, by_city = _tallies(
        (t for t in tickets if city is None or t.city == city), now=now, rules=rules
    )
    if city is not None:
        return [
            Hotspot(s.kind, s.key, s.count, s.share, s.baseline_share, s.lift, (city,))
            for s in province.hot(rules)
        ]
    where: dict[tuple[Kind, str], list[str]] = {}
    for code in sorted(by_city):
        for spot in by_city[code].hot(rules):
            where.setdefault((spot.kind, spot.key), []).append(code)
    pooled = {(spot.kind, spot.key) for spot in province.hot(rules)}
    found = []
    for kind, key in pooled | where.keys():
        s = province.figures(kind, key, rules)
        cities = tuple(where.get((kind, key), ()))
        found.append(Hotspot(s.kind, s.key, s.count, s.share, s.baseline_share, s.lift, cities,
                             (kind, key) in pooled))  # fmt: skip
    found.sort(key=_hottest_first)
    return found


def appeared(before: Sequence[Hotspot], now: Sequence[Hotspot]) -> list[Hotspot]:
    """The hotspots of `now` that are new since `before`, or hot in a city they were not."""
    earlier = {(spot.kind, spot.key): spot for spot in before}
    return [
        spot
        for spot in now
        if (old := earlier.get((spot.kind, spot.key))) is None
        or not set(spot.cities) <= set(old.cities)
        or (spot.province and not old.province)
    ]
