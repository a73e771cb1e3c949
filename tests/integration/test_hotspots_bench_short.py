"""The hot issues benchmark's short version runs end to end in the suite.

5,000 tickets in the window (and ten times as much history, as many never completed) in a
database of its own, dropped after; it checks the verdict, the rows read and the index used,
not the speed target (`python -m loadtests.hotspots` measures it on 100,000).
"""

from __future__ import annotations

import pytest
from loadtests import hotspots

from tests.integration.test_report_bench_short import _databases_named


@pytest.mark.postgres
@pytest.mark.timeout(120)
async def test_short_hotspots_bench_finds_the_planted_issue_by_the_index() -> None:
    await _databases_named("postgres")  # skip, or fail in CI, without PostgreSQL
    lines: list[str] = []
    result = await hotspots.run(5_000, out=lines.append)
    assert result.problems == []
    assert [figure.label for figure in result.figures] == [
        "province read + verdict",
        "Nanjing read + verdict",
    ]
    assert all(figure.value > 0 for figure in result.figures)
    assert any(line.startswith("  plan: Bitmap Heap Scan") or "Index" in line for line in lines)
    assert "    hot: 0201 (x6.3, 45), 停运 (x6.3, 45)" in lines
