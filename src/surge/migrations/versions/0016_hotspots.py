"""hot issues: an index of completed tickets by completion time

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 02:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COMPLETED = sa.text("status = 'completed'")


def upgrade() -> None:
    """Completed calls by `ended_at` (partial: arriving calls are not indexed)."""
    op.create_index(
        "ix_call_completed_ended_at",
        "call",
        ["ended_at"],
        unique=False,
        postgresql_where=_COMPLETED,
        sqlite_where=_COMPLETED,
    )


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_call_completed_ended_at", table_name="call")
