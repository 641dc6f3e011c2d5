"""feed_imports.parts_rejected: parts refused of records stored without them are
counted apart from records refused whole

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 21:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Earlier runs counted both kinds in `rejected`; they cannot be told apart now.
    with op.batch_alter_table("feed_imports", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("parts_rejected", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("feed_imports", schema=None) as batch_op:
        batch_op.drop_column("parts_rejected")
