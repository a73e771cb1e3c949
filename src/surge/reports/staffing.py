"""Next-day staffing advice: the agents each hour needs for the target service level (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from surge import erlang
from surge.reports.schemas import Staffing, StaffingHour


def patience_estimate(*, abandoned: int, total_wait_s: float) -> float | None:
    """Mean caller patience from one day, or None when no caller abandoned.

    With exponential patience the maximum-likelihood estimate from censored waits is the total
    time all callers spent waiting (answered callers' waits are censored patiences) divided by
    the number who gave up.
    """
    if abandoned <= 0 or total_wait_s <= 0:
        return None
    return total_wait_s / abandoned


def advise(
    *,
    for_date: date,
    hours: Sequence[datetime],
    forecast: Sequence[int],
    aht_s: float,
    patience_s: float | None,
    own_agents: int,
    target: float,
    within_s: float,
) -> Staffing:
    """Agents needed in each of `hours` (Erlang A with a patience, else C), and the shortfall."""
    advice = []
    for index, start in enumerate(hours):
        calls = forecast[index] if index < len(forecast) else 0
        load = erlang.Load(rate_per_s=calls / 3600, aht_s=aht_s)
        needed = (
            0
            if calls == 0
            else erlang.agents_for_service_level(
                load, target=target, within_s=within_s, patience_s=patience_s
            )
        )
        advice.append(
            StaffingHour(
                hour=start,
                forecast_calls=calls,
                agents_needed=needed,
                own_agents=own_agents,
                helper_seats=max(0, needed - own_agents),
            )
        )
    return Staffing(
        for_date=for_date,
        method="erlang_c" if patience_s is None else "erlang_a",
        aht_s=aht_s,
        patience_s=patience_s,
        target=target,
        within_s=within_s,
        own_agents=own_agents,
        peak_agents_needed=max((hour.agents_needed for hour in advice), default=0),
        peak_helper_seats=max((hour.helper_seats for hour in advice), default=0),
        agent_hours_needed=sum(hour.agents_needed for hour in advice),
        helper_seat_hours=sum(hour.helper_seats for hour in advice),
        hours=advice,
    )
