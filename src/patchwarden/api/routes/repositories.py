"""Package repositories: configuration and sync (the source of available patches)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, Field, StringConstraints

from patchwarden.api.deps import DbDep, InventoryReader, ReposManager
from patchwarden.domain.report_schema import Strict
from patchwarden.services import repositories

router = APIRouter(prefix="/repositories", tags=["patches"])

Word = Annotated[str, StringConstraints(min_length=1, max_length=128)]
RepositoryRef = Annotated[str, Path(max_length=100, description="The repository's name or id")]


class RepositoryIn(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    kind: Literal["apt", "rpm", "apk"]
    url: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    suite: Word | None = Field(default=None, description="apt only, e.g. bookworm-security")
    components: list[Word] = Field(default_factory=list, max_length=50)
    architectures: list[Word] = Field(default_factory=list, max_length=50)
    platform: Word | None = Field(default=None, description="e.g. debian:12 or debian")
    group: int | Word | None = Field(default=None, description="Only this group's assets")
    sync_interval_seconds: int = Field(default=6 * 3600, ge=60, le=30 * 86400)


class SyncIn(Strict):
    names: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] | None = Field(
        default=None, max_length=1000, description="Repository names or ids; all enabled if none"
    )
    force: bool = False


class RepositoryOut(BaseModel):
    id: int
    name: str
    kind: str
    url: str
    suite: str | None
    components: list[str]
    architectures: list[str]
    platform: str | None
    group: str | None
    enabled: bool
    sync_interval_seconds: int
    classification: str
    package_count: int
    notice_count: int
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None


class SyncResultOut(BaseModel):
    name: str
    status: Literal["updated", "unchanged", "failed"]
    packages: int
    notices: int
    error: str | None


def _out(view: repositories.RepositoryView) -> RepositoryOut:
    return RepositoryOut(**view.__dict__)


@router.get("", response_model=list[RepositoryOut])
def list_repositories(_: InventoryReader, database: DbDep) -> list[RepositoryOut]:
    with database.reading() as session:
        return [_out(r) for r in repositories.list_repositories(session)]


@router.post("", response_model=RepositoryOut, status_code=status.HTTP_201_CREATED)
def add_repository(body: RepositoryIn, principal: ReposManager, database: DbDep) -> RepositoryOut:
    """Add a repository; nothing is fetched until it is synced."""
    with database.transaction() as session:
        view = repositories.add_repository(
            session,
            principal.actor,
            name=body.name,
            kind=body.kind,
            url=body.url,
            suite=body.suite,
            components=body.components,
            architectures=body.architectures,
            platform=body.platform,
            group=body.group,
            sync_interval_seconds=body.sync_interval_seconds,
        )
    return _out(view)


@router.post("/sync", response_model=list[SyncResultOut])
def sync_repositories(
    body: SyncIn, principal: ReposManager, database: DbDep
) -> list[SyncResultOut]:
    """Fetch the named repositories (all enabled ones when none are named) now.

    200 with one result per repository: a repository that could not be fetched
    is `"failed"` with the reason and keeps its last good data."""
    results = repositories.sync(
        database.factory, principal.actor, body.names or (), force=body.force
    )
    return [SyncResultOut(**r.__dict__) for r in results]


@router.get("/{ref}", response_model=RepositoryOut)
def get_repository(ref: RepositoryRef, _: InventoryReader, database: DbDep) -> RepositoryOut:
    with database.reading() as session:
        return _out(repositories.get_repository(session, ref))


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT)
def remove_repository(ref: RepositoryRef, principal: ReposManager, database: DbDep) -> None:
    """Remove a repository and its data; its assets' patches are recomputed."""
    with database.transaction() as session:
        repositories.remove_repository(session, principal.actor, ref)
