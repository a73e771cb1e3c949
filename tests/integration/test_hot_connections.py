"""The hot transitions' held connections (`surge.db.HotConnections`) on the local PostgreSQL:
which server connection each transition runs on (`pg_backend_pid()`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from surge.db import HotConnections, create_engine, fetch_row, is_outage

POOL_SIZE = 6  # so three connections are held


@pytest.fixture
async def hot(postgres_url: str) -> AsyncIterator[HotConnections]:
    """Held connections of an engine of their own."""
    engine = create_engine(postgres_url, pool_size=POOL_SIZE, max_overflow=0)
    hot = HotConnections(engine, pool_size=POOL_SIZE)
    try:
        yield hot
    finally:
        await hot.close()
        await engine.dispose()


async def backend_pid(hot: HotConnections, hold_s: float = 0.0) -> int:
    """The server process of the connection one transition ran on (held `hold_s` first)."""
    async with hot.transition() as connection:
        await asyncio.sleep(hold_s)
        row = await fetch_row(connection, "SELECT pg_backend_pid()")
        return int(row[0])


async def test_each_transition_runs_on_the_connection_the_last_one_gave_back(
    hot: HotConnections,
) -> None:
    first = await backend_pid(hot)
    assert [await backend_pid(hot) for _ in range(5)] == [first] * 5


async def test_more_transitions_at_once_than_are_held_each_get_a_connection_without_waiting(
    hot: HotConnections,
) -> None:
    held = POOL_SIZE // 2
    loop = asyncio.get_running_loop()
    start = loop.time()
    pids = await asyncio.gather(*(backend_pid(hot, hold_s=0.3) for _ in range(POOL_SIZE)))
    assert loop.time() - start < 0.3 * 2  # side by side: none waited for another
    assert len(set(pids)) == POOL_SIZE
    # Afterwards as many are held as may be, each handed out again (from the last given back).
    again = await asyncio.gather(*(backend_pid(hot, hold_s=0.1) for _ in range(held)))
    assert set(again) <= set(pids)
    assert len(set(again)) == held


async def test_a_connection_the_server_ended_fails_one_transition_as_an_outage_then_is_replaced(
    hot: HotConnections, postgres_url: str
) -> None:
    pid = await backend_pid(hot)
    admin = create_engine(postgres_url, pool_size=1)
    try:
        async with admin.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await admin.dispose()

    with pytest.raises(DBAPIError) as failed:
        await backend_pid(hot)
    assert is_outage(failed.value)  # the caller answers 503, and the next one is served
    assert await backend_pid(hot) != pid


async def test_a_transition_that_fails_gives_its_connection_back_and_the_next_is_served(
    hot: HotConnections,
) -> None:
    async def failing() -> None:
        async with hot.transition() as connection:
            await connection.execute(text("SELECT 1"))  # a Core statement begins a transaction
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await failing()
    async with hot.transition() as connection:
        assert not connection.in_transaction()
        assert (await connection.execute(text("SELECT 2"))).scalar_one() == 2
    await backend_pid(hot)


async def test_closed_it_still_serves_the_transitions_of_the_shutdown_on_the_pools_connections(
    hot: HotConnections,
) -> None:
    await backend_pid(hot)
    await hot.close()
    assert await backend_pid(hot) > 0
