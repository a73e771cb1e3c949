"""surge lifecycle: a draining surge still holds its host

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 10:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("status IN ('active', 'draining')")
ACTIVE = sa.text("status = 'active'")


def upgrade() -> None:
    """One live (active or draining) surge per host."""
    with op.batch_alter_table("surge", schema=None) as batch_op:
        batch_op.drop_index("uq_surge_active_host")
        batch_op.create_index(
            "uq_surge_live_host",
            ["host_city"],
            unique=True,
            postgresql_where=LIVE,
            sqlite_where=LIVE,
        )


def downgrade() -> None:
    """One active surge per host (draining surges end first: they no longer exist before)."""
    op.execute("UPDATE surge SET status = 'ended' WHERE status = 'draining'")
    with op.batch_alter_table("surge", schema=None) as batch_op:
        batch_op.drop_index("uq_surge_live_host")
        batch_op.create_index(
            "uq_surge_active_host",
            ["host_city"],
            unique=True,
            postgresql_where=ACTIVE,
            sqlite_where=ACTIVE,
        )
