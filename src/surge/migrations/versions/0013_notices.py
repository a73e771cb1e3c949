"""supervision: notices to the agents serving a surge or a city

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 23:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import surge.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """The notice table."""
    op.create_table(
        "notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("surge_id", sa.Integer(), nullable=True),
        sa.Column("city_code", sa.String(length=6), nullable=True),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", surge.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["city_code"], ["city.code"], name=op.f("fk_notice_city_code_city")
        ),
        sa.ForeignKeyConstraint(["surge_id"], ["surge.id"], name=op.f("fk_notice_surge_id_surge")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice")),
    )
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notice_city_code"), ["city_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_notice_surge_id"), ["surge_id"], unique=False)


def downgrade() -> None:
    """No notices."""
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notice_surge_id"))
        batch_op.drop_index(batch_op.f("ix_notice_city_code"))
    op.drop_table("notice")
