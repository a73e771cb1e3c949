"""Fixtures that run the hot-state contract suite against every adapter: in-process, Redis, and
Redis on a three-master Redis Cluster of the session's own (tests/conftest.py, `redis_cluster`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import NoReturn

import pytest

from surge.errors import StateUnavailable
from surge.state.base import HotState
from surge.state.memory import InMemoryState
from surge.state.redis import RedisState
from tests.conftest import REDIS_URL, redis_client
from tests.helpers import PrivateCluster

# Once Redis has failed to answer, later tests skip (or fail) at once instead of retrying.
_redis_down: list[str] = []


def _redis_state(
    prefix: str,
    url: str = REDIS_URL,
    *,
    cluster: bool = False,
    alone_after_s: float | None = None,
) -> RedisState:
    # A short connect timeout makes an unreachable server a quick skip, not a long hang.
    client = redis_client(url, cluster=cluster, socket_connect_timeout=2)
    instance = f"test-{uuid.uuid4().hex[:8]}"
    return RedisState(client, prefix=prefix, instance=instance, alone_after_s=alone_after_s)


def _without_redis(reason: str) -> NoReturn:
    message = f"Redis is unreachable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)  # CI provides Redis: its absence is a broken pipeline
    pytest.skip(message)


@dataclass
class Backend:
    """The adapter under test, and a way to open more service instances on the same data."""

    kind: str
    state: HotState
    prefix: str = ""
    url: str = REDIS_URL
    _peers: list[HotState] = field(default_factory=list)

    def peer(self, *, alone_after_s: float | None = None) -> HotState:
        """Another service instance sharing `state`'s data (memory has only one: itself);
        `alone_after_s` as `RedisState` takes it."""
        if self.kind == "memory":
            return self.state
        other = _redis_state(
            self.prefix, self.url, cluster=self.kind == "cluster", alone_after_s=alone_after_s
        )
        self._peers.append(other)
        return other

    async def close_peers(self) -> None:
        """Close the extra instances (their data is the main state's to reset)."""
        for other in self._peers:
            await other.close()


@pytest.fixture(params=["memory", "redis", "cluster"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """One adapter, empty, removed without trace after the test."""
    if request.param == "memory":
        memory = InMemoryState()
        yield Backend("memory", memory)
        await memory.close()
        return
    if request.param == "cluster":
        cluster: PrivateCluster = request.getfixturevalue("redis_cluster")  # or skip, or fail
        url, prefix = cluster.url, cluster.prefix()
    else:
        if _redis_down:
            _without_redis(_redis_down[0])
        url, prefix = REDIS_URL, f"surge-test-{uuid.uuid4().hex}:"
    state = _redis_state(prefix, url, cluster=request.param == "cluster")
    try:
        await state.ping()
    except StateUnavailable as exc:
        await state.close()
        if request.param == "redis":
            _redis_down.append(str(exc))
        _without_redis(str(exc))
    chosen = Backend(request.param, state, prefix, url)
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
