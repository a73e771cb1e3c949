"""Applying the Alembic migrations from code (the CLI, the service start, tests)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config


def alembic_config(database_url: str) -> Config:
    """An Alembic config for `database_url` that needs no ini file."""
    config = Config()
    config.set_main_option("script_location", "surge:migrations")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str) -> None:
    """Bring the database to the newest revision (blocking; call outside the event loop)."""
    command.upgrade(alembic_config(database_url), "head")
