"""CMDB imports: CSV or JSON in the request body, a row-by-row report back."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from patchwarden.api.body import read_limited
from patchwarden.api.deps import DbDep, InventoryWriter, SettingsDep
from patchwarden.services import cmdb_import

router = APIRouter(prefix="/imports", tags=["imports"])


class RowResultOut(BaseModel):
    row: int
    action: str
    identity: str
    asset_id: int | None
    reason: str | None
    changed_fields: list[str]


class ImportReportOut(BaseModel):
    format: str
    dry_run: bool
    created: int
    updated: int
    unchanged: int
    rejected: int
    warnings: list[str]
    rows: list[RowResultOut]


@router.post("/cmdb", response_model=ImportReportOut)
async def import_cmdb(
    request: Request,
    principal: InventoryWriter,
    database: DbDep,
    settings: SettingsDep,
    format_: Annotated[Literal["csv", "json"] | None, Query(alias="format")] = None,
    dry_run: bool = False,
) -> ImportReportOut:
    """Upsert assets by hostname, serial or IP. Each row is applied on its own:
    a rejected row changes nothing and says why."""
    content = await read_limited(request, settings.max_import_bytes)
    report = await run_in_threadpool(
        cmdb_import.import_cmdb, database.factory, content, format_, principal.actor, dry_run
    )
    totals = report.totals
    return ImportReportOut(
        format=report.format,
        dry_run=report.dry_run,
        created=totals.created,
        updated=totals.updated,
        unchanged=totals.unchanged,
        rejected=totals.rejected,
        warnings=list(report.warnings),
        rows=[
            RowResultOut(
                row=r.row,
                action=r.action,
                identity=r.identity,
                asset_id=r.asset_id,
                reason=r.reason,
                changed_fields=list(r.changed_fields),
            )
            for r in report.rows
        ],
    )
