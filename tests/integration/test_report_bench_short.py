"""The daily report benchmark's short version runs end to end in the suite.

It generates a small day (20,000 Nanjing calls) in a database of its own, runs
`surge report daily` in each format as a child process (and the JSON twice more, side by side
against a baseline checkout, here this one) and drops the database; it checks the
rows written and that every figure was measured, not the speed targets (the full size,
`python -m loadtests.report`, measures those).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from loadtests import report
from loadtests.stack import PG_ADMIN_URL
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import unavailable


async def _databases_named(name: str) -> int:
    """How many databases are called `name` (skip, or fail in CI, without PostgreSQL)."""
    engine = create_async_engine(PG_ADMIN_URL)
    try:
        async with engine.connect() as connection:
            found = await connection.execute(
                text("SELECT count(*) FROM pg_database WHERE datname = :name"), {"name": name}
            )
            return int(found.scalar_one())
    except Exception as exc:
        unavailable("PostgreSQL", exc)
        raise  # unreachable: unavailable() skips or fails
    finally:
        await engine.dispose()


@pytest.mark.postgres
@pytest.mark.timeout(120)
async def test_short_report_bench_generates_the_day_and_measures_each_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _databases_named("postgres")

    # This tree as its own baseline: the side-by-side comparison runs (its figures are noise).
    result = await report.run(report.SHORT, baseline=Path(__file__).parents[2])

    assert result.problems == []
    assert not result.broken
    generated = result.generated
    assert generated is not None
    # Rows: every city's day exactly as planned, each call's history, the people and surges.
    assert generated.calls == report.city_calls(report.SHORT)
    assert generated.calls[report.HOST] == 20_000
    assert len(generated.calls) == 13
    assert 2 * generated.total_calls < generated.events < 5 * generated.total_calls
    assert generated.agents == sum(report.city_agents().values()) == 1_702
    assert generated.users == generated.agents + 1  # and the coordinator
    assert (generated.surges, generated.waves, generated.wave_cities) == (3, 6, 19)
    # The mix: Nanjing mostly abandoned, a share of its answered calls taken by helper cities.
    host_calls = generated.calls[report.HOST]
    assert 0.15 < generated.host_answered / host_calls < 0.21
    assert 0.10 < generated.host_by_helpers / generated.host_answered < 0.20
    assert 0.15 < generated.host_quick_abandoned / host_calls < 0.35
    assert generated.feedback is not None
    assert generated.feedback > 0
    # Each format ran as its own process, was measured, and gives Nanjing's calls.
    assert list(result.runs) == list(report.FORMATS)
    for run in result.runs.values():
        assert 0 < run.seconds < report.SHORT.report_timeout_s
        assert 20 < run.peak_rss_mb < 4_000
        assert not math.isnan(run.seconds)
        assert run.size_bytes > 0
        assert run.host_received == host_calls
    printed = capsys.readouterr().out.splitlines()
    assert any(line.startswith("generate: 22,820 calls (Nanjing 20,000)") for line in printed)
    for fmt in report.FORMATS:
        assert any(line.startswith(f"report: province {fmt} ") for line in printed)
    assert any(line.startswith("result: ") and "0 problems" in line for line in printed)
    assert any(line.startswith("  unique_callers queries alone: ") for line in printed)
    assert any(line.startswith("  json without the caller figures (") for line in printed)
    assert await _databases_named(result.database) == 0  # dropped at the end
