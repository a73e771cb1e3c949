"""The short idle-socket measurement (`python -m loadtests.sockets --short`) runs in the suite.

It starts a real `surge serve` (and the baseline) on PostgreSQL + Redis, so it checks that the
measurement works and that idle consoles stay connected; it asserts no memory target (`make
bench` measures that with 5,000 sockets).
"""

from __future__ import annotations

import pytest
from loadtests import sockets

from tests.integration.test_loadtests_short import _require_servers


@pytest.mark.postgres
@pytest.mark.timeout(90)
async def test_short_socket_measurement_reads_both_services(
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _require_servers()

    report = await sockets.run(sockets.SHORT)

    printed = capsys.readouterr().out.splitlines()
    assert report.problems == []
    assert not report.broken
    assert [r.variant for r in report.readings] == ["surge", "baseline"]
    assert all(r.sockets == sockets.SHORT.sockets for r in report.readings)
    assert all(r.after_kib > r.before_kib for r in report.readings)
    assert all(r.idle_cpu_pct > 0 for r in report.readings)  # the pings cost something
    verdict = printed[-1]
    assert verdict.startswith(f"sockets: {sockets.SHORT.sockets} idle agent sockets at ")
    assert ("PASS" in verdict) != ("MISS" in verdict)
