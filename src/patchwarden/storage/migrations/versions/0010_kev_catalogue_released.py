"""kev_entries.catalogue_released: an older KEV catalogue imported after a newer
one neither un-lists nor rolls back the entries the newer one lists

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Entries stored before now are undated: any complete catalogue may still
    # un-list them, as before.
    with op.batch_alter_table("kev_entries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("catalogue_released", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("kev_entries", schema=None) as batch_op:
        batch_op.drop_column("catalogue_released")
