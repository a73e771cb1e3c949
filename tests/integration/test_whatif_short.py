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
        assert row.seats == 24  # Xuzhou, Suzhou, Lianyungang, 8 seats each
        figures = sizing.Figures(row.arrivals_per_hour, 300.0, 120.0, 45)
        expected = sizing.size(figures, target=0.8, within_s=20.0, helper_seats=[0, 24])
        assert row.model == expected.scenarios
        for model, pooled in zip(row.model, row.pooled, strict=True):
            assert abs(model.service_level - pooled.service_level) < 0.08
            assert abs(model.abandon_rate - pooled.abandon_rate) < 0.05
        # Routed through helpers after a 10 s overflow it cannot beat one pooled queue by much.
        assert row.routed.service_level <= row.pooled[1].service_level + 0.01
    monkeypatch.setattr(sys, "argv", ["whatif", "--hours", "0.5"])
    whatif.main()
    out = capsys.readouterr().out
    assert "09:00-11:00: 560 calls/h" in out
    assert out.count("what-if (Erlang A)") == 4
    assert out.count("simulator, pooled") == 4
    assert out.count("simulator, routed") == 2
