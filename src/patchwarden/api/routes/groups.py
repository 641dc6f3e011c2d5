"""Groups of assets: static lists and dynamic queries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, Field, StringConstraints

from patchwarden.api.deps import DbDep, InventoryReader, InventoryWriter
from patchwarden.domain.report_schema import Strict
from patchwarden.errors import InvalidInput
from patchwarden.services import groups

router = APIRouter(prefix="/groups", tags=["groups"])

GroupName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
QueryText = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class GroupCreateIn(Strict):
    name: GroupName
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    asset_ids: list[int] | None = Field(default=None, max_length=100_000)
    query: QueryText | None = Field(default=None, description="e.g. os = debian and tag = web")


class GroupUpdateIn(Strict):
    name: GroupName | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    query: QueryText | None = None


class MembersIn(Strict):
    asset_ids: list[int] = Field(min_length=1, max_length=100_000)


class GroupOut(BaseModel):
    id: int
    name: str
    kind: Literal["static", "dynamic"]
    query: str | None
    description: str
    member_count: int
    created_at: datetime
    updated_at: datetime


class MemberOut(BaseModel):
    asset_id: int
    hostname: str


class GroupDetailOut(GroupOut):
    members: list[MemberOut]


def _out(view: groups.GroupView) -> GroupOut:
    return GroupOut(**view.__dict__)


@router.get("", response_model=list[GroupOut])
def list_groups(_: InventoryReader, database: DbDep) -> list[GroupOut]:
    with database.transaction() as session:
        return [_out(g) for g in groups.list_groups(session)]


@router.post("", response_model=GroupOut, status_code=status.HTTP_201_CREATED)
def create_group(body: GroupCreateIn, principal: InventoryWriter, database: DbDep) -> GroupOut:
    """A static group (`asset_ids`) or a dynamic one (`query`), not both."""
    if (body.asset_ids is None) == (body.query is None):
        raise InvalidInput("give either asset_ids (static group) or query (dynamic group)")
    with database.transaction() as session:
        if body.query is not None:
            view = groups.create_dynamic(
                session, principal.actor, body.name, body.query, body.description
            )
        else:
            view = groups.create_static(
                session, principal.actor, body.name, body.asset_ids or [], body.description
            )
    return _out(view)


@router.get("/{group_id}", response_model=GroupDetailOut)
def get_group(group_id: int, _: InventoryReader, database: DbDep) -> GroupDetailOut:
    with database.transaction() as session:
        detail = groups.detail(session, group_id)
    return GroupDetailOut(
        **detail.group.__dict__,
        members=[MemberOut(asset_id=m.asset_id, hostname=m.hostname) for m in detail.members],
    )


@router.patch("/{group_id}", response_model=GroupOut)
def update_group(
    group_id: int, body: GroupUpdateIn, principal: InventoryWriter, database: DbDep
) -> GroupOut:
    with database.transaction() as session:
        view = groups.update(
            session,
            principal.actor,
            group_id,
            name=body.name,
            description=body.description,
            query=body.query,
        )
    return _out(view)


@router.delete("/{group_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_group(group_id: int, principal: InventoryWriter, database: DbDep) -> None:
    with database.transaction() as session:
        groups.delete(session, principal.actor, group_id)


@router.post("/{group_id}/members", response_model=GroupOut)
def add_members(
    group_id: int, body: MembersIn, principal: InventoryWriter, database: DbDep
) -> GroupOut:
    with database.transaction() as session:
        return _out(groups.add_members(session, principal.actor, group_id, body.asset_ids))


@router.delete("/{group_id}/members", response_model=GroupOut)
def remove_members(
    group_id: int, body: MembersIn, principal: InventoryWriter, database: DbDep
) -> GroupOut:
    with database.transaction() as session:
        return _out(groups.remove_members(session, principal.actor, group_id, body.asset_ids))
