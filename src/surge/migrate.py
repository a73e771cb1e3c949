"""Applying the Alembic migrations from code (the CLI, the service start, tests)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory


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
