"""assets: findings counted by status and open findings by due date

The fleet's compliance figures add these up instead of counting every finding.
Existing assets are counted from their findings.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:40:00
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

KEY_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # as services.finding_counts keys due dates

assets = sa.table(
    "assets",
    sa.column("id", sa.Integer()),
    sa.column("open_findings", sa.Integer()),
    sa.column("excepted_findings", sa.Integer()),
    sa.column("fixed_findings", sa.Integer()),
    sa.column("open_due_counts", sa.JSON()),
    sa.column("earliest_open_due", sa.DateTime(timezone=True)),
)
findings = sa.table(
    "findings",
    sa.column("asset_id", sa.Integer()),
    sa.column("status", sa.String()),
    sa.column("due_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("assets", schema=None) as batch_op:
        for name in ("open_findings", "excepted_findings", "fixed_findings"):
            batch_op.add_column(sa.Column(name, sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("open_due_counts", sa.JSON(), server_default=sa.text("'{}'"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("earliest_open_due", sa.DateTime(timezone=True), nullable=True)
        )
    _count_existing()


def _count_existing() -> None:
    connection = op.get_bind()
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    dues: dict[int, Counter[str]] = defaultdict(Counter)
    rows = connection.execute(
        sa.select(
            findings.c.asset_id, findings.c.status, findings.c.due_at, sa.func.count()
        ).group_by(findings.c.asset_id, findings.c.status, findings.c.due_at)
    )
    for asset_id, status, due, count in rows:
        counts[asset_id][status] += count
        if status == "open" and due is not None:
            due = due.replace(tzinfo=UTC) if due.tzinfo is None else due.astimezone(UTC)
            dues[asset_id][due.strftime(KEY_FORMAT)] += count
    for asset_id, by_status in counts.items():
        keyed = dict(sorted(dues[asset_id].items()))
        earliest = datetime.strptime(min(keyed), KEY_FORMAT).replace(tzinfo=UTC) if keyed else None
        connection.execute(
            assets.update()
            .where(assets.c.id == asset_id)
            .values(
                open_findings=by_status["open"],
                excepted_findings=by_status["excepted"],
                fixed_findings=by_status["fixed"],
                open_due_counts=keyed,
                # SQLite keeps instants naive (in UTC), as the application writes them.
                earliest_open_due=earliest
                if earliest is None or connection.dialect.name != "sqlite"
                else earliest.replace(tzinfo=None),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("assets", schema=None) as batch_op:
        for name in (
            "earliest_open_due",
            "open_due_counts",
            "fixed_findings",
            "excepted_findings",
            "open_findings",
        ):
            batch_op.drop_column(name)
