"""Asset groups: static lists of assets, and dynamic groups defined by a query
(see `patchwarden.domain.asset_query`).

Functions take a `Session`; the caller owns the transaction (wrap calls in
`storage.db.transaction`). Every change writes an audit event in that same
transaction, and every check happens before the first write, so a refused
request changes nothing.

A group is referred to by id (int) or by name (str; names are compared without
regard to case, and a string of digits that names no group is taken as an id).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from sqlalchemy import ColumnElement, func, insert, select
from sqlalchemy import delete as sa_delete
from sqlalchemy import update as sa_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patchwarden.domain.asset_query import QUERY_COLUMNS, Query, parse
from patchwarden.errors import Conflict, InvalidInput, NotFound
from patchwarden.services import audit
from patchwarden.storage.tables import Asset, Group, GroupMember, Repository, utcnow

GroupKind = Literal["static", "dynamic"]
GroupRef = int | str

NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}")
MAX_DESCRIPTION: Final = 2000
# Bound on the number of bound parameters in one IN (...) clause.
_CHUNK: Final = 1000
# Asset ids listed in an error message or an audit event, at most.
_LISTED: Final = 50


@dataclass(frozen=True)
class GroupView:
    id: int
    name: str
    kind: GroupKind
    query: str | None  # dynamic groups: the canonical query text
    description: str
    member_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Member:
    asset_id: int
    hostname: str


@dataclass(frozen=True)
class GroupDetail:
    """A group with its members (by asset id)."""

    group: GroupView
    members: tuple[Member, ...]

    @property
    def asset_ids(self) -> tuple[int, ...]:
        return tuple(member.asset_id for member in self.members)


# ---------------------------------------------------------------------------
# Reading


def get(session: Session, ref: GroupRef) -> GroupView:
    group = _load(session, ref)
    return _view(group, len(_member_ids(session, group)))


def detail(session: Session, ref: GroupRef) -> GroupDetail:
    """The group and its members with their hostnames."""
    group = _load(session, ref)
    ids = _member_ids(session, group)
    hostnames: dict[int, str] = {}
    for chunk in _chunks(ids):
        rows = session.execute(select(Asset.id, Asset.hostname).where(Asset.id.in_(chunk)))
        hostnames.update((asset_id, hostname) for asset_id, hostname in rows)
    found = tuple(Member(i, hostnames[i]) for i in ids if i in hostnames)
    return GroupDetail(_view(group, len(found)), found)


def list_groups(session: Session) -> list[GroupView]:
    """All groups by name, with member counts."""
    groups = list(session.execute(select(Group).order_by(Group.name, Group.id)).scalars())
    counts = _member_counts(session, groups)
    return [_view(group, counts[group.id]) for group in groups]


def members(session: Session, group: GroupRef | GroupView) -> list[int]:
    """The ids of the group's assets, ascending. A dynamic group is evaluated now."""
    row = _load(session, group.id if isinstance(group, GroupView) else group)
    return _member_ids(session, row)


def groups_of_asset(session: Session, asset_id: int) -> list[GroupView]:
    """The groups the asset belongs to now, by name."""
    table = Asset.__table__
    row = session.execute(
        select(*(table.c[name] for name in sorted(QUERY_COLUMNS))).where(table.c.id == asset_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"asset {asset_id} not found")
    attrs = row._asdict()
    static_ids = set(
        session.execute(
            select(GroupMember.group_id).where(GroupMember.asset_id == asset_id)
        ).scalars()
    )
    groups = [
        group
        for group in session.execute(select(Group).order_by(Group.name, Group.id)).scalars()
        if (_query_of(group).matches(attrs) if group.kind == "dynamic" else group.id in static_ids)
    ]
    counts = _member_counts(session, groups)
    return [_view(group, counts[group.id]) for group in groups]


# ---------------------------------------------------------------------------
# Changing


def create_static(
    session: Session,
    actor: str,
    name: str,
    asset_ids: Iterable[int] = (),
    description: str = "",
) -> GroupView:
    name = _check_name(name)
    description = _check_description(description)
    ids = _unique_ids(asset_ids)
    _check_name_free(session, name)
    _check_assets_exist(session, ids)
    now = utcnow()
    group = Group(
        name=name,
        description=description,
        kind="static",
        query=None,
        created_at=now,
        updated_at=now,
    )
    _insert_group(session, group)
    _insert_members(session, group.id, ids)
    audit.record(
        session,
        actor,
        "group.create",
        "group",
        group.id,
        {"name": name, "kind": "static", "description": description, **_id_details(ids)},
    )
    return _view(group, len(ids))


def create_dynamic(
    session: Session, actor: str, name: str, query: str, description: str = ""
) -> GroupView:
    name = _check_name(name)
    description = _check_description(description)
    parsed = parse(query)
    _check_name_free(session, name)
    now = utcnow()
    group = Group(
        name=name,
        description=description,
        kind="dynamic",
        query=parsed.text,
        created_at=now,
        updated_at=now,
    )
    _insert_group(session, group)
    audit.record(
        session,
        actor,
        "group.create",
        "group",
        group.id,
        {"name": name, "kind": "dynamic", "description": description, "query": parsed.text},
    )
    return _view(group, len(_member_ids(session, group)))


def _mark_for_rescore(session: Session, asset_ids: Sequence[int]) -> None:
    """Group SLA policies apply by membership: members' due dates need recomputing."""
    for chunk in _chunks(list(asset_ids)):
        session.execute(
            sa_update(Asset)
            .where(Asset.id.in_(chunk))
            .values(scores_dirty=True)
            .execution_options(synchronize_session=False)
        )


def add_members(session: Session, actor: str, ref: GroupRef, asset_ids: Iterable[int]) -> GroupView:
    """Add assets to a static group; ones already in it are left as they are."""
    group = _load(session, ref)
    _require_static(group, "add assets to")
    ids = _unique_ids(asset_ids)
    _check_assets_exist(session, ids)
    current = set(_member_ids(session, group))
    new = [asset_id for asset_id in ids if asset_id not in current]
    if new:
        _insert_members(session, group.id, new)
        _mark_for_rescore(session, new)
        group.updated_at = utcnow()
        audit.record(
            session,
            actor,
            "group.add_members",
            "group",
            group.id,
            {"name": group.name, **_id_details(new)},
        )
    return _view(group, len(current) + len(new))


def remove_members(
    session: Session, actor: str, ref: GroupRef, asset_ids: Iterable[int]
) -> GroupView:
    """Remove assets from a static group; ones not in it are ignored."""
    group = _load(session, ref)
    _require_static(group, "remove assets from")
    ids = _unique_ids(asset_ids)
    _check_assets_exist(session, ids)
    current = set(_member_ids(session, group))
    gone = [asset_id for asset_id in ids if asset_id in current]
    for chunk in _chunks(gone):
        session.execute(
            sa_delete(GroupMember).where(
                GroupMember.group_id == group.id, GroupMember.asset_id.in_(chunk)
            )
        )
    if gone:
        _mark_for_rescore(session, gone)
        group.updated_at = utcnow()
        audit.record(
            session,
            actor,
            "group.remove_members",
            "group",
            group.id,
            {"name": group.name, **_id_details(gone)},
        )
    return _view(group, len(current) - len(gone))


def update(
    session: Session,
    actor: str,
    ref: GroupRef,
    *,
    name: str | None = None,
    description: str | None = None,
    query: str | None = None,
) -> GroupView:
    """Change what is given (None: leave as is). Only dynamic groups have a query."""
    group = _load(session, ref)
    changes: dict[str, tuple[str | None, str | None]] = {}
    if name is not None:
        name = _check_name(name)
        if name != group.name:
            if name.lower() != group.name.lower():
                _check_name_free(session, name)
            changes["name"] = (group.name, name)
    if description is not None:
        description = _check_description(description)
        if description != group.description:
            changes["description"] = (group.description, description)
    if query is not None:
        if group.kind != "dynamic":
            raise Conflict(
                f"group {group.name!r} is static: it has no query. Create a dynamic group "
                "instead, or change its members with add/remove"
            )
        text = parse(query).text
        if text != group.query:
            changes["query"] = (group.query, text)
    if changes:
        for field, (_, new) in changes.items():
            setattr(group, field, new)
        group.updated_at = utcnow()
        try:
            session.flush()
        except IntegrityError as exc:
            raise Conflict(f"a group named {name!r} already exists") from exc
        audit.record(
            session,
            actor,
            "group.update",
            "group",
            group.id,
            {field: {"from": old, "to": new} for field, (old, new) in changes.items()},
        )
    return _view(group, len(_member_ids(session, group)))


def delete(session: Session, actor: str, ref: GroupRef) -> None:
    """Delete a group (its assets are not touched)."""
    group = _load(session, ref)
    group_id = group.id
    # A repository narrowed to this group would silently serve every asset.
    narrowed = (
        session.execute(
            select(Repository.name).where(Repository.group_id == group_id).order_by(Repository.name)
        )
        .scalars()
        .all()
    )
    if narrowed:
        raise Conflict(
            f"group {group.name} limits repositories {', '.join(narrowed)}: "
            "remove them or give them another group first"
        )
    details: dict[str, object] = {"name": group.name, "kind": group.kind, "query": group.query}
    if group.kind == "static":
        details.update(_id_details(_member_ids(session, group)))
    session.execute(sa_delete(GroupMember).where(GroupMember.group_id == group_id))
    session.delete(group)
    session.flush()
    audit.record(session, actor, "group.delete", "group", group_id, details)


# ---------------------------------------------------------------------------
# Helpers


def _view(group: Group, member_count: int) -> GroupView:
    kind: GroupKind = "dynamic" if group.kind == "dynamic" else "static"
    return GroupView(
        id=group.id,
        name=group.name,
        kind=kind,
        query=group.query,
        description=group.description,
        member_count=member_count,
        created_at=group.created_at,
        updated_at=group.updated_at,
    )


def _load(session: Session, ref: GroupRef) -> Group:
    if isinstance(ref, int):
        group = session.get(Group, ref)
        if group is None:
            raise NotFound(f"group {ref} not found")
        return group
    found = _by_name(session, ref.strip())
    if found is None and ref.strip().isdigit():
        found = session.get(Group, int(ref.strip()))
    if found is None:
        raise NotFound(f"group {ref!r} not found (give its name or id; `groups list` shows them)")
    return found


def _by_name(session: Session, name: str) -> Group | None:
    return session.execute(
        select(Group).where(func.lower(Group.name) == name.lower()).order_by(Group.id).limit(1)
    ).scalar_one_or_none()


def _query_of(group: Group) -> Query:
    return parse(group.query or "")


def _member_ids(session: Session, group: Group) -> list[int]:
    if group.kind == "dynamic":
        query = _query_of(group)
        return [
            asset_id
            for asset_id, attrs in _asset_rows(session, query.columns)
            if query.matches(attrs)
        ]
    return list(
        session.execute(
            select(GroupMember.asset_id)
            .where(GroupMember.group_id == group.id)
            .order_by(GroupMember.asset_id)
        ).scalars()
    )


def _member_counts(session: Session, groups: Sequence[Group]) -> dict[int, int]:
    """Member counts of several groups: static ones counted by the database,
    dynamic ones evaluated together in one pass over the assets."""
    counts = {group.id: 0 for group in groups}
    static_ids = [group.id for group in groups if group.kind != "dynamic"]
    for chunk in _chunks(static_ids):
        rows = session.execute(
            select(GroupMember.group_id, func.count())
            .where(GroupMember.group_id.in_(chunk))
            .group_by(GroupMember.group_id)
        )
        for group_id, count in rows:
            counts[group_id] = count
    queries = {group.id: _query_of(group) for group in groups if group.kind == "dynamic"}
    if queries:
        columns = frozenset[str]().union(*(query.columns for query in queries.values()))
        for _, attrs in _asset_rows(session, columns):
            for group_id, query in queries.items():
                if query.matches(attrs):
                    counts[group_id] += 1
    return counts


def _asset_rows(
    session: Session, columns: Iterable[str]
) -> Iterator[tuple[int, Mapping[str, object]]]:
    """(id, {column: value}) for every asset, loading only `columns`."""
    table = Asset.__table__
    selected = [table.c.id, *(table.c[name] for name in sorted(set(columns) - {"id"}))]
    statement = select(*selected).order_by(table.c.id)
    names = [column.name for column in selected]
    result = session.execute(statement.execution_options(yield_per=2000))
    try:
        for row in result:
            yield row[0], dict(zip(names, row, strict=True))
    finally:
        result.close()  # a server-side cursor on PostgreSQL, even if iteration stops early


def _check_name(name: str) -> str:
    name = name.strip()
    if not NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"group name {name!r} must be 1-100 characters of letters, digits, space, "
            "'_', '.' and '-', starting with a letter or digit"
        )
    return name


def _check_description(description: str) -> str:
    description = description.strip()
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"description is longer than {MAX_DESCRIPTION} characters")
    return description


def _check_name_free(session: Session, name: str) -> None:
    existing = _by_name(session, name)
    if existing is not None:
        raise Conflict(f"a group named {existing.name!r} already exists (id {existing.id})")


def _require_static(group: Group, verb: str) -> None:
    if group.kind != "static":
        raise Conflict(
            f"cannot {verb} dynamic group {group.name!r}: its members are the assets matching "
            f"its query ({group.query}). Change the query, or use a static group"
        )


def _insert_group(session: Session, group: Group) -> None:
    session.add(group)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create won the race
        raise Conflict(f"a group named {group.name!r} already exists") from exc


def _insert_members(session: Session, group_id: int, asset_ids: Sequence[int]) -> None:
    for chunk in _chunks(asset_ids):
        session.execute(insert(GroupMember), [{"group_id": group_id, "asset_id": a} for a in chunk])


def _unique_ids(asset_ids: Iterable[int]) -> list[int]:
    ids = list(dict.fromkeys(asset_ids))
    bad = [value for value in ids if isinstance(value, bool) or not isinstance(value, int)]
    if bad:
        raise InvalidInput(f"asset ids must be whole numbers, got {bad[:_LISTED]!r}")
    return ids


def _check_assets_exist(session: Session, asset_ids: Sequence[int]) -> None:
    found: set[int] = set()
    for chunk in _chunks(asset_ids):
        condition: ColumnElement[bool] = Asset.id.in_(chunk)
        found.update(session.execute(select(Asset.id).where(condition)).scalars())
    missing = sorted(set(asset_ids) - found)
    if missing:
        listed = ", ".join(str(asset_id) for asset_id in missing[:_LISTED])
        more = f" and {len(missing) - _LISTED} more" if len(missing) > _LISTED else ""
        noun = "id" if len(missing) == 1 else "ids"
        raise NotFound(f"unknown asset {noun}: {listed}{more}; nothing was changed")


def _id_details(asset_ids: Sequence[int]) -> dict[str, object]:
    """Audit details for a set of assets: the count, and the ids unless there are very many."""
    limit = 1000
    details: dict[str, object] = {"asset_count": len(asset_ids)}
    details["asset_ids"] = sorted(asset_ids)[:limit]
    if len(asset_ids) > limit:
        details["asset_ids_truncated"] = True
    return details


def _chunks(values: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]
