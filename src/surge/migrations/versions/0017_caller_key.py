"""caller key: a call's caller number as the day's salted hash, for the report's repeat callers

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 02:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """The call's `caller_key` (appended, after the model's order; calls before it have none)."""
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.add_column(sa.Column("caller_key", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """No caller key."""
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_column("caller_key")
