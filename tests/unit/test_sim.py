"""The simulator: agreement with Erlang C, determinism, and the surge rules on virtual time."""

from __future__ import annotations

import statistics
from typing import Any

import pytest
from pydantic import ValidationError

from surge.erlang import Load, asa_s, service_level
from surge.sim.engine import simulate
from surge.sim.scenario import Scenario

NANJING, XUZHOU, SUZHOU = "320100", "320300", "320500"


def one_city(seed: int, *, duration: float, per_hour: float, agents: int, aht: float) -> Scenario:
    """A single city with steady Poisson arrivals, no abandonment and no surge."""
    return Scenario.model_validate(
        {
            "seed": seed,
            "duration_s": duration,
            "cities": [
                {
                    "code": NANJING,
                    "agents": agents,
                    "aht_s": aht,
                    "arrivals": [{"from_s": 0, "to_s": duration, "per_hour": per_hour}],
                }
            ],
        }
    )


def city(result: dict[str, Any], code: str) -> dict[str, Any]:
    """One city's row of a result."""
    row: dict[str, Any] = next(row for row in result["cities"] if row["code"] == code)
    return row


def test_one_city_agrees_with_erlang_c_within_statistical_error() -> None:
    # 10 agents, 100 s calls, 8 Erlangs offered (occupancy 0.8); 12 independent long runs.
    runs = [
        city(simulate(one_city(seed, duration=200_000, per_hour=288, agents=10, aht=100)), NANJING)
        for seed in range(12)
    ]
    load = Load(rate_per_s=288 / 3600, aht_s=100)
    for metric, expected in (
        ("asa_s", asa_s(10, load)),
        ("service_level", service_level(10, load, 20)),
    ):
        values = [run[metric] for run in runs]
        mean = statistics.fmean(values)
        error = statistics.stdev(values) / len(values) ** 0.5
        assert error < 0.05 * expected, f"{metric}: too noisy to tell ({error})"
        assert abs(mean - expected) < 4 * error, f"{metric}: {mean} vs Erlang C {expected}"
    assert all(run["abandoned"] == 0 for run in runs)
    assert statistics.fmean(run["occupancy"] for run in runs) == pytest.approx(0.8, abs=0.02)


def test_the_same_seed_gives_the_same_result() -> None:
    scenario = one_city(7, duration=20_000, per_hour=300, agents=8, aht=90)
    assert simulate(scenario) == simulate(scenario)
    other = one_city(8, duration=20_000, per_hour=300, agents=8, aht=90)
    assert simulate(other) != simulate(scenario)


def surge_scenario(**surge: Any) -> Scenario:
    """Nanjing overloaded 5x its capacity; Xuzhou and Suzhou quiet, with agents to spare."""
    plan: dict[str, Any] = {
        "at_s": 3600,
        "host_city": NANJING,
        "waves": [{"at_s": 3600, "cities": [XUZHOU, SUZHOU], "seats_per_city": 4}],
        "overflow_after_s": 0,
    }
    plan.update(surge)
    return Scenario.model_validate(
        {
            "seed": 3,
            "duration_s": 4 * 3600,
            "cities": [
                {
                    "code": NANJING,
                    "agents": 5,
                    "aht_s": 180,
                    "patience_s": 300,
                    "arrivals": [{"from_s": 0, "to_s": 14_400, "per_hour": 500}],
                },
                {
                    "code": XUZHOU,
                    "agents": 10,
                    "aht_s": 180,
                    "arrivals": [{"from_s": 0, "to_s": 14_400, "per_hour": 20}],
                },
                {
                    "code": SUZHOU,
                    "agents": 10,
                    "aht_s": 180,
                    "arrivals": [{"from_s": 0, "to_s": 14_400, "per_hour": 20}],
                },
            ],
            "surges": [plan],
        }
    )


def test_helpers_answer_the_hosts_overflow_within_their_quota() -> None:
    result = simulate(surge_scenario())
    host = city(result, NANJING)
    assert host["answered_by_helpers"] > 0
    helped = {row["city"]: row for row in result["helpers"]}
    assert set(helped) == {XUZHOU, SUZHOU}
    assert all(row["host"] == NANJING for row in helped.values())
    assert all(1 <= row["peak_seats"] <= 4 for row in helped.values())
    assert sum(row["answered"] for row in helped.values()) == host["answered_by_helpers"]
    # The helpers' own callers are still served well.
    assert city(result, XUZHOU)["service_level"] > 0.9


def test_surges_make_the_difference() -> None:
    with_help = city(simulate(surge_scenario()), NANJING)
    alone = city(
        simulate(
            surge_scenario(
                at_s=10**6, waves=[{"at_s": 10**6, "cities": [XUZHOU], "seats_per_city": 4}]
            )
        ),
        NANJING,
    )
    assert alone["answered_by_helpers"] == 0
    assert with_help["connection_rate"] > alone["connection_rate"] + 0.1


def test_a_helper_busy_with_its_own_calls_does_not_help() -> None:
    scenario = surge_scenario().model_copy(deep=True)
    data = scenario.model_dump()
    for row in data["cities"]:
        if row["code"] != NANJING:  # helpers at 100 % of their own capacity: queues never empty
            row["arrivals"] = [{"from_s": 0, "to_s": 14_400, "per_hour": 400}]
    result = simulate(Scenario.model_validate(data))
    assert city(result, NANJING)["answered_by_helpers"] < 0.02 * city(result, NANJING)["answered"]


def test_overflow_threshold_keeps_fresh_calls_home() -> None:
    patient = city(simulate(surge_scenario(overflow_after_s=120)), NANJING)
    eager = city(simulate(surge_scenario()), NANJING)
    assert 0 < patient["answered_by_helpers"] < eager["answered_by_helpers"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"host_city": "999999"}, "not among the cities"),
        ({"waves": [{"at_s": 0, "cities": [NANJING], "seats_per_city": 1}]}, "its own helper"),
        (
            {
                "waves": [
                    {"at_s": 0, "cities": [XUZHOU], "seats_per_city": 1},
                    {"at_s": 9, "cities": [XUZHOU], "seats_per_city": 1},
                ]
            },
            "two waves",
        ),
        ({"waves": [{"at_s": 0, "cities": ["321300"], "seats_per_city": 1}]}, "not among"),
        ({"waves": [{"at_s": 0, "cities": [XUZHOU], "seats_per_city": 0}]}, "greater than"),
        ({"waves": []}, "at least 1"),
    ],
)
def test_bad_scenarios_are_refused_with_a_reason(change: dict[str, Any], message: str) -> None:
    data = surge_scenario().model_dump()
    data["surges"][0].update(change)
    with pytest.raises(ValidationError, match=message):
        Scenario.model_validate(data)


def test_bad_arrival_windows_and_duplicate_cities_are_refused() -> None:
    data = surge_scenario().model_dump()
    data["cities"][0]["arrivals"] = [{"from_s": 100, "to_s": 100, "per_hour": 5}]
    with pytest.raises(ValidationError, match="end after it starts"):
        Scenario.model_validate(data)
    data = surge_scenario().model_dump()
    data["cities"].append(data["cities"][0])
    with pytest.raises(ValidationError, match="appear once"):
        Scenario.model_validate(data)
