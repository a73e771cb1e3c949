"""Fixtures for the API suites."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Backend
from tests.helpers import LiveService, run_service


@pytest.fixture
async def backend_short_offer(backend: Backend) -> AsyncIterator[LiveService]:
    """A live service whose offers expire after one second."""
    async with run_service(backend.settings(offer_timeout_s=1.0)) as live:
        yield live
