"""The short required-scripts measurement (`python -m loadtests.required --short`) runs in the
suite: a real `surge serve` on PostgreSQL + Redis, 10 simulated consoles, one required publish.

It checks that every console acknowledged, that no ack came before the console had displayed
the book and read it, and that every call posted was offered; `make bench` measures the figures
at size.
"""

from __future__ import annotations

import pytest
from loadtests import required

from tests.integration.test_loadtests_short import _require_servers


@pytest.mark.postgres
@pytest.mark.timeout(90)
async def test_short_required_publish_is_acknowledged_by_every_console() -> None:
    await _require_servers()

    result = await required.run(required.SHORT)

    assert not result.broken
    assert result.unoffered == 0
    assert len(result.acks_s) == required.SHORT.agents
    assert min(result.acks_s) >= required.SHORT.reading_s[0]  # displayed, then read
    assert result.calls >= required.SHORT.rate * (required.SHORT.before_s + required.SHORT.after_s)
    line = required.report(result, required.SHORT)
    assert line.startswith(f"required scripts: {required.SHORT.agents} agents, ")
    assert "offers delayed" in line
