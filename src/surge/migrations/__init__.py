"""Alembic migrations (script location `surge:migrations`)."""
