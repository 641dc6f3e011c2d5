"""finding_package_names: the package names findings carry, once each

Findings by package resolve a name (a package, or a source and its binaries)
here, then read each asset's findings of those names by the findings'
identity index instead of scanning every finding. Filled from existing findings.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "finding_package_names",
        sa.Column("ecosystem", sa.String(length=16), nullable=False),
        sa.Column("package_name", sa.String(length=255), nullable=False),
        sa.Column("source_name", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint(
            "ecosystem", "package_name", "source_name", name=op.f("pk_finding_package_names")
        ),
    )
    op.execute(
        "INSERT INTO finding_package_names (ecosystem, package_name, source_name)"
        " SELECT DISTINCT ecosystem, package_name, COALESCE(source_name, '') FROM findings"
    )


def downgrade() -> None:
    op.drop_table("finding_package_names")
