"""The hot state's Redis connections, as `surge serve` makes them: a burst of commands beyond
`SURGE_REDIS_MAX_CONNECTIONS` waits for a free connection rather than failing, on a standalone
Redis and on a Redis Cluster alike, and the event bus keeps its subscription meanwhile; a server
that hangs is an outage within the socket timeout, for the hot scripts as for the reads."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from surge.errors import StateUnavailable
from surge.runtime import make_state
from surge.settings import Settings
from surge.state.base import QueuedCall
from tests.conftest import REDIS_URL
from tests.helpers import PrivateCluster, private_redis


@pytest.mark.parametrize("kind", ["redis", "cluster"])
async def test_a_burst_beyond_the_connections_waits_for_one(
    request: pytest.FixtureRequest, kind: str
) -> None:
    if kind == "cluster":
        cluster: PrivateCluster = request.getfixturevalue("redis_cluster")
        url, prefix = cluster.url, cluster.prefix()
    else:
        url, prefix = REDIS_URL, f"surge-test-{uuid.uuid4().hex[:12]}:"
    settings = Settings(
        _env_file=None,
        redis_url=url,
        redis_cluster=kind == "cluster",
        redis_prefix=prefix,
        redis_max_connections=2,
    )
    state = make_state(settings)
    heard: asyncio.Queue[dict[str, object]] = asyncio.Queue()

    async def listen() -> None:
        async for event in state.listen():
            heard.put_nowait(event)

    async def hear(event: dict[str, object]) -> None:
        """Echo `event` until the listener has it (it may not be subscribed yet)."""
        async with asyncio.timeout(5):
            while True:
                await state.echo(event)
                try:
                    if await asyncio.wait_for(heard.get(), 0.2) == event:
                        return
                except TimeoutError:
                    pass

    listener = asyncio.create_task(listen())
    try:
        await hear({"before": "the burst"})
        reads = await asyncio.gather(*(state.get_agent(agent) for agent in range(200)))
        assert reads == [None] * 200
        # The scripts' own connections (a standalone server's hot commands) wait alike.
        scripts = await asyncio.gather(*(state.get_offer(f"o{n}") for n in range(200)))
        assert scripts == [None] * 200
        await hear({"after": "the burst"})
    finally:
        await state.close()
        await listener


REDIS_SOCKET_TIMEOUT_S = 5.0  # redis-py's default, which `surge serve` keeps


async def test_a_hung_redis_is_an_outage_within_the_socket_timeout(tmp_path: Path) -> None:
    async with private_redis(tmp_path) as server:
        state = make_state(
            Settings(_env_file=None, redis_url=server.url, redis_prefix="surge-test-hung:")
        )
        call = QueuedCall(1, "320100", 0, time.time(), "13912345678", "phone")
        try:
            assert await state.enqueue([call]) == [True]  # its connections are open
            assert await state.get_agent(1) is None
            server.freeze()
            started = time.monotonic()
            # A script (on the hot commands' own connections) and a read (on the pool's).
            answers = await asyncio.gather(
                state.enqueue([call]), state.get_agent(1), return_exceptions=True
            )
            waited = time.monotonic() - started
            assert [type(answer) for answer in answers] == [StateUnavailable] * 2, answers
            assert REDIS_SOCKET_TIMEOUT_S - 0.5 < waited < REDIS_SOCKET_TIMEOUT_S + 2
            server.thaw()
            # The connections cut short are replaced: the state answers again at once.
            assert await state.enqueue([call]) == [False]  # it was queued before the hang
            assert await state.get_agent(1) is None
        finally:
            server.thaw()
            await state.close()
