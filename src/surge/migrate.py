"""Applying the Alembic migrations from code (the CLI, the service start, tests)."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from surge.db import create_engine


def alembic_config(database_url: str) -> Config:
    """An Alembic config for `database_url` that needs no ini file."""
    config = Config()
    config.set_main_option("script_location", "surge:migrations")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str) -> list[str]:
    """Bring the database to the newest revision (blocking; call outside the event loop).

    Returns the migrations applied, oldest first, as `revision: what it does`.
    """
    config = alembic_config(database_url)
    command.upgrade(config, "head")
    applied: list[str] = config.attributes.get("applied", [])
    return applied


def head() -> str:
    """The newest revision of the migrations shipped."""
    revision = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert revision is not None, "the package ships its migrations"
    return revision


def is_current(database_url: str) -> bool:
    """True when the database is at the newest revision (False for an empty one); blocking."""
    heads = set(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())

    def current(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    async def read() -> set[str]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(current)
        finally:
            await engine.dispose()

    return asyncio.run(read()) == heads
