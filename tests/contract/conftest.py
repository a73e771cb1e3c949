"""Fixtures that run the hot-state contract suite against every adapter."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import NoReturn

import pytest
import redis.asyncio as aioredis

from surge.errors import StateUnavailable
from surge.state.base import HotState
from surge.state.memory import InMemoryState
from surge.state.redis import RedisState

REDIS_URL = os.environ.get("SURGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

# Once Redis has failed to answer, later tests skip (or fail) at once instead of retrying.
_redis_down: list[str] = []


def _redis_state(prefix: str) -> RedisState:
    # A short connect timeout makes an unreachable server a quick skip, not a long hang.
    return RedisState(aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=2), prefix=prefix)


def _without_redis(reason: str) -> NoReturn:
    message = f"Redis at {REDIS_URL} is unreachable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)  # CI provides Redis: its absence is a broken pipeline
    pytest.skip(message)


@dataclass
class Backend:
    """The adapter under test, and a way to open more service instances on the same data."""

    kind: str
    state: HotState
    prefix: str = ""
    _peers: list[HotState] = field(default_factory=list)

    def peer(self) -> HotState:
        """Another service instance sharing `state`'s data (memory has only one: itself)."""
        if self.kind == "memory":
            return self.state
        other = _redis_state(self.prefix)
        self._peers.append(other)
        return other

    async def close_peers(self) -> None:
        """Close the extra instances (their data is the main state's to reset)."""
        for other in self._peers:
            await other.close()


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """One adapter, empty, removed without trace after the test."""
    if request.param == "memory":
        memory = InMemoryState()
        yield Backend("memory", memory)
        await memory.close()
        return
    if _redis_down:
        _without_redis(_redis_down[0])
    prefix = f"surge-test-{uuid.uuid4().hex}:"
    state = _redis_state(prefix)
    try:
        await state.ping()
    except StateUnavailable as exc:
        await state.close()
        _redis_down.append(str(exc))
        _without_redis(str(exc))
    chosen = Backend("redis", state, prefix)
    try:
        yield chosen
    finally:
        await chosen.close_peers()
        await state.reset()
        await state.close()


@pytest.fixture
def state(backend: Backend) -> HotState:
    """The adapter under test."""
    return backend.state
