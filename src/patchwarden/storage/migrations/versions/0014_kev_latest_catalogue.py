"""kev_latest_catalogue and kev_latest_listed: the newest complete, dated KEV
catalogue imported and the CVEs it lists, so that an older catalogue imported
later cannot list a CVE the newer one leaves out

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 20:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kev_latest_catalogue",
        sa.Column("released", sa.DateTime(timezone=True), nullable=False),
        sa.Column("catalog_version", sa.String(length=64), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("released", name=op.f("pk_kev_latest_catalogue")),
    )
    op.create_table(
        "kev_latest_listed",
        sa.Column("cve_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("cve_id", name=op.f("pk_kev_latest_listed")),
    )


def downgrade() -> None:
    op.drop_table("kev_latest_listed")
    op.drop_table("kev_latest_catalogue")
