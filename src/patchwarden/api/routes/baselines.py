"""Baselines: the versions a group should run, drift from them, and version sprawl."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, StringConstraints

from patchwarden.api.deps import DbDep, InventoryReader, InventoryWriter
from patchwarden.domain.report_schema import Strict
from patchwarden.services import baselines

router = APIRouter(tags=["baselines"])

GroupRef = Annotated[str, Path(max_length=100, description="The group's name or id")]
Text255 = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class BaselineIn(Strict):
    package: Text255
    version: Text255
    mode: Literal["desired", "minimum"] = "minimum"
    os_release: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


class BaselineOut(BaseModel):
    id: int
    group: str
    package: str
    version: str
    mode: str
    os_release: str | None


class DriftOut(BaseModel):
    asset_id: int
    hostname: str
    package: str
    installed: str | None
    expected: str
    mode: str
    status: Literal["missing", "below_minimum", "differs", "ok", "not_comparable"]
    detail: str


class VersionCountOut(BaseModel):
    version: str
    assets: int


class SprawlOut(BaseModel):
    package: str
    versions: int
    assets: int
    by_version: list[VersionCountOut]


@router.get("/groups/{ref}/baselines", response_model=list[BaselineOut])
def list_baselines(ref: GroupRef, _: InventoryReader, database: DbDep) -> list[BaselineOut]:
    with database.reading() as session:
        return [BaselineOut(**entry) for entry in baselines.list_entries(session, ref)]


@router.put("/groups/{ref}/baselines", response_model=BaselineOut)
def set_baseline(
    ref: GroupRef, body: BaselineIn, principal: InventoryWriter, database: DbDep
) -> BaselineOut:
    """Set one entry: replaces the group's entry for the same package and os_release."""
    with database.transaction() as session:
        entry = baselines.set_entry(
            session, principal.actor, ref, body.package, body.version, body.mode, body.os_release
        )
    return BaselineOut(**entry)


@router.delete("/baselines/{baseline_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_baseline(baseline_id: int, principal: InventoryWriter, database: DbDep) -> None:
    with database.transaction() as session:
        baselines.remove_entry(session, principal.actor, baseline_id)


@router.get("/groups/{ref}/drift", response_model=list[DriftOut])
def get_drift(
    ref: GroupRef, _: InventoryReader, database: DbDep, include_ok: bool = False
) -> list[DriftOut]:
    """Every member asset that deviates from the group's baseline (409 when it has none)."""
    with database.reading() as session:
        return [DriftOut(**row) for row in baselines.drift_report(session, ref, include_ok)]


@router.get("/sprawl", response_model=list[SprawlOut])
def get_sprawl(
    _: InventoryReader,
    database: DbDep,
    group: Annotated[str | None, Query(max_length=100, description="Name or id")] = None,
    package: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
) -> list[SprawlOut]:
    """How many versions of each package run in the fleet or a group, most first."""
    with database.reading() as session:
        return [
            SprawlOut(**row) for row in baselines.version_sprawl(session, group, limit, package)
        ]
