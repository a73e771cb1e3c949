"""The duty-cycle baseline (`python -m loadtests.duty`) runs and prints a ratio per pair."""

from __future__ import annotations

import re

import pytest
from loadtests import duty


def test_the_short_duty_cycle_run_prints_its_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    assert duty.main(["--rates", "50", "--pairs", "2", "--seconds", "0.2"]) == 0
    out = capsys.readouterr().out
    ratios = [float(r) for r in re.findall(r"pair \d: .* ratio ([0-9.]+)", out)]
    assert len(ratios) == 2
    assert all(ratio > 0 for ratio in ratios)
    assert re.search(r"50/s: median ratio [0-9.]+", out)
