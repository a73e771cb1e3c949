"""lender protection: a surge's severity and a wave's reserve

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("surge", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("severity", sa.Float(), server_default=sa.text("1.0"), nullable=False)
        )
    with op.batch_alter_table("surge_wave", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reserve", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("surge_wave", schema=None) as batch_op:
        batch_op.drop_column("reserve")
    with op.batch_alter_table("surge", schema=None) as batch_op:
        batch_op.drop_column("severity")
