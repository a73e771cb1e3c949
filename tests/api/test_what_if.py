"""POST /surges/what-if: sizing checked against Erlang C and Erlang A computed here, independently.

Erlang C by the textbook formula (factorials, small N); Erlang A by truncating the birth-death
chain of the callers in the system, and following a tagged caller down the queue (a pure-death
chain: those ahead leave by service or by hanging up, it hangs up itself at rate theta), its
answer-time distribution by uniformization.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest

from surge.auth.models import Role
from tests.api.test_bad_input import error_of
from tests.conftest import Backend
from tests.helpers import LiveService, run_service

NANJING, YANGZHOU = "320100", "321000"


# --- the independent models ----------------------------------------------------------------------
def erlang_c(agents: int, erlangs: float, aht_s: float, within_s: float) -> tuple[float, float]:
    """Service level within `within_s` and ASA of M/M/N (textbook, math.factorial)."""
    if agents <= erlangs:
        return 0.0, math.inf
    top = erlangs**agents / math.factorial(agents) * agents / (agents - erlangs)
    bottom = sum(erlangs**k / math.factorial(k) for k in range(agents)) + top
    wait = top / bottom
    level = 1 - wait * math.exp(-(agents - erlangs) * within_s / aht_s)
    return level, wait * aht_s / (agents - erlangs)


def erlang_a(
    agents: int, rate: float, aht_s: float, patience_s: float, within_s: float
) -> tuple[float, float, float]:
    """Service level within `within_s`, ASA of the answered and abandon rate of M/M/N+M."""
    mu, theta = 1 / aht_s, 1 / patience_s
    weights = [1.0]  # pi_n / pi_0, until negligible past N
    n = 0
    while n < agents or weights[-1] > 1e-18 * max(weights):
        n += 1
        weights.append(weights[-1] * rate / (min(n, agents) * mu + max(0, n - agents) * theta))
    total = sum(weights)
    pi = [w / total for w in weights]
    queued = pi[agents:]  # an arrival finding k = 0, 1, ... callers queued ahead
    abandon = theta * sum(k * p for k, p in enumerate(queued)) / rate
    # A tagged caller with j ahead leaves state j at r_j + theta: r_j = N mu + j theta (one ahead
    # served or gone: down to j - 1, or answered from j = 0), theta (it hangs up itself).
    out = [agents * mu + j * theta for j in range(len(queued))]
    answered, waits = 0.0, 0.0
    chance, mean = 1.0, 0.0
    for j, p in enumerate(queued):  # answered at all, and its mean wait, in closed form
        chance *= out[j] / (out[j] + theta)
        mean += 1 / (out[j] + theta)
        answered += p * chance
        waits += p * chance * mean
    # Within t, by uniformization: g[j] = P(answered within the jumps so far | j ahead).
    fastest = max(out) + theta
    steps = math.ceil(fastest * within_s + 12 * math.sqrt(fastest * within_s + 1) + 30)
    g = [0.0] * len(queued)
    weight = math.exp(-fastest * within_s)
    in_time = [0.0] * len(queued)
    for m in range(steps):
        g = [
            (out[j] / fastest) * (g[j - 1] if j else 1.0) + (1 - (out[j] + theta) / fastest) * g[j]
            for j in range(len(queued))
        ]
        weight *= fastest * within_s / (m + 1)
        in_time = [a + weight * b for a, b in zip(in_time, g, strict=True)]
    # P(answered by t) = sum over m >= 1 of Poisson(m; fastest t) P(answered within m jumps).
    idle = sum(pi[:agents])
    level = idle + sum(p * v for p, v in zip(queued, in_time, strict=True))
    asa = waits / (idle + answered) if idle + answered > 0 else math.inf
    return level, asa, abandon


# --- the service -------------------------------------------------------------------------------
@pytest.fixture
async def quick(backend: Backend) -> AsyncIterator[LiveService]:
    """A service that surveys pressure five times a second."""
    async with run_service(backend.settings(pressure_interval_s=0.2)) as live:
        yield live


async def what_if(service: LiveService, user: str, **body: Any) -> dict[str, Any]:
    response = await service.http.post(
        "/api/v1/surges/what-if", json=body, headers=service.auth(user)
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def assert_scenario(scenario: dict[str, Any], level: float, asa: float, abandon: float) -> None:
    assert scenario["service_level"] == pytest.approx(level, abs=2e-4)
    assert scenario["abandon_rate"] == pytest.approx(abandon, abs=2e-4)
    if math.isinf(asa):
        assert scenario["asa_s"] is None
    else:
        assert scenario["asa_s"] == pytest.approx(asa, abs=0.06)


CASES_C = [  # (arrivals an hour, AHT, target, within, helper seats)
    (60.0, 180.0, 0.8, 20.0, [0, 2, 3, 4, 6]),
    (300.0, 240.0, 0.9, 30.0, [18, 21, 25, 30]),
    (40.0, 300.0, 0.95, 0.0, [1, 4, 8]),
]
CASES_A = [  # (arrivals an hour, AHT, patience, target, within, own agents, helper seats)
    (560.0, 300.0, 120.0, 0.8, 20.0, 45, [0, 8, 24, 40]),  # Yangzhou, 2021: wave 1 at 3 x 8
    (90.0, 200.0, 60.0, 0.8, 20.0, 0, [0, 2, 5, 9]),
    (200.0, 360.0, 30.0, 0.7, 10.0, 5, [0, 10, 20]),
]


async def test_erlang_c_when_patience_is_unknown(quick: LiveService) -> None:
    coordinator = await quick.add_user(Role.COORDINATOR)
    for arrivals, aht, target, within, seats in CASES_C:
        result = await what_if(
            quick,
            coordinator,
            host_city=NANJING,
            arrivals_per_hour=arrivals,
            aht_s=aht,
            helper_seats=seats,
            target={"service_level": target, "within_s": within},
        )
        erlangs = arrivals * aht / 3600
        needed = next(n for n in range(1, 200) if erlang_c(n, erlangs, aht, within)[0] >= target)
        assert result["method"] == "erlang_c"
        # Nobody of the host is logged in: every agent needed is a helper seat.
        assert result["agents_needed"] == needed
        assert result["helper_seats_needed"] == needed
        assert [s["helper_seats"] for s in result["scenarios"]] == seats
        for scenario, n in zip(result["scenarios"], seats, strict=True):
            level, asa = erlang_c(n, erlangs, aht, within)
            assert_scenario(scenario, level, asa, 0.0)
        assert result["inputs"]["patience_s"] == {"value": None, "source": "unknown"}
        assert result["inputs"]["aht_s"] == {"value": aht, "source": "given"}


async def test_erlang_a_with_a_patience(quick: LiveService) -> None:
    coordinator = await quick.add_user(Role.COORDINATOR)
    for arrivals, aht, patience, target, within, own, seats in CASES_A:
        result = await what_if(
            quick,
            coordinator,
            host_city=YANGZHOU,
            arrivals_per_hour=arrivals,
            aht_s=aht,
            patience_s=patience,
            own_agents=own,
            helper_seats=seats,
            target={"service_level": target, "within_s": within},
        )
        rate = arrivals / 3600
        needed = next(
            n for n in range(1, 300) if erlang_a(n, rate, aht, patience, within)[0] >= target
        )
        assert result["method"] == "erlang_a"
        assert result["agents_needed"] == needed
        assert result["helper_seats_needed"] == max(0, needed - own)
        for scenario, n in zip(result["scenarios"], seats, strict=True):
            if own + n == 0:
                assert_scenario(scenario, 0.0, math.inf, 1.0)
            else:
                assert_scenario(scenario, *erlang_a(own + n, rate, aht, patience, within))
        assert result["inputs"]["own_agents"] == {"value": own, "source": "given"}


async def test_the_default_ladder_and_a_target_of_one(quick: LiveService) -> None:
    coordinator = await quick.add_user(Role.COORDINATOR)
    result = await what_if(
        quick,
        coordinator,
        host_city=YANGZHOU,
        arrivals_per_hour=560.0,
        aht_s=300.0,
        patience_s=120.0,
        own_agents=45,
        target={"service_level": 0.8, "within_s": 20},
    )
    needed = result["helper_seats_needed"]
    assert needed > 0
    seats = [s["helper_seats"] for s in result["scenarios"]]
    assert seats == sorted({math.ceil(share * needed) for share in (0, 0.25, 0.5, 0.75, 1, 1.25)})
    levels = [s["service_level"] for s in result["scenarios"]]
    assert levels == sorted(levels)
    at_needed = result["scenarios"][seats.index(needed)]
    assert at_needed["service_level"] >= 0.8
    # Everyone in time is read as one caller in a million late: more agents, still finite.
    everyone = await what_if(
        quick,
        coordinator,
        host_city=YANGZHOU,
        arrivals_per_hour=560.0,
        aht_s=300.0,
        own_agents=45,
        target={"service_level": 1, "within_s": 20},
    )
    erlangs = 560 * 300 / 3600
    assert everyone["agents_needed"] == next(
        n for n in range(47, 200) if erlang_c(n, erlangs, 300, 20)[0] >= 1 - 1e-6
    )
    # No call arriving needs no agent.
    quiet = await what_if(quick, coordinator, host_city=YANGZHOU, arrivals_per_hour=0.0)
    assert (quiet["agents_needed"], quiet["helper_seats_needed"]) == (0, 0)
    assert quiet["scenarios"] == [
        {"helper_seats": 0, "service_level": 1.0, "asa_s": 0.0, "abandon_rate": 0.0}
    ]


async def test_live_readings_fill_in_the_missing_figures(quick: LiveService) -> None:
    coordinator = await quick.add_user(Role.COORDINATOR)
    cti = await quick.add_user(Role.CTI)
    # Nothing arrived yet: nothing to size without figures.
    response = await quick.http.post(
        "/api/v1/surges/what-if", json={"host_city": NANJING}, headers=quick.auth(coordinator)
    )
    assert "arrivals_per_hour" in error_of(response, 422, "invalid_request")["message"]
    # One call answered and completed (a live handling time), then 20 more waiting.
    answerer = await quick.add_user(Role.AGENT, NANJING)
    await quick.answer_call(cti, answerer, NANJING)
    calls = [await quick.post_call(cti, NANJING) for _ in range(20)]
    agents = [await quick.add_user(Role.AGENT, NANJING) for _ in range(2)]
    async with quick.console(agents[0]) as first, quick.console(agents[1]) as second:
        await first.available()
        await second.available()
        await asyncio.sleep(0.6)  # a survey after the calls and the agents
        result = await what_if(quick, coordinator, host_city=NANJING)
        inputs = result["inputs"]
        assert inputs["arrivals_per_hour"] == {"value": 84.0, "source": "live"}  # 21 in 15 min
        assert inputs["own_agents"] == {"value": 2, "source": "live"}
        assert inputs["aht_s"]["source"] == "live"
        assert 1 <= inputs["aht_s"]["value"] < 30  # held at 1 s at least
        assert inputs["patience_s"] == {"value": None, "source": "unknown"}
        assert result["method"] == "erlang_c"
        assert (inputs["service_level"], inputs["within_s"]) == (0.8, 20.0)  # the settings'
        # Ten callers hang up: their patience is measured (the waits over the abandons).
        for call in calls[-10:]:
            response = await quick.http.post(
                f"/api/v1/calls/{call['id']}/abandon", headers=quick.auth(cti)
            )
            assert response.status_code == 200, response.text
        await asyncio.sleep(0.6)
        live = await what_if(quick, coordinator, host_city=NANJING, aht_s=240.0, helper_seats=[3])
    patience = live["inputs"]["patience_s"]
    assert patience["source"] == "live"
    assert 1 <= patience["value"] < 120  # 20 callers waited at most a minute, over 10 abandons
    assert live["method"] == "erlang_a"
    assert live["inputs"]["aht_s"] == {"value": 240.0, "source": "given"}
    level, asa, abandon = erlang_a(2 + 3, 84 / 3600, 240.0, patience["value"], 20.0)
    assert_scenario(live["scenarios"][0], level, asa, abandon)


async def test_bad_figures_are_refused(quick: LiveService) -> None:
    coordinator = await quick.add_user(Role.COORDINATOR)
    admin = await quick.add_user(Role.CITY_ADMIN, YANGZHOU)
    good: dict[str, Any] = {"host_city": YANGZHOU, "arrivals_per_hour": 100.0, "aht_s": 300.0}
    post = quick.http.post
    url = "/api/v1/surges/what-if"
    auth = quick.auth(coordinator)
    error_of(await post(url, json=good, headers=quick.auth(admin)), 403, "forbidden")
    bad: list[dict[str, Any]] = [
        {"arrivals_per_hour": -1.0},
        {"arrivals_per_hour": 100_001.0},
        {"arrivals_per_hour": "100"},
        {"arrivals_per_hour": float("inf")},
        {"arrivals_per_hour": 1e-10},
        {"aht_s": 0.0},
        {"aht_s": 0.5},
        {"aht_s": -5.0},
        {"aht_s": 3_601.0},
        {"patience_s": 0.0},
        {"patience_s": 0.5},
        {"own_agents": -1},
        {"helper_seats": [-1]},
        {"helper_seats": [20_001]},
        {"helper_seats": []},
        {"helper_seats": list(range(21))},
        {"helper_seats": [1.5]},
        {"target": {"service_level": 0.0, "within_s": 20.0}},
        {"target": {"service_level": 1.01, "within_s": 20.0}},
        {"target": {"service_level": 0.8, "within_s": -1.0}},
        {"target": {"service_level": 0.8}},
        {"host_city": "nj"},
        {"surprise": 1},
        # Within every bound alone, but 100,000 Erlangs together.
        {"arrivals_per_hour": 100_000.0, "aht_s": 3_600.0},
    ]
    for change in bad:
        body = {**good, **change}
        # As a client might send it: json.dumps writes infinities as `Infinity`.
        response = await post(url, content=json.dumps(body), headers=auth)
        error_of(response, 422, "invalid_request")
    error_of(
        await post(url, json={**good, "host_city": "999999"}, headers=auth), 422, "unknown_city"
    )
    assert (await post(url, json=good, headers=auth)).status_code == 200


async def test_the_pressure_board_adds_the_province_up(quick: LiveService) -> None:
    coordinator = await quick.add_user(Role.COORDINATOR)
    cti = await quick.add_user(Role.CTI)
    await asyncio.gather(*(quick.post_call(cti, NANJING) for _ in range(30)))
    await asyncio.sleep(0.6)
    response = await quick.http.get("/api/v1/pressure", headers=quick.auth(coordinator))
    board = response.json()
    province = board["province"]
    cities = board["cities"]
    for field in ("capacity_per_hour", "demand_per_hour", "shortfall_per_hour"):
        assert province[field] == pytest.approx(sum(c[field] for c in cities), abs=0.2)
    # 30 calls in the quarter, 120 an hour, and nobody logged in anywhere: all of it unmet.
    assert (province["demand_per_hour"], province["capacity_per_hour"]) == (120.0, 0.0)
    assert province["shortfall_per_hour"] == 120.0
    assert province["waiting"] == 30
    assert province["cities_over"] == sum(c["over"] for c in cities)
