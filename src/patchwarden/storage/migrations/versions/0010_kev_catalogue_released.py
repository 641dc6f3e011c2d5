"""kev_entries.catalogue_released and kev_unlisted: an older KEV catalogue
imported after a newer one neither un-lists, lists again nor rolls back the
entries the newer one speaks for

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
    op.create_table(
        "kev_unlisted",
        sa.Column("cve_id", sa.String(length=128), nullable=False),
        sa.Column("catalogue_released", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unlisted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("cve_id", name=op.f("pk_kev_unlisted")),
    )


def downgrade() -> None:
    op.drop_table("kev_unlisted")
    with op.batch_alter_table("kev_entries", schema=None) as batch_op:
        batch_op.drop_column("catalogue_released")
