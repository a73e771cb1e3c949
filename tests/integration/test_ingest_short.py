"""The short ingest comparison (`python -m loadtests.ingest --short --pairs 1`) runs in the suite.

It starts Surge and the floor on PostgreSQL + Redis, one after the other, so it checks that the
comparison works and that neither loses a call; it asserts no speed target (`make bench` does).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from loadtests import ingest

from tests.integration.test_loadtests_short import _require_servers


@pytest.mark.postgres
@pytest.mark.timeout(90)
async def test_short_ingest_pair_runs_and_records_every_call(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One pair runs, prints both phases, the ratios and the verdicts; every call is recorded."""
    await _require_servers()

    report = await ingest.run(replace(ingest.SHORT, pairs=1))

    printed = capsys.readouterr().out.splitlines()
    assert report.problems == []
    assert not report.broken
    (pair,) = report.pairs
    for phase in (pair.surge, pair.floor):
        assert phase.accepted == ingest.SHORT.calls
        assert phase.failed == 0
        assert phase.calls_per_s > 0
        assert 0 < phase.p50_ms <= phase.p99_ms
        assert phase.cpu_ms_per_call > 0
    assert any(line.startswith("pair 1: Surge ") for line in printed)
    assert [f.label for f in report.figures] == ["calls/s Surge/floor", "p99 Surge/floor"]
    verdict = next(line for line in printed if line.startswith("ingest vs floor (median): "))
    assert verdict.count("PASS") + verdict.count("MISS") == 2
    assert printed[-1].startswith("result: ")
