"""Assets, their inventory now and at any moment, and their history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status

from patchwarden.api.deps import DbDep, InventoryReader, InventoryWriter
from patchwarden.api.schemas import (
    AssetDetailOut,
    AssetListOut,
    AssetSummaryOut,
    InventoryReportOut,
    PackageEventOut,
    PackageOut,
    SshAssetIn,
    SshCollectionOut,
)
from patchwarden.domain.attributes import AssetAttributes
from patchwarden.errors import InvalidInput
from patchwarden.services import agentless, assets

router = APIRouter(prefix="/assets", tags=["assets"])


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput(f"{name} must carry a UTC offset, e.g. 2026-01-31T12:00:00Z")
    return value


@router.get("", response_model=AssetListOut)
def list_assets(
    _: InventoryReader,
    database: DbDep,
    search: Annotated[str | None, Query(max_length=255)] = None,
    status_: Annotated[str | None, Query(alias="status", pattern="^(active|stale)$")] = None,
    os: Annotated[str | None, Query(max_length=64)] = None,
    environment: Annotated[str | None, Query(max_length=64)] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    source: Annotated[str | None, Query(pattern="^(agent|ssh|cmdb)$")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AssetListOut:
    flt = assets.AssetFilter(
        search=search, status=status_, os_id=os, environment=environment, tag=tag, source=source
    )
    with database.transaction() as session:
        rows, total = assets.list_assets(session, flt, limit, offset)
        items = [AssetSummaryOut(**assets.asset_summary(a)) for a in rows]
    return AssetListOut(total=total, items=items)


@router.get("/{asset_id}", response_model=AssetDetailOut)
def get_asset(asset_id: int, _: InventoryReader, database: DbDep) -> AssetDetailOut:
    with database.transaction() as session:
        return AssetDetailOut(**assets.asset_detail(session, assets.get_asset(session, asset_id)))


@router.patch("/{asset_id}", response_model=AssetDetailOut)
def update_asset(
    asset_id: int, body: AssetAttributes, principal: InventoryWriter, database: DbDep
) -> AssetDetailOut:
    """Change business attributes: criticality, environment, owner, tags …"""
    with database.transaction() as session:
        asset = assets.update_attributes(session, principal.actor, asset_id, body)
        return AssetDetailOut(**assets.asset_detail(session, asset))


@router.delete("/{asset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_asset(asset_id: int, principal: InventoryWriter, database: DbDep) -> None:
    with database.transaction() as session:
        assets.delete_asset(session, principal.actor, asset_id)


@router.get("/{asset_id}/packages", response_model=list[PackageOut])
def list_packages(
    asset_id: int,
    _: InventoryReader,
    database: DbDep,
    at: Annotated[datetime | None, Query(description="Inventory as it was at this moment")] = None,
    name: Annotated[str | None, Query(max_length=255)] = None,
) -> list[PackageOut]:
    with database.transaction() as session:
        rows = assets.packages_of(session, asset_id, _aware(at, "at"), name)
        return [PackageOut.model_validate(r) for r in rows]


@router.get("/{asset_id}/package-events", response_model=list[PackageEventOut])
def list_package_events(
    asset_id: int,
    _: InventoryReader,
    database: DbDep,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[PackageEventOut]:
    with database.transaction() as session:
        rows = assets.package_events(
            session, asset_id, _aware(since, "since"), _aware(until, "until"), limit
        )
        return [PackageEventOut.model_validate(r) for r in rows]


@router.get("/{asset_id}/reports", response_model=list[InventoryReportOut])
def list_reports(
    asset_id: int,
    _: InventoryReader,
    database: DbDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[InventoryReportOut]:
    with database.transaction() as session:
        return [
            InventoryReportOut.model_validate(r)
            for r in assets.reports_of(session, asset_id, limit)
        ]


@router.post("/ssh", response_model=SshCollectionOut, status_code=status.HTTP_201_CREATED)
def add_ssh_asset(
    body: SshAssetIn, principal: InventoryWriter, database: DbDep
) -> SshCollectionOut:
    """Add an agentless asset and collect its inventory over SSH now.

    The host key presented now is trusted from then on (trust on first use)."""
    result = agentless.add_ssh_asset(
        database.factory, principal.actor, body.destination, body.port, body.key_path
    )
    return SshCollectionOut(**result.__dict__)


@router.post("/{asset_id}/collect", response_model=SshCollectionOut)
def collect_ssh_asset(
    asset_id: int, principal: InventoryWriter, database: DbDep
) -> SshCollectionOut:
    """Collect an agentless asset's inventory again; a changed host key is refused."""
    result = agentless.collect_asset(database.factory, principal.actor, asset_id)
    return SshCollectionOut(**result.__dict__)
