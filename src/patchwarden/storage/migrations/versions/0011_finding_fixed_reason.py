"""findings.fixed_reason: why a finding was fixed (upgraded, downgraded, removed,
or its advisory no longer names the installed version)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 21:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Findings fixed before now keep no reason: it was not recorded. (A plain
    # ADD COLUMN on SQLite too: the findings table is not copied.)
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fixed_reason", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_column("fixed_reason")
