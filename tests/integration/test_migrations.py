"""The Alembic migrations and the ORM models describe the same schema, on SQLite and Postgres."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from surge.cities import service as cities_service
from surge.db import create_sessionmaker
from surge.migrate import alembic_config, upgrade
from surge.models import Base
from surge.surges.models import Surge
from tests.conftest import _truncate, in_thread


async def schema_differences(url: str) -> list[Any]:
    """What autogenerate would still change to make the database match the models."""

    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await engine.dispose()


async def test_sqlite_migrations_match_the_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    in_thread(lambda: upgrade(url))
    assert await schema_differences(url) == []


async def test_sqlite_migrations_go_down_and_up_again(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    in_thread(lambda: upgrade(url))
    in_thread(lambda: command.downgrade(alembic_config(url), "base"))
    in_thread(lambda: upgrade(url))
    assert await schema_differences(url) == []


async def test_postgres_migrations_match_the_models(request: pytest.FixtureRequest) -> None:
    url: str = request.getfixturevalue("postgres_url")  # migrated by the fixture
    assert await schema_differences(url) == []


async def one_live_surge_per_host(url: str) -> None:
    """A draining surge holds its host like an active one; an ended one does not."""
    engine = create_async_engine(url)

    def surge(status: str) -> Surge:
        return Surge(host_city="320100", status=status, overflow_after_s=0.0, created_by="t")

    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await cities_service.seed(session=session)
            session.add_all([surge("ended"), surge("ended"), surge("draining")])
        for status in ("active", "draining"):
            with pytest.raises(IntegrityError):
                async with create_sessionmaker(engine)() as session, session.begin():
                    session.add(surge(status))
    finally:
        await engine.dispose()


async def test_sqlite_allows_one_live_surge_per_host(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    in_thread(lambda: upgrade(url))
    await one_live_surge_per_host(url)


async def test_postgres_allows_one_live_surge_per_host(request: pytest.FixtureRequest) -> None:
    url: str = request.getfixturevalue("postgres_url")
    await _truncate(url)
    try:
        await one_live_surge_per_host(url)
    finally:
        await _truncate(url)
