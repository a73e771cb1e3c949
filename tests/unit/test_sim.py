"""The simulator: agreement with Erlang C, determinism, and the surge rules on virtual time."""

from __future__ import annotations

import statistics
from pathlib import Path
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


def test_a_wrap_up_keeps_each_agent_occupied_after_its_calls() -> None:
    def run(wrap_up_s: float) -> dict[str, Any]:
        scenario = one_city(3, duration=100_000, per_hour=288, agents=10, aht=80)
        plan = scenario.cities[0].model_copy(update={"wrap_up_s": wrap_up_s})
        return city(simulate(scenario.model_copy(update={"cities": [plan]})), NANJING)

    without, with_wrap_up = run(0), run(20)
    # 288 calls an hour of 80 s: 6.4 Erlangs; with 20 s of wrap-up each, 8.
    assert without["occupancy"] == pytest.approx(0.64, abs=0.02)
    assert with_wrap_up["occupancy"] == pytest.approx(0.8, abs=0.02)
    assert with_wrap_up["asa_s"] > 2 * without["asa_s"]
    assert with_wrap_up["service_level"] < without["service_level"]


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
        ({"severity": 0}, "greater than 0"),
        ({"severity": 11}, "less than or equal to 10"),
        (
            {"waves": [{"at_s": 0, "cities": [XUZHOU], "seats_per_city": 1, "reserve": -1}]},
            "greater",
        ),
        ({"protection_floor": 3}, "Extra inputs"),
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


PROTECTION_SCENARIO = Path(__file__).parents[2] / "loadtests/scenarios/lender_protection.json"


def protection_runs() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The lender-protection scenario with its guard, without it, and with no surge at all."""
    guarded = Scenario.model_validate_json(PROTECTION_SCENARIO.read_bytes())
    unguarded = guarded.model_copy(update={"protection": None})
    alone = guarded.model_copy(update={"surges": []})
    return simulate(guarded), simulate(unguarded), simulate(alone)


def test_the_guard_keeps_helpers_near_their_target_at_it_while_the_host_gets_help() -> None:
    guarded, unguarded, alone = protection_runs()
    helpers = (XUZHOU, SUZHOU)
    lending = "own_service_level_while_lending"
    # Unguarded, lending as much as the quota allows takes a helper under its own 80 %.
    assert min(city(unguarded, code)[lending] for code in helpers) < 0.8
    # Guarded, each stays at or above it...
    for code in helpers:
        assert city(guarded, code)[lending] >= 0.8
        assert city(guarded, code)["service_level"] >= 0.8
    # ...while the host still gets most of the help.
    host, host_alone = city(guarded, NANJING), city(alone, NANJING)
    assert host["answered_by_helpers"] > 0.7 * city(unguarded, NANJING)["answered_by_helpers"]
    assert host["answered"] > 1.8 * host_alone["answered"]
    assert lending not in city(guarded, NANJING)  # the host lends nothing


def test_a_reserve_keeps_helper_agents_for_their_own_callers() -> None:
    def helpers_service(reserve: int) -> float:
        data = surge_scenario().model_dump()
        data["cities"][1]["arrivals"] = [{"from_s": 0, "to_s": 14_400, "per_hour": 120}]
        data["cities"][1]["patience_s"] = 300
        data["surges"][0]["waves"][0]["reserve"] = reserve
        result = simulate(Scenario.model_validate(data))
        return float(city(result, XUZHOU)["own_service_level_while_lending"])

    assert helpers_service(2) > helpers_service(0) + 0.1


def test_severity_shares_a_helper_between_two_hosts() -> None:
    def helped(severity: float) -> dict[str, int]:
        data = surge_scenario().model_dump()
        yangzhou = {**data["cities"][0], "code": "321000"}
        data["cities"].append(yangzhou)
        data["surges"].append({**data["surges"][0], "host_city": "321000",
                               "severity": severity})  # fmt: skip
        rows = simulate(Scenario.model_validate(data))["helpers"]
        return {row["host"]: row["answered"] for row in rows if row["city"] == XUZHOU}

    even = helped(1.0)
    # Equal hosts sharing a helper get about the same help (not all of it to the older surge).
    assert abs(even[NANJING] - even["321000"]) < 0.2 * even[NANJING]
    weighted = helped(3.0)
    assert weighted["321000"] > weighted[NANJING]


def overloaded_host(*, surge_callbacks: bool, scenario_callbacks: bool = False) -> Scenario:
    """Nanjing overloaded with impatient callers, a surge with one helper wave from 1800 s."""
    return Scenario.model_validate(
        {
            "seed": 7,
            "duration_s": 14_400,
            "callbacks": scenario_callbacks,
            "cities": [
                {
                    "code": NANJING,
                    "agents": 5,
                    "aht_s": 120,
                    "patience_s": 60,
                    "arrivals": [{"from_s": 0, "to_s": 7_200, "per_hour": 300}],
                },
                {"code": SUZHOU, "agents": 4, "aht_s": 120, "patience_s": 60},
            ],
            "surges": [
                {
                    "at_s": 1_800,
                    "host_city": NANJING,
                    "callbacks": surge_callbacks,
                    "waves": [{"at_s": 1_800, "cities": [SUZHOU], "seats_per_city": 4}],
                }
            ],
        }
    )


def test_callbacks_serve_the_callers_who_gave_up() -> None:
    without = city(simulate(overloaded_host(surge_callbacks=False)), NANJING)
    with_ = city(simulate(overloaded_host(surge_callbacks=True)), NANJING)
    assert without["callbacks_reached"] == 0
    assert with_["callbacks_reached"] > 100
    # The callers called back are answered instead of lost: arrivals stop at 7200 s and the
    # agents work the callbacks off before the end of the day. (Kept at their places, ahead
    # of later callers, they make those wait longer: the service level within 20 s drops.)
    assert with_["connection_rate"] > without["connection_rate"] + 0.05
    assert with_["answered"] + with_["abandoned"] == with_["offered"]
    assert with_["service_level"] < without["service_level"]
    # Before the surge (and its callbacks) started, callers did give up.
    assert with_["abandoned"] > 0


def test_the_scenarios_callbacks_hold_for_every_city_from_the_start() -> None:
    everywhere = city(
        simulate(overloaded_host(surge_callbacks=False, scenario_callbacks=True)), NANJING
    )
    surge_only = city(simulate(overloaded_host(surge_callbacks=True)), NANJING)
    assert everywhere["callbacks_reached"] > surge_only["callbacks_reached"]
    # Only the short abandons (under 5 s) are lost.
    assert everywhere["abandoned"] < surge_only["abandoned"]
    assert city(simulate(overloaded_host(surge_callbacks=False)), SUZHOU)["callbacks_reached"] == 0
