"""The Alembic migrations and the ORM models describe the same schema, on SQLite and Postgres."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from surge.migrate import alembic_config, upgrade
from surge.models import Base
from tests.conftest import in_thread


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
