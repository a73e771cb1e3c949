"""knowledge gaps: questions the host's scripts do not answer, grouped by similar wording

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 02:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import surge.db

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """The gap groups and their gaps."""
    op.create_table(
        "script_gap_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("gaps", sa.Integer(), nullable=False),
        sa.Column("first_at", surge.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", surge.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_version", sa.Integer(), nullable=True),
        sa.Column("answered_at", surge.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["city_code"], ["city.code"], name=op.f("fk_script_gap_group_city_code_city")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_script_gap_group")),
    )
    op.create_index(
        "ix_script_gap_group_city_code_status", "script_gap_group", ["city_code", "status"]
    )
    op.create_table(
        "script_gap",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("call_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("agent_city", sa.String(length=6), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("raised_at", surge.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_city"], ["city.code"], name=op.f("fk_script_gap_agent_city_city")
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agent.id"], name=op.f("fk_script_gap_agent_id_agent")
        ),
        sa.ForeignKeyConstraint(["call_id"], ["call.id"], name=op.f("fk_script_gap_call_id_call")),
        sa.ForeignKeyConstraint(
            ["city_code"], ["city.code"], name=op.f("fk_script_gap_city_code_city")
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["script_gap_group.id"],
            name=op.f("fk_script_gap_group_id_script_gap_group"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_script_gap")),
    )
    with op.batch_alter_table("script_gap", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_script_gap_call_id"), ["call_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_script_gap_group_id"), ["group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_script_gap_raised_at"), ["raised_at"], unique=False)


def downgrade() -> None:
    """No knowledge gaps."""
    with op.batch_alter_table("script_gap", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_script_gap_raised_at"))
        batch_op.drop_index(batch_op.f("ix_script_gap_group_id"))
        batch_op.drop_index(batch_op.f("ix_script_gap_call_id"))
    op.drop_table("script_gap")
    op.drop_index("ix_script_gap_group_city_code_status", table_name="script_gap_group")
    op.drop_table("script_gap_group")
