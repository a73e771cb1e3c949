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

The elected city is the top-ranked city that is over; the incumbent keeps the election while it is
over and within `hysteresis` of the top score, so the choice does not flap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from surge.erlang import Load, agents_for_service_level, asa_s

OVERLOADED_WAIT_S = 3600.0  # what "predicted wait" says when the queue can only grow
_CAP = 10.0


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a signal counts as pressure (all are settings)."""

    arrival_ratio: float = 2.0
    longest_wait_s: float = 60.0
    predicted_wait_s: float = 30.0
    connection_rate: float = 0.8
    min_signals: int = 2
    hysteresis: float = 0.25
    service_level: float = 0.8  # what staffing aims at when spare capacity is worked out
    service_level_s: float = 20.0


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


@dataclass(frozen=True, slots=True)
class Reading:
    """A city's pressure: its signals, score and the reasons in words."""

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
    reasons: tuple[str, ...]


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
    signals: list[tuple[float, str]] = [
        (
            ratio / thresholds.arrival_ratio,
            f"arrivals {ratio:.1f}x normal over the last 15 min "
            f"(threshold {thresholds.arrival_ratio:g}x)",
        ),
        (
            load.longest_wait_s / thresholds.longest_wait_s,
            f"longest wait {load.longest_wait_s:.0f} s (threshold {thresholds.longest_wait_s:g} s)",
        ),
        (
            predicted / thresholds.predicted_wait_s,
            _predicted_reason(load, predicted, thresholds),
        ),
    ]
    if connection is not None:
        allowed = 1 - thresholds.connection_rate
        shortfall = 1 - connection
        signals.append(
            (
                shortfall / allowed if allowed > 0 else (_CAP if shortfall > 0 else 0.0),
                f"connection rate {connection:.0%} in the last hour "
                f"(threshold {thresholds.connection_rate:.0%})",
            )
        )
    strong = [(min(strength, _CAP), reason) for strength, reason in signals if strength >= 1]
    score = sum(s for s, _ in strong) if strong else max(s for s, _ in signals)
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
        reasons=tuple(reason for _, reason in sorted(strong, key=lambda s: -s[0])),
    )


def _predicted_reason(load: CityLoad, predicted: float, thresholds: Thresholds) -> str:
    if predicted >= OVERLOADED_WAIT_S and load.load.erlangs >= load.agents:
        return (
            f"overloaded: {load.load.erlangs:.0f} Erlangs offered to {load.agents} agents "
            "(the queue can only grow)"
        )
    return (
        f"predicted wait {predicted:.0f} s with {load.agents} agents "
        f"(threshold {thresholds.predicted_wait_s:g} s)"
    )


def rank(readings: Sequence[Reading]) -> list[Reading]:
    """Highest pressure first (ties: more waiting, then city code)."""
    return sorted(readings, key=lambda r: (-r.score, -r.waiting, r.code))


def elect(
    readings: Sequence[Reading], *, incumbent: str | None, thresholds: Thresholds
) -> str | None:
    """The beleaguered city: the top city over the thresholds, sticky within the hysteresis."""
    ranked = [reading for reading in rank(readings) if reading.over]
    if not ranked:
        return None
    top = ranked[0]
    current = next((r for r in ranked if r.code == incumbent), None)
    if current is not None and current.score >= top.score * (1 - thresholds.hysteresis):
        return current.code
    return top.code


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
    unavailable: Mapping[str, str] | None = None,
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
