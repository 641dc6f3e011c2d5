"""Exceptions (risk acceptances) for a finding, a patch or an asset, with an
expiry. While active, the findings they cover are "excepted": out of the
compliance and SLA figures, shown separately. When one expires or is revoked
its findings reopen, and the expiry is recorded in the audit log.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from patchwarden.errors import Conflict, InvalidInput, NotFound
from patchwarden.policy.exceptions import SCOPE_KINDS, RiskAcceptance
from patchwarden.services import audit, finding_counts
from patchwarden.storage.tables import (
    UNOPENED,
    Asset,
    AssetPatch,
    Finding,
    Patch,
    RiskAcceptanceRow,
    utcnow,
)

RECENTLY = timedelta(days=7)


def add(
    session: Session,
    actor: str,
    scope: str,
    target_id: int,
    justification: str,
    expires_at: datetime,
) -> dict[str, Any]:
    now = utcnow()
    acceptance = RiskAcceptance.create(scope, target_id, justification, expires_at, now=now)  # type: ignore[arg-type]
    _check_target(session, acceptance.scope, acceptance.target_id)
    row = RiskAcceptanceRow(
        scope=acceptance.scope,
        target_id=acceptance.target_id,
        justification=acceptance.justification,
        approved_by=actor,
        created_at=now,
        expires_at=acceptance.expires_at,
    )
    session.add(row)
    session.flush()
    excepted = apply_active(session)
    audit.record(
        session,
        actor,
        "exception.add",
        "risk_acceptance",
        str(row.id),
        view(row) | {"findings": excepted},
    )
    return view(row)


def _check_target(session: Session, scope: str, target_id: int) -> None:
    table: Any = {"finding": Finding, "patch": Patch, "asset": Asset}[scope]
    if session.get(table, target_id) is None:
        raise NotFound(f"{scope} {target_id} not found")


def revoke(session: Session, actor: str, acceptance_id: int, reason: str = "") -> dict[str, Any]:
    row = session.get(RiskAcceptanceRow, acceptance_id)
    if row is None:
        raise NotFound(f"exception {acceptance_id} not found")
    if row.revoked_at is not None:
        raise Conflict(f"exception {acceptance_id} was already revoked")
    row.revoked_at, row.revoked_by = utcnow(), actor
    session.flush()
    reopened = reopen_uncovered(session)
    audit.record(
        session,
        actor,
        "exception.revoke",
        "risk_acceptance",
        str(row.id),
        {"reason": reason, "reopened": reopened},
    )
    return view(row)


def list_acceptances(session: Session, state: str | None = None) -> list[dict[str, Any]]:
    now = utcnow()
    rows = session.execute(select(RiskAcceptanceRow).order_by(RiskAcceptanceRow.id)).scalars()
    out = [view(r, now) for r in rows]
    if state is not None:
        if state not in ("active", "expired", "revoked"):
            raise InvalidInput("state must be active, expired or revoked")
        out = [v for v in out if v["state"] == state]
    return out


def view(row: RiskAcceptanceRow, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    state = "revoked" if row.revoked_at else ("expired" if row.expires_at <= now else "active")
    return {
        "id": row.id,
        "scope": row.scope,
        "target_id": row.target_id,
        "justification": row.justification,
        "approved_by": row.approved_by,
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat(),
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
        "revoked_by": row.revoked_by,
        "state": state,
    }


def _active(now: datetime) -> Any:
    return and_(RiskAcceptanceRow.revoked_at.is_(None), RiskAcceptanceRow.expires_at > now)


def _covered(now: datetime) -> Any:
    """Findings an active acceptance covers: by id, by asset, or closed by a patch."""
    active = _active(now)
    by_finding = select(RiskAcceptanceRow.target_id).where(
        active, RiskAcceptanceRow.scope == "finding"
    )
    by_asset = select(RiskAcceptanceRow.target_id).where(active, RiskAcceptanceRow.scope == "asset")
    patch_ids = select(RiskAcceptanceRow.target_id).where(
        active, RiskAcceptanceRow.scope == "patch"
    )
    return or_(
        Finding.id.in_(by_finding),
        Finding.asset_id.in_(by_asset),
        Finding.id.in_(_findings_of_patches(patch_ids)),
    )


def _findings_of_patches(patch_ids: Any) -> Any:
    # A patch-scope acceptance covers the findings of the patch's package on every
    # asset the patch applies to (what deploying it would have fixed there).
    return (
        select(Finding.id)
        .join(AssetPatch, AssetPatch.asset_id == Finding.asset_id)
        .join(
            Patch, and_(Patch.id == AssetPatch.patch_id, Patch.package_name == Finding.package_name)
        )
        .where(AssetPatch.patch_id.in_(patch_ids))
    )


def apply_active(
    session: Session, now: datetime | None = None, asset_ids: Collection[int] | None = None
) -> int:
    """Mark "excepted" every open finding an active acceptance covers (of these
    assets only, when given)."""
    now = now or utcnow()
    conditions = [Finding.status == "open", _covered(now)]
    if asset_ids is not None:
        conditions.append(Finding.asset_id.in_(sorted(asset_ids)))
    return _set_status(session, tuple(conditions), "excepted")


def cover_recomputed(session: Session, asset_ids: Collection[int]) -> int:
    """Except the findings that recomputation just opened on these assets where an
    active acceptance covers them, in the same transaction: a new finding on an
    excepted asset is never counted open, nor shown overdue."""
    now = utcnow()
    targets = session.execute(
        select(RiskAcceptanceRow.scope, RiskAcceptanceRow.target_id).where(_active(now))
    ).all()
    if not targets or not asset_ids:
        return 0
    wanted = set(asset_ids)
    by_scope: dict[str, list[int]] = {scope: [] for scope in SCOPE_KINDS}
    for scope, target_id in targets:
        by_scope[scope].append(target_id)
    candidates = wanted & set(by_scope["asset"])
    holders = (
        (AssetPatch.asset_id, AssetPatch.patch_id, by_scope["patch"]),
        (Finding.asset_id, Finding.id, by_scope["finding"]),
    )
    for asset_column, target_column, target_ids in holders:
        rest = wanted - candidates
        if target_ids and rest:
            candidates.update(
                session.execute(
                    select(asset_column)
                    .distinct()
                    .where(target_column.in_(target_ids), asset_column.in_(sorted(rest)))
                ).scalars()
            )
    return apply_active(session, now, candidates) if candidates else 0


def reopen_uncovered(session: Session, now: datetime | None = None) -> int:
    """Reopen excepted findings no active acceptance covers any more."""
    now = now or utcnow()
    return _set_status(session, (UNOPENED, Finding.status == "excepted", ~_covered(now)), "open")


def _set_status(session: Session, conditions: tuple[Any, ...], status: str) -> int:
    """Give the findings that meet `conditions` a new status, and count their
    assets' findings again. The assets are locked first, as recomputation locks
    those it works on, so that neither overwrites the other's counts."""
    holders = session.execute(select(Finding.asset_id).distinct().where(*conditions)).scalars()
    changed = 0
    for asset_ids in _chunks(finding_counts.lock_assets(session, holders)):
        result = session.execute(
            update(Finding)
            .where(*conditions, Finding.asset_id.in_(asset_ids))
            .values(status=status)
            .execution_options(synchronize_session=False)
        )
        changed += int(getattr(result, "rowcount", 0) or 0)
        finding_counts.recount(session, asset_ids)
    return changed


def _chunks(ids: list[int]) -> list[list[int]]:
    size = finding_counts.CHUNK
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def expire(session: Session, now: datetime | None = None) -> list[int]:
    """The upkeep loop: reopen what expired acceptances covered and report each once."""
    now = now or utcnow()
    expired = (
        session.execute(
            select(RiskAcceptanceRow).where(
                RiskAcceptanceRow.revoked_at.is_(None),
                RiskAcceptanceRow.expires_at <= now,
                RiskAcceptanceRow.expiry_reported_at.is_(None),
            )
        )
        .scalars()
        .all()
    )
    if not expired:
        return []
    reopened = reopen_uncovered(session, now)
    for row in expired:
        row.expiry_reported_at = now
        audit.record(
            session,
            "system:upkeep",
            "exception.expired",
            "risk_acceptance",
            str(row.id),
            view(row, now) | {"reopened": reopened},
        )
    return [row.id for row in expired]


def compliance(session: Session, now: datetime | None = None) -> dict[str, Any]:
    """Fleet compliance figures: open and overdue findings exclude excepted ones,
    which are counted separately; recently expired exceptions are listed."""
    now = now or utcnow()
    counts = finding_counts.fleet_counts(session, now)  # kept per asset, added up
    recent = session.execute(
        select(RiskAcceptanceRow).where(
            RiskAcceptanceRow.revoked_at.is_(None),
            RiskAcceptanceRow.expires_at <= now,
            RiskAcceptanceRow.expires_at > now - RECENTLY,
        )
    ).scalars()
    active = session.execute(
        select(func.count()).select_from(RiskAcceptanceRow).where(_active(now))
    ).scalar_one()
    return {
        "assets": counts.assets,
        "assets_compliant": counts.assets - counts.assets_with_open,
        "open_findings": counts.open,
        "overdue_findings": counts.overdue,
        "excepted_findings": counts.excepted,
        "fixed_findings": counts.fixed,
        "active_exceptions": active,
        "recently_expired_exceptions": [view(r, now) for r in recent],
        "scopes": list(SCOPE_KINDS),
    }
