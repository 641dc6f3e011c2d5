"""findings: top open risks by asset instead of a risk index over every finding;
assets re-scored without matching again

Open findings, nearly all of a fleet's first match, leave the status-and-risk
index: it is kept, partial, for findings that are not open (excepted, false
positive, fixed). Each asset keeps a bound on its unfixed findings' risk, and
the fleet's top open risks are read asset by asset in that order.

`assets.scores_dirty` marks assets whose findings only need new scores (a
day's EPSS, KEV, risk weights, SLA policy): they are re-scored, not re-matched.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UNOPENED = "findings.status <> 'open'"  # as storage.tables spells it


def upgrade() -> None:
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("scores_dirty", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_index(batch_op.f("ix_assets_scores_dirty"), ["scores_dirty"], unique=False)
        batch_op.add_column(
            sa.Column("finding_risk_bound", sa.Double(), server_default="0", nullable=False)
        )
        batch_op.create_index(
            "ix_assets_finding_risk_bound", ["finding_risk_bound", "id"], unique=False
        )
    op.execute(
        "UPDATE assets SET finding_risk_bound = COALESCE((SELECT MAX(risk_score) FROM findings"
        " WHERE findings.asset_id = assets.id AND findings.status <> 'fixed'), 0)"
    )
    op.drop_index("ix_findings_status_risk", table_name="findings")
    op.create_index(
        "ix_findings_unopened_status",
        "findings",
        ["status", "risk_score"],
        unique=False,
        sqlite_where=sa.text(UNOPENED),
        postgresql_where=sa.text(UNOPENED),
    )


def downgrade() -> None:
    op.drop_index("ix_findings_unopened_status", table_name="findings")
    op.create_index("ix_findings_status_risk", "findings", ["status", "risk_score"], unique=False)
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_index("ix_assets_finding_risk_bound")
        batch_op.drop_column("finding_risk_bound")
        batch_op.drop_index(batch_op.f("ix_assets_scores_dirty"))
        batch_op.drop_column("scores_dirty")
