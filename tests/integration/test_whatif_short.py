"""The what-if against the simulator (`python -m loadtests.whatif`), short: a few simulated hours.

In-process, no servers. It checks the comparison runs and prints both sides, and that the
simulator, on Erlang A's own model (one pooled queue), lands near the what-if's figures.
"""

from __future__ import annotations

import sys

import pytest
from loadtests import whatif

from surge.sim.scenario import Scenario
from surge.surges import sizing


def test_the_yangzhou_wave_is_compared_with_the_simulator(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = Scenario.model_validate_json(whatif.SCENARIO.read_bytes())
    rows = whatif.compare(scenario, hours=4)
    # Wave 1 faces Yangzhou alone from 08:00 until wave 2 at 11:00: 392, then 560 calls an hour.
    assert [(row.from_s, row.to_s, row.arrivals_per_hour) for row in rows] == [
        (28_800, 32_400, 392.0),
        (32_400, 39_600, 560.0),
    ]
    for row in rows:
        figures = sizing.Figures(row.arrivals_per_hour, 300.0, 120.0, 45)
        sized = sizing.size(figures, target=0.8, within_s=20.0)
        assert row.agents_needed == sized.agents_needed
        spread = -(-sized.helper_seats_needed // 3)
        seats = [0, 24] + ([3 * spread] if spread not in (0, 8) else [])
        assert [trial.helper_seats for trial in row.trials] == seats  # 3 cities, 8 seats each
        expected = sizing.size(figures, target=0.8, within_s=20.0, helper_seats=seats)
        for trial, model in zip(row.trials, expected.scenarios, strict=True):
            assert trial.model == model
            assert abs(model.service_level - trial.pooled.service_level) < 0.08
            assert abs(model.abandon_rate - trial.pooled.abandon_rate) < 0.05
            # Routed: the wave's cities really lend (a few hours are too noisy to rank it).
            assert (trial.routed is None) == (trial.helper_seats == 0)
            assert trial.pooled.by_helpers == 0
            assert trial.routed is None or trial.routed.by_helpers > 0
    monkeypatch.setattr(sys, "argv", ["whatif", "--hours", "0.5"])
    whatif.main()
    out = capsys.readouterr().out
    assert "09:00-11:00: 560 calls/h" in out
    trials = sum(len(row.trials) for row in rows)
    assert out.count("what-if (Erlang A)") == trials
    assert out.count("simulator, pooled") == trials
    assert out.count("simulator, routed") == trials - len(rows)
