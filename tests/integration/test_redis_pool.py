"""The hot state's Redis connections, as `surge serve` makes them: a burst of commands beyond
`SURGE_REDIS_MAX_CONNECTIONS` waits for a free connection rather than failing, on a standalone
Redis and on a Redis Cluster alike, and the event bus keeps its subscription meanwhile."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from surge.runtime import make_state
from surge.settings import Settings
from tests.conftest import REDIS_URL
from tests.helpers import PrivateCluster


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
