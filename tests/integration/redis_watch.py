"""Watch a service's Redis commands from Redis itself (MONITOR), on the shared server.

Only the commands a client sent (not those a script ran inside Redis) that carry the watched key
prefix are counted, each script named after its attribute on `RedisState` (`snapshot`, `claim`,
...), any other command by its name (`MGET`, `PUBLISH`, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import Counter
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from surge.state.redis import RedisState
from tests.conftest import REDIS_URL

SCRIPTS = {
    script.sha: name.lstrip("_")
    for name, script in vars(RedisState(aioredis.Redis(), instance="watch")).items()
    if isinstance(script, AsyncScript)
}
"""Each script's SHA1 -> its name (registering a script only hashes it: no server is asked)."""

MAINTENANCE = frozenset({"expire", "end_wrap_ups", "reap", "heartbeat", "GET"})
"""What the ticks send whatever happens: the maintenance tick's expiry, wrap-ups and heartbeat,
the hot-state watch's read of the epoch."""


@contextlib.asynccontextmanager
async def watched(prefix: str) -> AsyncIterator[Counter[str]]:
    """Count, by name, the round trips under `prefix` made while the block runs.

    A marker command sent before and after the block, and waited for, bounds what is counted.
    """
    seen: Counter[str] = Counter()
    marker = f"{prefix}watch-{secrets.token_hex(4)}"
    marks: asyncio.Queue[None] = asyncio.Queue()
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)

    async def listen() -> None:
        async with client.monitor() as monitor:
            ready.set()
            async for command in monitor.listen():
                line = command["command"]
                if command["client_type"] == "lua" or prefix not in line:
                    continue
                words = line.split()
                if marker in line:
                    marks.put_nowait(None)
                elif words[0] == "EVALSHA":
                    seen[SCRIPTS.get(words[1], words[1])] += 1
                else:
                    seen[words[0]] += 1

    async def bound() -> None:
        await client.exists(marker)  # a second connection: the monitor's is taken
        await asyncio.wait_for(marks.get(), 5)

    ready = asyncio.Event()
    task = asyncio.create_task(listen())
    try:
        await asyncio.wait_for(ready.wait(), 5)
        await bound()
        yield seen
        await bound()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.aclose()
