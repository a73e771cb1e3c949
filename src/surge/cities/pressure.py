"""Pressure readings, the election of the beleaguered city, and helper-wave proposals (pure).

A reading turns a city's recent figures into signals, each compared with its threshold:

- arrivals over the last 15 minutes against the city's normal rate (`arrival_ratio`);
- the longest wait of a caller still in the queue;
- the Erlang C predicted wait (ASA) for the current arrival rate, handling time and staffing;
- the connection rate over the last hour (a low one is pressure).

A signal's *strength* is its value over its threshold (for the connection rate: the shortfall
over the allowed shortfall), so 1.0 means "at the threshold". The score adds the strengths of the
signals at or over 1 (each capped at 10); a city under every threshold scores its strongest
signal (< 1), which still ranks it. A city is *over* when at least `min_signals` signals are.

Two rules keep noise out. A rate (the arrival ratio, the connection rate) counts only with at
least `min_sample` calls behind it: one abandoned call out of two is not a 50 % connection rate.
And pressure is calls waiting: with an empty queue no signal counts, the city is not over, and its
score is the strongest signal that looks ahead (arrivals, predicted wait), kept under 1; so a host
whose helpers keep its queue empty still reads its own staff's shortfall, under the election.

The election has hysteresis. A city is elected when it is the top city over; it stays elected
while its score is at or above the release threshold (`release_score`, under 1: the election
threshold) and within `hysteresis` of the top city over. A drained city falls under the release
threshold once its arrivals and staffing could do without help, and gives way at once to a
challenger over with real load. The same release threshold, held for `release_after_s`, is when a
surge's release is suggested.

Each reading also gives the city's capacity (its present agents' service rate, calls per hour at
its handling time), its demand (the arrival rate) and its shortfall: the part of its demand over
its capacity that the other cities' free capacity cannot meet (shared out in proportion when
several cities fall short), the gauge that tells "route" from "recruit or deflect".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Self

from surge.erlang import Load, agents_for_service_level, asa_s
from surge.reasons import Reason

if TYPE_CHECKING:  # only the type: the pure core needs no settings at run time
    from surge.settings import Settings

OVERLOADED_WAIT_S = 3600.0  # what "predicted wait" says when the queue can only grow
_CAP = 10.0
_EMPTY_QUEUE_SCORE = 0.99  # the most an empty queue scores: under the election threshold, 1


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a signal counts as pressure, and when it is over (all are settings)."""

    arrival_ratio: float = 2.0
    longest_wait_s: float = 60.0
    predicted_wait_s: float = 30.0
    connection_rate: float = 0.8
    min_signals: int = 2
    min_sample: int = 10  # calls behind a rate (arrivals, connection rate) before it counts
    hysteresis: float = 0.25
    release_score: float = 0.75  # under it the elected city loses and a host may release
    release_after_s: float = 300.0  # how long a host stays under it before release is suggested
    service_level: float = 0.8  # what staffing aims at when spare capacity is worked out
    service_level_s: float = 20.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """The thresholds `SURGE_PRESSURE_*`, `SURGE_RELEASE_AFTER_S` and the service level give."""
        return cls(
            arrival_ratio=settings.pressure_arrival_ratio,
            longest_wait_s=settings.pressure_longest_wait_s,
            predicted_wait_s=settings.pressure_predicted_wait_s,
            connection_rate=settings.pressure_connection_rate,
            min_signals=settings.pressure_min_signals,
            min_sample=settings.pressure_min_sample,
            hysteresis=settings.pressure_hysteresis,
            release_score=settings.pressure_release_score,
            release_after_s=settings.release_after_s,
            service_level=settings.service_level_target,
            service_level_s=settings.service_level_s,
        )


@dataclass(frozen=True, slots=True)
class CityLoad:
    """A city's recent figures, as the service measures them."""

    code: str
    waiting: int
    longest_wait_s: float
    arrivals_15min: int
    normal_rate_per_hour: float
    agents_free: int
    agents_busy: int
    received_1h: int
    answered_1h: int
    aht_s: float

    @property
    def agents(self) -> int:
        """Agents logged in (free or busy)."""
        return self.agents_free + self.agents_busy

    @property
    def load(self) -> Load:
        """The current offered load: the last 15 minutes' arrival rate at the handling time."""
        return Load(rate_per_s=self.arrivals_15min / 900, aht_s=self.aht_s)

    @property
    def capacity_per_hour(self) -> float:
        """Calls an hour its present agents can serve at its handling time."""
        return self.agents * 3600 / self.aht_s

    @property
    def demand_per_hour(self) -> float:
        """Calls an hour arriving, at the last 15 minutes' rate."""
        return self.arrivals_15min * 4.0


@dataclass(frozen=True, slots=True)
class Reading:
    """A city's pressure: its signals, score, the reasons in words, capacity against demand.

    `shortfall_per_hour` from `read` alone is the demand over the city's own capacity; from
    `read_all`, what is left of it once the province's free capacity is shared out.
    """

    code: str
    score: float
    over: bool
    waiting: int
    longest_wait_s: float
    predicted_wait_s: float
    arrival_ratio: float
    connection_rate: float | None
    agents_free: int
    agents_busy: int
    capacity_per_hour: float
    demand_per_hour: float
    shortfall_per_hour: float
    reason_codes: tuple[Reason, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        """The reasons in words (the contract's `reasons`)."""
        return tuple(reason.text for reason in self.reason_codes)


@dataclass(frozen=True, slots=True)
class _Signal:
    strength: float  # value over threshold: 1.0 is at the threshold
    reason: Reason
    looks_ahead: bool  # about the calls to come rather than those already in


def predicted_wait_s(load: CityLoad) -> float:
    """Erlang C ASA for the current load and staffing (capped when the queue can only grow)."""
    wait = asa_s(load.agents, load.load)
    return OVERLOADED_WAIT_S if math.isinf(wait) else min(wait, OVERLOADED_WAIT_S)


def read(load: CityLoad, thresholds: Thresholds) -> Reading:
    """Turn a city's figures into its pressure reading."""
    normal_per_15min = load.normal_rate_per_hour / 4
    ratio = load.arrivals_15min / normal_per_15min if normal_per_15min > 0 else 0.0
    predicted = predicted_wait_s(load)
    connection = load.answered_1h / load.received_1h if load.received_1h else None
    signals = _signals(load, thresholds, ratio=ratio, predicted=predicted, connection=connection)
    if load.waiting == 0:
        # Nothing waits: nothing counts; only the arrivals can bring pressure back.
        strong: list[tuple[float, Reason]] = []
        enough = load.arrivals_15min >= thresholds.min_sample
        ahead = [s.strength for s in signals if s.looks_ahead and enough]
        score = min(max(ahead, default=0.0), _EMPTY_QUEUE_SCORE)
    else:
        strong = [(min(s.strength, _CAP), s.reason) for s in signals if s.strength >= 1]
        score = sum(s for s, _ in strong) if strong else max(s.strength for s in signals)
    return Reading(
        code=load.code,
        score=round(score, 3),
        over=len(strong) >= thresholds.min_signals,
        waiting=load.waiting,
        longest_wait_s=round(load.longest_wait_s, 1),
        predicted_wait_s=round(predicted, 1),
        arrival_ratio=round(ratio, 2),
        connection_rate=None if connection is None else round(connection, 4),
        agents_free=load.agents_free,
        agents_busy=load.agents_busy,
        capacity_per_hour=round(load.capacity_per_hour, 1),
        demand_per_hour=round(load.demand_per_hour, 1),
        shortfall_per_hour=round(max(0.0, load.demand_per_hour - load.capacity_per_hour), 1),
        reason_codes=tuple(reason for _, reason in sorted(strong, key=lambda s: -s[0])),
    )


def read_all(loads: Sequence[CityLoad], thresholds: Thresholds) -> list[Reading]:
    """Read every city, and share the province's free capacity out over the cities short of it.

    A city's deficit is its demand over its own capacity; the free capacity is what the others'
    capacity exceeds their demand by. Each city keeps its share of the deficit the free capacity
    cannot cover, in proportion to its own: the shortfalls add up to the province's.
    """
    deficits = [max(0.0, load.demand_per_hour - load.capacity_per_hour) for load in loads]
    free = sum(max(0.0, load.capacity_per_hour - load.demand_per_hour) for load in loads)
    total = sum(deficits)
    unmet = max(0.0, total - free) / total if total > 0 else 0.0
    return [
        replace(read(load, thresholds), shortfall_per_hour=round(deficit * unmet, 1))
        for load, deficit in zip(loads, deficits, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class Province:
    """The province's totals: its capacity, demand and shortfall, and its queue and agents.

    The shortfall is the sum of the cities' (from `read_all`), which is the province's demand
    over its capacity: what re-routing cannot cover ("recruit or deflect").
    """

    waiting: int
    agents_free: int
    agents_busy: int
    capacity_per_hour: float
    demand_per_hour: float
    shortfall_per_hour: float
    cities_over: int


def province(readings: Sequence[Reading]) -> Province:
    """Add every city's reading up."""
    return Province(
        waiting=sum(r.waiting for r in readings),
        agents_free=sum(r.agents_free for r in readings),
        agents_busy=sum(r.agents_busy for r in readings),
        capacity_per_hour=round(sum(r.capacity_per_hour for r in readings), 1),
        demand_per_hour=round(sum(r.demand_per_hour for r in readings), 1),
        shortfall_per_hour=round(sum(r.shortfall_per_hour for r in readings), 1),
        cities_over=sum(r.over for r in readings),
    )


def _signals(
    load: CityLoad,
    thresholds: Thresholds,
    *,
    ratio: float,
    predicted: float,
    connection: float | None,
) -> list[_Signal]:
    """Every signal of a city; the rates only with `min_sample` calls behind them."""
    signals = [
        _Signal(
            load.longest_wait_s / thresholds.longest_wait_s,
            Reason(
                "longest_wait",
                {"wait_s": round(load.longest_wait_s), "threshold_s": thresholds.longest_wait_s},
                f"longest wait {load.longest_wait_s:.0f} s "
                f"(threshold {thresholds.longest_wait_s:g} s)",
            ),
            looks_ahead=False,
        ),
        _Signal(
            predicted / thresholds.predicted_wait_s,
            _predicted_reason(load, predicted, thresholds),
            looks_ahead=True,
        ),
    ]
    if load.arrivals_15min >= thresholds.min_sample:
        signals.append(
            _Signal(
                ratio / thresholds.arrival_ratio,
                Reason(
                    "arrivals",
                    {"ratio": round(ratio, 1), "threshold": thresholds.arrival_ratio},
                    f"arrivals {ratio:.1f}x normal over the last 15 min "
                    f"(threshold {thresholds.arrival_ratio:g}x)",
                ),
                looks_ahead=True,
            )
        )
    if connection is not None and load.received_1h >= thresholds.min_sample:
        allowed = 1 - thresholds.connection_rate
        shortfall = 1 - connection
        signals.append(
            _Signal(
                shortfall / allowed if allowed > 0 else (_CAP if shortfall > 0 else 0.0),
                Reason(
                    "connection_rate",
                    {"rate": round(connection, 4), "threshold_rate": thresholds.connection_rate},
                    f"connection rate {connection:.0%} in the last hour "
                    f"(threshold {thresholds.connection_rate:.0%})",
                ),
                looks_ahead=False,
            )
        )
    return signals


def _predicted_reason(load: CityLoad, predicted: float, thresholds: Thresholds) -> Reason:
    if load.agents == 0:
        return Reason(
            "no_agents",
            {"waiting": load.waiting},
            f"no agent logged in for the {load.waiting} calls waiting",
        )
    erlangs = load.load.erlangs
    if predicted >= OVERLOADED_WAIT_S and erlangs >= load.agents:
        offered = f"{erlangs:.0f}" if erlangs >= 10 else f"{erlangs:.1f}"
        return Reason(
            "overloaded",
            {"erlangs": float(offered), "agents": load.agents},
            f"overloaded: {offered} Erlangs offered to {load.agents} agents "
            "(the queue can only grow)",
        )
    return Reason(
        "predicted_wait",
        {
            "wait_s": round(predicted),
            "agents": load.agents,
            "threshold_s": thresholds.predicted_wait_s,
        },
        f"predicted wait {predicted:.0f} s with {load.agents} agents "
        f"(threshold {thresholds.predicted_wait_s:g} s)",
    )


def rank(readings: Sequence[Reading]) -> list[Reading]:
    """Highest pressure first (ties: more waiting, then city code)."""
    return sorted(readings, key=lambda r: (-r.score, -r.waiting, r.code))


def elect(
    readings: Sequence[Reading], *, incumbent: str | None, thresholds: Thresholds
) -> str | None:
    """The beleaguered city: the top city over, the incumbent kept within the hysteresis.

    The incumbent stays while its score is at or above the release threshold and within
    `hysteresis` of the top city over (if any is).
    """
    ranked = [reading for reading in rank(readings) if reading.over]
    top = ranked[0] if ranked else None
    current = next((r for r in readings if r.code == incumbent), None)
    if current is None or current.score < thresholds.release_score:
        return None if top is None else top.code
    if top is None or current.score >= top.score * (1 - thresholds.hysteresis):
        return current.code
    return top.code


@dataclass(frozen=True, slots=True)
class Release:
    """Whether a surge's host could do without its helpers now, and why (or why not)."""

    suggested: bool
    reason_codes: tuple[Reason, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        """The reasons in words (the contract's `reasons`)."""
        return tuple(reason.text for reason in self.reason_codes)


def suggest_release(
    reading: Reading, *, under_for_s: float | None, thresholds: Thresholds
) -> Release:
    """Release once the host has stayed under the release threshold for `release_after_s`.

    `under_for_s` is how long it has been under (None: it is not under now).
    """
    score, limit, after = reading.score, thresholds.release_score, thresholds.release_after_s
    capacity, demand = reading.capacity_per_hour, reading.demand_per_hour
    figures = Reason(
        "own_capacity",
        {"capacity_per_hour": round(capacity), "demand_per_hour": round(demand)},
        f"own capacity {capacity:.0f} calls/h for {demand:.0f} calls/h arriving",
    )
    level = {"score": score, "threshold": limit}
    if under_for_s is None:
        over = Reason(
            "release_over", level, f"pressure {score:g} at or over the release threshold {limit:g}"
        )
        return Release(False, (over, *reading.reason_codes, figures))
    under = f"pressure {score:g} under the release threshold {limit:g} for {under_for_s:.0f} s"
    timing = {**level, "under_s": round(under_for_s), "needed_s": after}
    if under_for_s < after:
        held = Reason("release_under", timing, f"{under} of the {after:g} s needed")
        return Release(False, (held, figures))
    ready = Reason("release_ready", timing, f"{under} (release after {after:g} s)")
    return Release(True, (ready, figures))


@dataclass(frozen=True, slots=True)
class HelperOffer:
    """A city that could help, and with how many agents."""

    code: str
    spare: int  # logged-in agents beyond what its own load needs, and free right now
    suggested_seats: int


@dataclass(frozen=True, slots=True)
class Proposal:
    """Helper cities for a host, ranked by spare capacity and grouped into waves."""

    host: str
    agents_short: int  # more agents the host needs to reach the target service level
    waves: tuple[tuple[HelperOffer, ...], ...]


def agents_needed(load: CityLoad, thresholds: Thresholds) -> int:
    """Agents the city's current load needs to reach the target service level."""
    if load.load.erlangs == 0:
        return 0
    return agents_for_service_level(
        load.load, target=thresholds.service_level, within_s=thresholds.service_level_s
    )


def propose(
    host: CityLoad,
    candidates: Sequence[CityLoad],
    thresholds: Thresholds,
    *,
    unavailable: Mapping[str, object] | None = None,
    wave_sizes: Sequence[int] = (3, 5),
) -> Proposal:
    """Rank the other cities by spare capacity and group them into waves (the last takes the rest).

    `unavailable` names cities that may not help now (serving another surge, under pressure).
    The first wave is small on purpose: it tests the mechanism, as in Yangzhou, 2021.
    """
    unavailable = unavailable or {}
    short = max(0, agents_needed(host, thresholds) - host.agents)
    offers = []
    for city in candidates:
        if city.code == host.code or city.code in unavailable:
            continue
        spare = min(city.agents_free, city.agents - agents_needed(city, thresholds))
        if spare > 0:
            offers.append(HelperOffer(city.code, spare, 0))
    offers.sort(key=lambda offer: (-offer.spare, offer.code))
    # Share the host's shortfall out over the helpers, never beyond what each can spare.
    share = math.ceil(short / len(offers)) if offers else 0
    offers = [HelperOffer(o.code, o.spare, min(o.spare, max(1, share))) for o in offers]
    waves: list[tuple[HelperOffer, ...]] = []
    start = 0
    for size in wave_sizes:
        if start < len(offers):
            waves.append(tuple(offers[start : start + size]))
            start += size
    if start < len(offers):
        waves.append(tuple(offers[start:]))
    return Proposal(host=host.code, agents_short=short, waves=tuple(waves))
