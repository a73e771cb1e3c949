"""agent states: the end of the wrap-up after each completed call

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 23:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import surge.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """When the agent's wrap-up ended (the handling time runs to it)."""
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("wrapped_up_at", surge.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    """Handling ends with the ticket again."""
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_column("wrapped_up_at")
