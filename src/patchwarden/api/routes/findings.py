"""Findings, vulnerabilities, feeds and prioritisation policy."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from patchwarden.api.body import read_limited
from patchwarden.api.deps import (
    Database,
    DbDep,
    FeedsManager,
    InventoryReader,
    PolicyManager,
    SettingsDep,
)
from patchwarden.services import feeds, findings, priorities

router = APIRouter(tags=["vulnerabilities"])

StatusFilter = Literal["open", "fixed", "excepted", "false_positive", "all"]


class FindingOut(BaseModel):
    id: int
    asset_id: int
    hostname: str
    package: str
    arch: str
    ecosystem: str
    source_name: str | None
    installed_version: str
    fixed_version: str | None
    vulnerability_id: str
    advisory_ids: list[str]
    platform: str
    status: str
    first_seen_at: datetime
    fixed_at: datetime | None
    # upgraded, downgraded, removed, or advisory (it no longer names the version)
    fixed_reason: str | None
    risk: float
    risk_components: list[dict[str, Any]]
    due_at: datetime | None
    sla_rule: str | None
    sla_status: str | None
    severity: str | None
    cvss: float | None
    epss: float | None
    kev: bool


class VulnerabilityOut(BaseModel):
    id: str
    description: str | None
    cvss_score: float | None
    cvss_vector: str | None
    severity: str | None
    epss: float | None
    epss_percentile: float | None
    kev: bool
    kev_ransomware: bool
    kev_due_date: Any
    advisories: list[dict[str, Any]]
    affected_assets: int
    # Every CVSS metric NVD lists: version, vector, score, severity, source, primary
    cvss_metrics: list[dict[str, Any]]


class FeedImportOut(BaseModel):
    id: int
    actor: str
    path: str
    format: str | None
    started_at: datetime
    finished_at: datetime | None
    created: int
    updated: int
    unchanged: int
    withdrawn: int
    rejected: int  # records refused whole
    parts_rejected: int  # parts refused of records stored without them
    rejections: list[dict[str, Any]]  # both kinds; a part's has "part": true


def _findings(
    database: Database, flt: findings.FindingFilter, limit: int, offset: int
) -> list[FindingOut]:
    if flt.asset_id is not None:
        findings.ensure_fresh(database.factory, flt.asset_id)
    with database.transaction() as session:
        rows = findings.list_findings(session, flt, limit, offset)
        return [FindingOut(**view) for view in findings.finding_views(session, rows)]


@router.get("/findings", response_model=list[FindingOut])
def list_findings(
    _: InventoryReader,
    database: DbDep,
    asset_id: int | None = None,
    vulnerability_id: Annotated[str | None, Query(max_length=64)] = None,
    package: Annotated[str | None, Query(max_length=255)] = None,
    status: StatusFilter = "open",
    min_risk: Annotated[float | None, Query(ge=0, le=100)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[FindingOut]:
    """Findings by asset, by vulnerability ("which assets have CVE-X?") or by
    package, highest risk first."""
    flt = findings.FindingFilter(
        asset_id, vulnerability_id, package, None if status == "all" else status, min_risk
    )
    return _findings(database, flt, limit, offset)


@router.get("/findings/top", response_model=list[FindingOut])
def top_risks(
    _: InventoryReader, database: DbDep, limit: Annotated[int, Query(ge=1, le=1000)] = 20
) -> list[FindingOut]:
    """The highest open risks across the fleet."""
    return _findings(database, findings.FindingFilter(), limit, 0)


@router.get("/vulnerabilities/{vulnerability_id}", response_model=VulnerabilityOut)
def get_vulnerability(
    vulnerability_id: str, _: InventoryReader, database: DbDep
) -> VulnerabilityOut:
    with database.transaction() as session:
        return VulnerabilityOut(**findings.vulnerability_detail(session, vulnerability_id))


@router.get("/feeds/imports", response_model=list[FeedImportOut])
def list_feed_imports(_: InventoryReader, database: DbDep) -> list[FeedImportOut]:
    with database.transaction() as session:
        return [
            FeedImportOut.model_validate(i, from_attributes=True)
            for i in feeds.list_imports(session)
        ]


@router.post("/feeds/import", response_model=FeedImportOut)
async def import_feed(
    request: Request,
    principal: FeedsManager,
    database: DbDep,
    settings: SettingsDep,
    format_: Annotated[str | None, Query(alias="format", max_length=32)] = None,
    filename: Annotated[
        str, Query(max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    ] = "upload",
) -> FeedImportOut:
    """Import a feed file sent as the request body (air-gapped sites); the
    format is detected from the content and `filename` when not given."""
    content = await read_limited(request, settings.max_import_bytes)

    def run() -> FeedImportOut:
        with tempfile.TemporaryDirectory(prefix="pw-feed-") as tmp:
            path = Path(tmp) / filename
            path.write_bytes(content)
            summary = feeds.import_feed(database.factory, path, format_, principal.actor)
        with database.transaction() as session:
            row = next(i for i in feeds.list_imports(session, 50) if i.id == summary.import_id)
            return FeedImportOut.model_validate(row, from_attributes=True)

    return await run_in_threadpool(run)


@router.get("/policy/risk-weights")
def get_risk_weights(_: InventoryReader, database: DbDep) -> dict[str, Any]:
    with database.transaction() as session:
        return priorities.risk_weights(session).as_dict()


@router.put("/policy/risk-weights")
def put_risk_weights(
    body: dict[str, Any], principal: PolicyManager, database: DbDep
) -> dict[str, Any]:
    with database.transaction() as session:
        weights = priorities.set_risk_weights(session, principal.actor, body)
        findings.mark_all_for_new_weights(session)
    return weights.as_dict()


@router.get("/policy/sla")
def get_sla(
    _: InventoryReader, database: DbDep, group: Annotated[str | None, Query(max_length=100)] = None
) -> dict[str, Any]:
    with database.transaction() as session:
        return priorities.sla_policy(session, group).as_dict()


@router.put("/policy/sla")
def put_sla(
    body: dict[str, Any],
    principal: PolicyManager,
    database: DbDep,
    group: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    with database.transaction() as session:
        policy = priorities.set_sla_policy(session, principal.actor, group, body)
        findings.mark_all_for_rescore(session)
    return policy.as_dict()
