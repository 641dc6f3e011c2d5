"""assets.names_dirty and asset_dirty_names: a feed change re-matches only the
packages whose advisories changed, not every package of their holders

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 11:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "asset_dirty_names",
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_asset_dirty_names_asset_id_assets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("asset_id", "name", name=op.f("pk_asset_dirty_names")),
    )
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("names_dirty", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_index(batch_op.f("ix_assets_names_dirty"), ["names_dirty"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assets_names_dirty"))
        batch_op.drop_column("names_dirty")
    op.drop_table("asset_dirty_names")
