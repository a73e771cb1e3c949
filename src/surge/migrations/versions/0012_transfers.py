"""transfers: how often a call was sent on, and the last note

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """A call's transfers (bounded) and the note the next agent reads."""
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("transfers", sa.SmallInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("transfer_note", sa.Text(), nullable=True))


def downgrade() -> None:
    """No transfers recorded."""
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_column("transfer_note")
        batch_op.drop_column("transfers")
