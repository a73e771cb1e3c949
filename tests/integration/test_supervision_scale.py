"""The live agent list stays cheap for a province-sized roster: 1,300 agents, 1,000 of them
connected, in one answer well within a supervisor's refresh (one hot-state read for all)."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from surge.auth.models import Role, User
from surge.db import create_engine, create_sessionmaker
from surge.seats.models import Agent
from surge.state.base import AgentState
from surge.state.redis import RedisState
from tests.conftest import REDIS_URL, Backend
from tests.helpers import run_service

CITIES = ["320100", "320200", "320300", "320400", "320500"]
AGENTS = 1300
CONNECTED = 1000


async def test_a_list_of_1300_agents_is_one_quick_answer(shared_backend: Backend) -> None:
    settings = shared_backend.settings()
    async with run_service(settings) as service:
        engine = create_engine(settings.database_url)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                users = [
                    User(username=f"a{n}", password_hash="-", role=Role.AGENT.value,
                         city_code=CITIES[n % len(CITIES)])
                    for n in range(AGENTS)
                ]  # fmt: skip
                session.add_all(users)
                await session.flush()
                agents = [
                    Agent(user_id=u.id, city_code=u.city_code, name=u.username, endpoint="sip:x")
                    for u in users
                ]
                session.add_all(agents)
                await session.flush()
                ids = [(a.id, a.city_code) for a in agents]
        finally:
            await engine.dispose()
        state = RedisState(
            aioredis.Redis.from_url(REDIS_URL), prefix=settings.redis_prefix, instance="bench"
        )
        try:
            now = time.time()
            for agent_id, city in ids[:CONNECTED]:
                await state.agent_connect(agent_id, city, instance="far", now=now, call_id=None)
                if agent_id % 2:
                    await state.set_agent_state(agent_id, AgentState.AVAILABLE, now)
        finally:
            await state.close()
        coordinator = await service.add_user(Role.COORDINATOR)
        started = time.monotonic()
        listed = await service.http.get("/api/v1/agents", headers=service.auth(coordinator))
        took = time.monotonic() - started
    assert listed.status_code == 200, listed.text
    rows = listed.json()
    states = [row["state"] for row in rows]
    assert len(rows) == AGENTS
    assert states.count("offline") == AGENTS - CONNECTED
    assert states.count("available") + states.count("break") == CONNECTED
    assert {row["instance"] for row in rows} == {"far", None}
    print(f"\nGET /agents: {AGENTS} agents ({CONNECTED} connected) in {took * 1000:.0f} ms")
    assert took < 2.0
