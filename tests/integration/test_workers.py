"""`surge serve --workers N`: N processes on one port, each an instance of its own, act as one
(and count as one on /metrics)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
import websockets

from surge import cli
from surge.auth.models import Role
from tests.api import test_metrics
from tests.conftest import REDIS_URL, Backend
from tests.helpers import Console, seed
from tests.integration.conftest import surge_workers

NANJING = "320100"


async def test_two_workers_each_an_instance_serve_and_route(
    shared_backend: Backend, tmp_path: Path
) -> None:
    await seed(shared_backend.settings())
    redis = aioredis.Redis.from_url(REDIS_URL)
    async with (
        surge_workers(
            shared_backend,
            workers=2,
            log_path=tmp_path / "serve.log",
            SURGE_METRICS_ENABLED="true",
        ) as (service, _),
        AsyncExitStack() as consoles,
    ):
        try:
            for _ in range(100):  # both workers heartbeat on their own instance ids
                instances = await redis.zrange(f"{shared_backend.redis_prefix}inst", 0, -1)
                if len(instances) == 2:
                    break
                await asyncio.sleep(0.1)
            assert len(instances) == 2
            cti = await service.add_user(Role.CTI, NANJING)
            agents: dict[str, Console] = {}
            serving: set[bytes] = set()
            # Connections go to whichever worker accepts first: connect until both serve some.
            while len(serving) < 2 and len(agents) < 40:
                name = await service.add_user(Role.AGENT, NANJING)
                url = f"{service.ws_url}/ws/agent?token={service.tokens[name]}"
                console = Console(await consoles.enter_async_context(websockets.connect(url)))
                agent_id = (await console.expect("hello"))["agent_id"]
                await console.available()
                agents[name] = console
                instance = await redis.hget(
                    f"{shared_backend.redis_prefix}agent:{agent_id}", "instance"
                )
                assert isinstance(instance, bytes)
                assert instance in instances
                serving.add(instance)
            assert serving == set(instances)
            # Calls posted on one port reach agents of both workers, each offered once.
            posted = {(await service.post_call(cti, NANJING))["id"] for _ in agents}
            offered: set[int] = set()
            for console in agents.values():
                offer = await console.expect("offer")
                offered.add(offer["call"]["id"])
                await console.send(type="accept", offer_id=offer["offer_id"])
                await console.expect("call.connected")
            assert offered == posted
            # Whichever worker a scrape reaches, it counts what both did (multiprocess mode).
            value = test_metrics.value
            for _ in range(6):  # a new connection each: the kernel hands them to either worker
                async with httpx.AsyncClient(base_url=service.base_url) as http:
                    samples = await test_metrics.scrape(service, http)
                assert value(samples, "surge_calls_posted_total", city=NANJING) == len(posted)
                assert value(samples, "surge_offers_accepted_total", city=NANJING) == len(posted)
                assert value(samples, "surge_websocket_connections", stream="agent") == len(agents)
                assert value(samples, "surge_agents", city=NANJING, state="busy") == len(agents)
        finally:
            await redis.aclose()


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"SURGE_DATABASE_URL": "sqlite+aiosqlite:///./x.db"}, "PostgreSQL and Redis"),
        (
            {
                "SURGE_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1/x",
                "SURGE_REDIS_URL": "redis://127.0.0.1:6379/0",
                "SURGE_INSTANCE_ID": "one",
            },
            "SURGE_INSTANCE_ID",
        ),
    ],
)
def test_serve_refuses_workers_it_cannot_share_state_between(
    env: dict[str, str],
    words: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("SURGE_REDIS_URL", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["serve", "--workers", "2"]) == 2
    assert words in capsys.readouterr().err
