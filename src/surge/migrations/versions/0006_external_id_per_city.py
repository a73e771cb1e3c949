"""calls: external_id unique per city, not province-wide

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 10:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    # Batch mode: SQLite changes constraints by copying the table; Postgres alters it in place.
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_call_external_id"), type_="unique")
        batch_op.create_unique_constraint(
            op.f("uq_call_city_code_external_id"), ["city_code", "external_id"]
        )


def downgrade() -> None:
    """Revert this revision (fails if two cities have used the same external_id since)."""
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_call_city_code_external_id"), type_="unique")
        batch_op.create_unique_constraint(op.f("uq_call_external_id"), ["external_id"])
