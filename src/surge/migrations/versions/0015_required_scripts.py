"""required script versions, and the script versions a call was accepted and completed under

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 02:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """A version's `required` flag; the call's pinned versions (appended, after the model)."""
    with op.batch_alter_table("script_version", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("required", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.add_column(sa.Column("script_version_at_accept", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("script_version_at_complete", sa.Integer(), nullable=True))


def downgrade() -> None:
    """No required versions, no pinned versions."""
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_column("script_version_at_complete")
        batch_op.drop_column("script_version_at_accept")
    with op.batch_alter_table("script_version", schema=None) as batch_op:
        batch_op.drop_column("required")
