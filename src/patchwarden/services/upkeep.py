"""The server's periodic upkeep, one round: stale assets, findings, exceptions,
repository syncs, patches and auto-approval decisions, in that order (each
step reads what the previous one wrote). Every server process runs it; the
work is shared through SKIP LOCKED and the repositories' sync claims."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.services import approvals, exceptions, findings, ingest, patches, repositories
from patchwarden.storage.db import transaction
from patchwarden.storage.tables import RiskAcceptanceRow, RuleDecision, utcnow

log = logging.getLogger(__name__)
RECOMPUTE_LIMIT = 2000  # assets per round and kind; the rest wait for the next round


@dataclass
class UpkeepRound:
    stale: int = 0
    findings: int = 0
    patches: int = 0
    expired_exceptions: list[int] = field(default_factory=list)
    synced: list[repositories.SyncResult] = field(default_factory=list)
    approved: int | None = None


def _waits_due(session: Session) -> bool:
    return bool(
        session.execute(
            select(
                exists().where(RuleDecision.outcome == "wait", RuleDecision.eligible_at <= utcnow())
            )
        ).scalar()
    )


def _has_acceptances(session: Session) -> bool:
    return bool(session.execute(select(exists().where(RiskAcceptanceRow.id > 0))).scalar())


def run_once(
    factory: sessionmaker[Session],
    stale_after: timedelta,
    sync_repositories: bool = True,
    recompute_workers: int = 1,
) -> UpkeepRound:
    done = UpkeepRound()
    with transaction(factory) as session:
        done.stale = ingest.mark_stale_assets(session, stale_after)
    done.findings = findings.recompute_dirty(
        factory, limit=RECOMPUTE_LIMIT, workers=recompute_workers
    ).assets
    with transaction(factory) as session:
        if _has_acceptances(session):
            done.expired_exceptions = exceptions.expire(session)
    if sync_repositories:
        done.synced = repositories.sync_due(factory)
        for result in done.synced:
            if result.status == "failed":
                log.warning("repository %s: sync failed: %s", result.name, result.error)
    done.patches = patches.recompute_dirty(factory, limit=RECOMPUTE_LIMIT).assets
    with transaction(factory) as session:
        if done.patches and _has_acceptances(session):
            # An asset that now needs an excepted patch: its findings of the
            # patch's package are covered (recomputation excepts the rest at once).
            exceptions.apply_active(session)
        if done.patches or _waits_due(session):
            done.approved = approvals.evaluate_all(session)
    return done
