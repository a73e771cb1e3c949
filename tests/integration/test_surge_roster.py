"""The roster of live surges: one read at a time, told of changes, and a TTL for the unheard."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from surge.cities.service import CityRegistry
from surge.db import create_engine, create_sessionmaker
from surge.surges import service as surges_service
from surge.surges.roster import SURGES_TTL_S, SurgeRoster
from surge.surges.schemas import SurgeCreate
from tests.conftest import Backend
from tests.helpers import seed

NANJING, XUZHOU = "320100", "320300"


@pytest.fixture
async def engine(backend: Backend) -> AsyncIterator[AsyncEngine]:
    """The test database, seeded with the cities."""
    await seed(backend.settings())
    made = create_engine(backend.settings().database_url)
    yield made
    await made.dispose()


async def start_surge(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Start a surge for Nanjing helped by Xuzhou, as the coordinator's route does."""
    registry = CityRegistry(sessions)
    await registry.load()
    payload = SurgeCreate.model_validate(
        {"host_city": NANJING, "waves": [{"cities": [XUZHOU], "seats_per_city": 2}]}
    )
    async with sessions() as session, session.begin():
        surge, _ = await surges_service.create(
            session=session, registry=registry, payload=payload, actor="coordinator"
        )
    return surge.id


async def test_a_surge_started_elsewhere_is_seen_within_the_ttl(
    backend: Backend, engine: AsyncEngine
) -> None:
    sessions = create_sessionmaker(engine)
    here = SurgeRoster(settings=backend.settings(), sessions=sessions)
    there = SurgeRoster(settings=backend.settings(), sessions=sessions)
    assert (await here.current()).helpers_of(NANJING) == ()
    assert (await there.current()).helpers_of(NANJING) == ()
    surge_id = await start_surge(sessions)
    here.changed()  # the instance that started it announced SURGES_CHANGED; the other missed it
    started = time.monotonic()
    assert (await here.current()).serves(XUZHOU, NANJING)
    while not (await there.current()).serves(XUZHOU, NANJING):
        assert time.monotonic() - started < SURGES_TTL_S + 0.5, "not seen within the TTL"
        await asyncio.sleep(0.05)
    seen = await there.current()
    assert [s.surge_id for s in seen.joined_by(XUZHOU)] == [surge_id]
    assert seen.views[0].quotas == {XUZHOU: 2}


async def test_consoles_arriving_together_share_one_read(
    backend: Backend, engine: AsyncEngine
) -> None:
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    roster = SurgeRoster(settings=backend.settings(), sessions=create_sessionmaker(engine))
    answers = await asyncio.gather(*(roster.current() for _ in range(20)))
    assert len({id(answer) for answer in answers}) == 1
    reads = [s for s in statements if "FROM surge" in s and "surge_wave" not in s]
    assert len(reads) == 1
    roster.changed()
    await roster.current()
    assert len([s for s in statements if "FROM surge" in s and "surge_wave" not in s]) == 2
