"""callbacks (回拨): a call's callback request, failed dial-outs and next attempt; a surge's
callbacks switch

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import surge.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CALLBACK = sa.text("callback_requested_at IS NOT NULL")


def upgrade() -> None:
    """The call's callback columns (appended, after the model's order) and its caller index."""
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("callback_requested_at", surge.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "callback_attempts", sa.SmallInteger(), server_default=sa.text("0"), nullable=False
            )
        )
        batch_op.add_column(
            sa.Column("callback_due_at", surge.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_index(
        "ix_call_callback_caller",
        "call",
        ["city_code", "caller"],
        postgresql_where=_CALLBACK,
        sqlite_where=_CALLBACK,
    )
    with op.batch_alter_table("surge", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("callbacks", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )


def downgrade() -> None:
    """No callbacks."""
    with op.batch_alter_table("surge", schema=None) as batch_op:
        batch_op.drop_column("callbacks")
    op.drop_index("ix_call_callback_caller", table_name="call")
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_column("callback_due_at")
        batch_op.drop_column("callback_attempts")
        batch_op.drop_column("callback_requested_at")
