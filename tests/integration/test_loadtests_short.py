"""The short benchmark (`python -m loadtests.bench --short`) runs end to end in the suite.

It starts a real `surge serve` on PostgreSQL + Redis, so it checks that the benchmark works and
that no call is lost under its load; it asserts no speed target (`make bench` measures those).
"""

from __future__ import annotations

import pytest
from loadtests import bench
from loadtests.stack import PG_ADMIN_URL, ping_redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import unavailable


async def _require_servers() -> None:
    """Skip when PostgreSQL or Redis is not reachable (fail instead with CI=true)."""
    engine = create_async_engine(PG_ADMIN_URL)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        unavailable("PostgreSQL", exc)
    finally:
        await engine.dispose()
    try:
        await ping_redis()
    except Exception as exc:
        unavailable("Redis", exc)


@pytest.mark.postgres
@pytest.mark.timeout(150)
async def test_short_benchmark_completes_and_loses_no_call(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every phase runs and prints its figures; every call is accounted for."""
    await _require_servers()

    report = await bench.run(bench.SHORT)

    printed = capsys.readouterr().out
    assert report.problems == []
    assert report.lost_calls == 0
    assert not report.broken
    assert list(report.figures) == ["ingest", "end-to-end 50/s", "end-to-end", "memory"]
    for phase, figures in report.figures.items():
        line = f"{phase}: " + "; ".join(str(figure) for figure in figures)
        assert line in printed.splitlines()
        assert all(("PASS" in str(f)) != ("MISS" in str(f)) for f in figures)
    not_completed = next(f for f in report.figures["end-to-end"] if f.label == "not completed")
    assert not_completed.value == 0
    assert "result: " in printed
