"""Asset groups on SQLite and PostgreSQL: static and dynamic membership, names,
refusals that change nothing, and the audit trail."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.errors import Conflict, InvalidInput, NotFound
from patchwarden.services import groups
from patchwarden.services.audit import verify_chain
from patchwarden.storage.db import transaction
from patchwarden.storage.tables import Asset, AuditEvent, Group, GroupMember

ACTOR = "test:alice"


def add_asset(session: Session, hostname: str, **values: Any) -> int:
    asset = Asset(hostname=hostname, source=values.pop("source", "agent"), **values)
    session.add(asset)
    session.flush()
    return asset.id


@pytest.fixture
def fleet(session_factory: sessionmaker[Session]) -> dict[str, int]:
    with transaction(session_factory) as session:
        return {
            "web1": add_asset(
                session, "web-01", os_id="debian", os_version_id="12", tags=["pci", "web"],
                criticality=2, environment="prod", internet_facing=True,
            ),
            "web2": add_asset(
                session, "web-02", os_id="debian", os_version_id="11", tags=["web"],
                criticality=3, environment="staging",
            ),
            "db1": add_asset(
                session, "db-01", os_id="ubuntu", os_version_id="22.04", tags=["database", "pci"],
                criticality=1, environment="prod",
            ),
        }  # fmt: skip


def state(factory: sessionmaker[Session]) -> dict[str, Any]:
    """Everything a group operation may change."""
    with factory() as session:
        return {
            "groups": [
                (g.id, g.name, g.kind, g.query, g.description, g.updated_at)
                for g in session.execute(select(Group).order_by(Group.id)).scalars()
            ],
            "members": session.execute(
                select(GroupMember.group_id, GroupMember.asset_id).order_by(
                    GroupMember.group_id, GroupMember.asset_id
                )
            ).all(),
            "audit": session.execute(select(func.count()).select_from(AuditEvent)).scalar_one(),
        }


def audit_actions(factory: sessionmaker[Session]) -> list[tuple[str, str | None, dict[str, Any]]]:
    with factory() as session:
        return [
            (e.action, e.target_id, e.details)
            for e in session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars()
        ]


# ---------------------------------------------------------------------------
# Static groups


def test_static_group_lifecycle(
    session_factory: sessionmaker[Session], fleet: dict[str, int]
) -> None:
    with transaction(session_factory) as session:
        view = groups.create_static(
            session, ACTOR, "Front ends", [fleet["web2"], fleet["web1"], fleet["web1"]], "  web  "
        )
    assert (view.name, view.kind, view.query, view.description) == (
        "Front ends", "static", None, "web",
    )  # fmt: skip
    assert view.member_count == 2
    with transaction(session_factory) as session:
        assert groups.members(session, view.id) == sorted([fleet["web1"], fleet["web2"]])
        assert groups.members(session, view) == groups.members(session, "front ENDS")
        assert groups.get(session, str(view.id)) == groups.get(session, "Front ends")
        found = groups.detail(session, view.id)
    assert [(m.asset_id, m.hostname) for m in found.members] == [
        (fleet["web1"], "web-01"), (fleet["web2"], "web-02"),
    ]  # fmt: skip
    assert found.asset_ids == (fleet["web1"], fleet["web2"])

    with transaction(session_factory) as session:
        after_add = groups.add_members(session, ACTOR, "Front ends", [fleet["db1"], fleet["web1"]])
    assert after_add.member_count == 3
    with transaction(session_factory) as session:
        again = groups.add_members(session, ACTOR, view.id, [fleet["db1"]])  # already in: no-op
        after_remove = groups.remove_members(
            session, ACTOR, view.id, [fleet["web2"], fleet["web2"]]
        )
        unchanged = groups.remove_members(session, ACTOR, view.id, [fleet["web2"]])
    assert again.member_count == 3
    assert after_remove.member_count == unchanged.member_count == 2
    with transaction(session_factory) as session:
        assert groups.members(session, view.id) == sorted([fleet["web1"], fleet["db1"]])

    with transaction(session_factory) as session:
        groups.delete(session, ACTOR, view.id)
    with transaction(session_factory) as session:
        with pytest.raises(NotFound, match="group 'Front ends' not found"):
            groups.get(session, "Front ends")
        assert session.execute(select(func.count()).select_from(GroupMember)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(Asset)).scalar_one() == 3

    events = audit_actions(session_factory)
    assert [action for action, _, _ in events] == [
        "group.create", "group.add_members", "group.remove_members", "group.delete",
    ]  # fmt: skip
    assert all(target == str(view.id) for _, target, _ in events)
    assert events[0][2]["asset_ids"] == sorted([fleet["web1"], fleet["web2"]])
    assert events[1][2]["asset_ids"] == [fleet["db1"]]
    assert events[2][2]["asset_ids"] == [fleet["web2"]]
    assert events[3][2]["name"] == "Front ends"
    with session_factory() as session:
        assert verify_chain(session).ok


def test_empty_static_group(session_factory: sessionmaker[Session]) -> None:
    with transaction(session_factory) as session:
        view = groups.create_static(session, ACTOR, "later")
        assert groups.members(session, view.id) == []
        assert groups.list_groups(session)[0].member_count == 0


def test_unknown_asset_ids_change_nothing(
    session_factory: sessionmaker[Session], fleet: dict[str, int]
) -> None:
    with transaction(session_factory) as session:
        view = groups.create_static(session, ACTOR, "web", [fleet["web1"]])
    before = state(session_factory)
    missing = max(fleet.values()) + 100
    with (
        pytest.raises(NotFound, match=f"unknown asset ids: {missing}, {missing + 1}; nothing"),
        transaction(session_factory) as session,
    ):
        groups.create_static(session, ACTOR, "other", [fleet["db1"], missing + 1, missing])
    with (
        pytest.raises(NotFound, match=f"unknown asset id: {missing}"),
        transaction(session_factory) as session,
    ):
        groups.add_members(session, ACTOR, view.id, [fleet["db1"], missing])
    with (
        pytest.raises(NotFound, match=f"unknown asset id: {missing}"),
        transaction(session_factory) as session,
    ):
        groups.remove_members(session, ACTOR, view.id, [fleet["web1"], missing])
    assert state(session_factory) == before


def test_many_unknown_ids_are_listed_briefly(session_factory: sessionmaker[Session]) -> None:
    with (
        pytest.raises(NotFound, match=r"unknown asset ids: 1, 2, .*, 50 and 2450 more"),
        transaction(session_factory) as session,
    ):
        groups.create_static(session, ACTOR, "big", range(1, 2501))


def test_large_static_group(session_factory: sessionmaker[Session]) -> None:
    with transaction(session_factory) as session:
        session.execute(
            insert(Asset), [{"hostname": f"h{i}", "source": "agent"} for i in range(2500)]
        )
        ids = list(session.execute(select(Asset.id).order_by(Asset.id)).scalars())
        view = groups.create_static(session, ACTOR, "big", ids)
    assert view.member_count == 2500
    with transaction(session_factory) as session:
        assert groups.members(session, "big") == ids
        assert groups.remove_members(session, ACTOR, "big", ids[:1500]).member_count == 1000
    with session_factory() as session:
        event = session.execute(
            select(AuditEvent).where(AuditEvent.action == "group.create")
        ).scalar_one()
    assert event.details["asset_count"] == 2500
    assert len(event.details["asset_ids"]) == 1000
    assert event.details["asset_ids_truncated"] is True


# ---------------------------------------------------------------------------
# Dynamic groups


def test_dynamic_group_membership_follows_the_assets(
    session_factory: sessionmaker[Session], fleet: dict[str, int]
) -> None:
    with transaction(session_factory) as session:
        pci = groups.create_dynamic(
            session, ACTOR, "pci-critical", "TAG = pci AND criticality <= 2"
        )
        debian12 = groups.create_dynamic(
            session, ACTOR, "debian 12", 'os = debian and os_version = "12"'
        )
        exposed = groups.create_dynamic(
            session, ACTOR, "prod-internal",
            "environment in (prod, staging) and not internet_facing = true", "not exposed",
        )  # fmt: skip
    assert pci.kind == "dynamic"
    assert pci.query == "tag = pci and criticality <= 2"  # stored in canonical form
    assert pci.member_count == 2
    assert debian12.member_count == 1
    assert exposed.description == "not exposed"
    with transaction(session_factory) as session:
        assert groups.members(session, pci.id) == sorted([fleet["web1"], fleet["db1"]])
        assert groups.members(session, "debian 12") == [fleet["web1"]]
        assert groups.members(session, exposed) == sorted([fleet["web2"], fleet["db1"]])
        # Membership is evaluated now: change an asset and the group follows.
        session.get_one(Asset, fleet["db1"]).criticality = 4
        session.get_one(Asset, fleet["web2"]).tags = ["pci"]
        session.get_one(Asset, fleet["web2"]).criticality = 1
    with transaction(session_factory) as session:
        assert groups.members(session, pci.id) == sorted([fleet["web1"], fleet["web2"]])
        listed = {view.name: view.member_count for view in groups.list_groups(session)}
    assert listed == {"debian 12": 1, "pci-critical": 2, "prod-internal": 2}


def test_list_groups_mixes_kinds_in_name_order(
    session_factory: sessionmaker[Session], fleet: dict[str, int]
) -> None:
    with transaction(session_factory) as session:
        groups.create_static(session, ACTOR, "b-static", [fleet["db1"]])
        groups.create_dynamic(session, ACTOR, "a-dynamic", 'hostname ~ "web-*" or tag = database')
        groups.create_static(session, ACTOR, "c-empty")
    with transaction(session_factory) as session:
        listed = groups.list_groups(session)
    assert [(v.name, v.kind, v.member_count) for v in listed] == [
        ("a-dynamic", "dynamic", 3), ("b-static", "static", 1), ("c-empty", "static", 0),
    ]  # fmt: skip
    assert all(v.created_at.tzinfo is not None for v in listed)


def test_dynamic_groups_refuse_member_edits(
    session_factory: sessionmaker[Session], fleet: dict[str, int]
) -> None:
    with transaction(session_factory) as session:
        groups.create_dynamic(session, ACTOR, "pci", "tag = pci")
    before = state(session_factory)
    for change in (groups.add_members, groups.remove_members):
        with (
            pytest.raises(Conflict, match=r"dynamic group 'pci'.*tag = pci.*Change the query"),
            transaction(session_factory) as session,
        ):
            change(session, ACTOR, "pci", [fleet["web2"]])
    assert state(session_factory) == before


def test_invalid_query_creates_nothing(session_factory: sessionmaker[Session]) -> None:
    before = state(session_factory)
    with (
        pytest.raises(InvalidInput, match="invalid query at position 1: unknown field 'colour'"),
        transaction(session_factory) as session,
    ):
        groups.create_dynamic(session, ACTOR, "red", "colour = red")
    assert state(session_factory) == before


def test_groups_of_asset(session_factory: sessionmaker[Session], fleet: dict[str, int]) -> None:
    with transaction(session_factory) as session:
        groups.create_static(session, ACTOR, "web static", [fleet["web1"], fleet["web2"]])
        groups.create_dynamic(session, ACTOR, "pci", "tag = pci")
        groups.create_dynamic(session, ACTOR, "ubuntu", "os = ubuntu")
        groups.create_static(session, ACTOR, "db static", [fleet["db1"]])
    with transaction(session_factory) as session:
        web1 = groups.groups_of_asset(session, fleet["web1"])
        db1 = groups.groups_of_asset(session, fleet["db1"])
        with pytest.raises(NotFound, match="asset 999 not found"):
            groups.groups_of_asset(session, 999)
    assert [(v.name, v.member_count) for v in web1] == [("pci", 2), ("web static", 2)]
    assert [v.name for v in db1] == ["db static", "pci", "ubuntu"]


# ---------------------------------------------------------------------------
# Names, updates, references


@pytest.mark.parametrize(
    "name", ["", " ", "-lead", "_x", "a/b", "ünïcode", "semi;colon", "x" * 101, "tab\tname"]
)
def test_invalid_names(session_factory: sessionmaker[Session], name: str) -> None:
    with (
        pytest.raises(InvalidInput, match="must be 1-100 characters"),
        transaction(session_factory) as session,
    ):
        groups.create_static(session, ACTOR, name)


@pytest.mark.parametrize("name", ["a", "Web servers", "db_prod-1.2", "9lives", "x" * 100])
def test_valid_names(session_factory: sessionmaker[Session], name: str) -> None:
    with transaction(session_factory) as session:
        assert groups.create_static(session, ACTOR, f" {name} ").name == name


def test_duplicate_names_conflict(session_factory: sessionmaker[Session]) -> None:
    with transaction(session_factory) as session:
        first = groups.create_static(session, ACTOR, "Web")
        groups.create_dynamic(session, ACTOR, "db", "tag = database")
    before = state(session_factory)
    for name in ("Web", "web", "WEB"):
        with (
            pytest.raises(
                Conflict, match=f"a group named 'Web' already exists \\(id {first.id}\\)"
            ),
            transaction(session_factory) as session,
        ):
            groups.create_dynamic(session, ACTOR, name, "tag = x")
    with (
        pytest.raises(Conflict, match="a group named 'db' already exists"),
        transaction(session_factory) as session,
    ):
        groups.update(session, ACTOR, "Web", name="DB")
    assert state(session_factory) == before


def test_update(session_factory: sessionmaker[Session], fleet: dict[str, int]) -> None:
    with transaction(session_factory) as session:
        dynamic = groups.create_dynamic(session, ACTOR, "pci", "tag = pci")
        static = groups.create_static(session, ACTOR, "static", [fleet["web1"]])
    with transaction(session_factory) as session:
        changed = groups.update(
            session,
            ACTOR,
            "pci",
            name="PCI",
            description="card data",
            query="tag=PCI and os=debian",
        )
        renamed = groups.update(session, ACTOR, "static", name="Static")  # case-only rename
        same = groups.update(session, ACTOR, "PCI", query="tag = pci and os = debian")
    assert (changed.name, changed.description, changed.query) == (
        "PCI", "card data", "tag = pci and os = debian",
    )  # fmt: skip
    assert changed.member_count == 1
    assert changed.updated_at >= dynamic.updated_at
    assert renamed.name == "Static"
    assert same == changed  # nothing to change: no new audit event, same timestamps
    before = state(session_factory)
    with (
        pytest.raises(Conflict, match="group 'Static' is static: it has no query"),
        transaction(session_factory) as session,
    ):
        groups.update(session, ACTOR, static.id, query="tag = pci")
    with (
        pytest.raises(InvalidInput, match="invalid query"),
        transaction(session_factory) as session,
    ):
        groups.update(session, ACTOR, dynamic.id, description="x", query="tag ==")
    with (
        pytest.raises(InvalidInput, match="must be 1-100"),
        transaction(session_factory) as session,
    ):
        groups.update(session, ACTOR, dynamic.id, name="")
    assert state(session_factory) == before
    updates = [e for e in audit_actions(session_factory) if e[0] == "group.update"]
    assert [details for _, _, details in updates] == [
        {
            "name": {"from": "pci", "to": "PCI"},
            "description": {"from": "", "to": "card data"},
            "query": {"from": "tag = pci", "to": "tag = pci and os = debian"},
        },
        {"name": {"from": "static", "to": "Static"}},
    ]


def test_references(session_factory: sessionmaker[Session], fleet: dict[str, int]) -> None:
    with transaction(session_factory) as session:
        first = groups.create_static(session, ACTOR, "first", [fleet["web1"]])
        numeric = groups.create_static(session, ACTOR, str(first.id + 10), [fleet["db1"]])
    with transaction(session_factory) as session:
        assert groups.get(session, first.id).name == "first"
        assert groups.get(session, str(first.id)).name == "first"  # digits: an id
        assert groups.get(session, numeric.name).id == numeric.id  # a name wins over an id
        with pytest.raises(NotFound, match="group 12345 not found"):
            groups.get(session, 12345)
        with pytest.raises(NotFound, match="group 'nope' not found"):
            groups.members(session, "nope")
        with pytest.raises(NotFound):
            groups.delete(session, ACTOR, "nope")
