"""Available patches per asset, one patch with where it goes, and its dossier."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from patchwarden.api.deps import DbDep, InventoryReader
from patchwarden.services import approvals, patches

router = APIRouter(prefix="/patches", tags=["patches"])

Classification = Literal["security", "bugfix", "enhancement", "unclassified"]
PatchStatus = Literal["available", "applied", "superseded", "all"]


class PatchOut(BaseModel):
    """A patch on one asset."""

    id: int
    asset_id: int
    hostname: str
    package: str
    arch: str
    installed_version: str
    target_version: str
    classification: str
    severity: str | None
    released_at: datetime | None
    reboot_required: bool
    closes: list[str]
    risk_score: float
    notice_ids: list[str]
    cve_ids: list[str]
    repositories: list[str]
    status: str
    first_seen_at: datetime
    resolved_at: datetime | None


class PatchAssetOut(BaseModel):
    asset_id: int
    hostname: str
    installed_version: str
    status: str
    risk_score: float
    closes: list[str]


class PatchSummaryOut(BaseModel):
    """A patch with every asset it applies to; `closes` and `risk_score` count
    the assets where it is still available."""

    id: int
    ecosystem: str
    package: str
    arch: str
    target_version: str
    classification: str
    severity: str | None
    released_at: datetime | None
    reboot_required: bool
    notice_ids: list[str]
    cve_ids: list[str]
    repositories: list[str]
    risk_score: float
    closes: list[str]
    assets: list[PatchAssetOut]


class RuleDecisionOut(BaseModel):
    group: str
    rule: str
    outcome: str
    eligible_at: datetime | None
    reasons: list[str]
    decided_at: datetime


class ApprovalOut(BaseModel):
    patch_id: int
    package: str
    target_version: str
    state: Literal["pending", "approved", "declined"] | None
    requested_by: str | None
    requested_at: datetime | None
    decided_by: str | None
    decided_at: datetime | None
    comment: str
    rule_decisions: list[RuleDecisionOut]


class DossierVulnerabilityOut(BaseModel):
    id: str
    severity: str | None
    cvss: float | None
    epss: float | None
    kev: bool
    description: str


class DossierOut(PatchSummaryOut):
    vulnerabilities: list[DossierVulnerabilityOut]
    approval: ApprovalOut
    test_results: list[dict[str, Any]]


@router.get("", response_model=list[PatchOut])
def list_patches(
    _: InventoryReader,
    database: DbDep,
    asset_id: int | None = None,
    group: Annotated[str | None, Query(max_length=100, description="Name or id")] = None,
    classification: Classification | None = None,
    package: Annotated[str | None, Query(max_length=255)] = None,
    status: PatchStatus = "available",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[PatchOut]:
    """Patches per asset, highest risk first; one asset's are brought up to date first."""
    if asset_id is not None:
        patches.ensure_fresh(database.factory, asset_id)
    flt = patches.PatchFilter(
        asset_id, group, classification, package, None if status == "all" else status
    )
    with database.reading() as session:
        return [PatchOut(**row) for row in patches.list_patches(session, flt, limit, offset)]


@router.get("/{patch_id}", response_model=PatchSummaryOut)
def get_patch(patch_id: int, _: InventoryReader, database: DbDep) -> PatchSummaryOut:
    with database.reading() as session:
        summary = patches.patch_summary(session, patches.get_patch(session, patch_id))
    return PatchSummaryOut(**summary)


@router.get("/{patch_id}/dossier", response_model=DossierOut)
def get_dossier(patch_id: int, _: InventoryReader, database: DbDep) -> DossierOut:
    """What an approver reads: what the patch fixes, its risk, where it goes, the
    decisions so far."""
    with database.reading() as session:
        return DossierOut(**approvals.dossier(session, patch_id))
