"""`patchwarden groups ...` through its Typer sub-app, on a fresh data directory."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from patchwarden.cli import context
from patchwarden.cli.groups import app
from patchwarden.storage.db import transaction
from patchwarden.storage.tables import Asset, AuditEvent

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("data_dir")


@pytest.fixture
def assets() -> list[int]:
    with transaction(context.session_factory()) as session:
        rows = [
            Asset(hostname="web-01", source="agent", tags=["pci", "web"], criticality=2),
            Asset(hostname="web-02", source="agent", tags=["web"]),
            Asset(hostname="db-01", source="cmdb", tags=["pci"], criticality=1),
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_create_list_show_add_remove_delete(assets: list[int]) -> None:
    web1, web2, db1 = assets
    code, out, err = invoke("create", "web", "--assets", f"{web1}, {web2}", "--description", "Web")
    assert (code, err) == (0, "")
    static_id = int(out.strip())
    code, out, _ = invoke("create", "pci", "--query", "tag = pci and criticality <= 2")
    assert code == 0
    dynamic_id = int(out.strip())

    code, out, _ = invoke("list", "--format", "json")
    assert code == 0
    listed = json.loads(out)
    assert [(g["id"], g["name"], g["kind"], g["member_count"]) for g in listed] == [
        (dynamic_id, "pci", "dynamic", 2),
        (static_id, "web", "static", 2),
    ]
    assert listed[0]["query"] == "tag = pci and criticality <= 2"

    code, out, _ = invoke("list")
    assert code == 0
    assert "pci" in out
    assert "dynamic" in out
    assert "web" in out

    code, out, _ = invoke("show", "PCI", "--format", "json")
    assert code == 0
    shown = json.loads(out)
    assert shown["members"] == [
        {"id": web1, "hostname": "web-01"},
        {"id": db1, "hostname": "db-01"},
    ]
    assert shown["member_count"] == 2

    code, out, _ = invoke("show", str(static_id))
    assert code == 0
    assert "web (id" in out
    assert "web-02" in out
    assert "2 members" in out

    assert invoke("add", "web", "--assets", str(db1))[:2] == (0, "group 'web' now has 3 members\n")
    code, out, _ = invoke("remove", str(static_id), "--assets", f"{web1},{web2}")
    assert (code, out) == (0, "group 'web' now has 1 member\n")
    code, out, _ = invoke("show", "web", "--format", "json")
    assert [m["id"] for m in json.loads(out)["members"]] == [db1]

    assert invoke("delete", "web")[:2] == (0, "deleted group 'web'\n")
    code, out, _ = invoke("list", "--format", "json")
    assert [g["name"] for g in json.loads(out)] == ["pci"]

    with context.session_factory()() as session:
        events = session.query(AuditEvent.action, AuditEvent.actor).order_by(AuditEvent.id).all()
    assert [action for action, _ in events] == [
        "group.create",
        "group.create",
        "group.add_members",
        "group.remove_members",
        "group.delete",
    ]
    assert all(actor.startswith("cli:") for _, actor in events)


def test_empty_static_group() -> None:
    code, out, _ = invoke("create", "later", "--assets", "")
    assert code == 0
    code, out, _ = invoke("show", "later", "--format", "json")
    assert json.loads(out)["members"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create", "x"), "give exactly one of --assets (static group) or --query (dynamic)"),
        (("create", "x", "--assets", "1", "--query", "tag = a"), "give exactly one of"),
        (("create", "x", "--assets", "1,two"), "--assets takes asset ids separated by commas"),
        (("create", "x", "--assets", "999"), "unknown asset id: 999; nothing was changed"),
        (("create", "x", "--query", "tag =="), "invalid query at position 5: unknown operator"),
        (("create", "bad/name", "--query", "tag = a"), "must be 1-100 characters"),
        (("show", "nope"), "group 'nope' not found"),
        (("add", "nope", "--assets", "1"), "group 'nope' not found"),
        (("delete", "42"), "group '42' not found"),
    ],
)
def test_errors_exit_2_with_a_message(args: tuple[str, ...], message: str) -> None:
    code, out, err = invoke(*args)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ")
    assert message in " ".join(err.split())


def test_conflicts_exit_2(assets: list[int]) -> None:
    assert invoke("create", "pci", "--query", "tag = pci")[0] == 0
    code, _, err = invoke("create", "PCI", "--assets", str(assets[0]))
    assert code == 2
    assert "a group named 'pci' already exists" in err
    code, _, err = invoke("add", "pci", "--assets", str(assets[0]))
    assert code == 2
    assert "cannot add assets to dynamic group 'pci'" in " ".join(err.split())


def test_missing_arguments_are_usage_errors() -> None:
    result = runner.invoke(app, ["add", "web"])
    assert result.exit_code == 2
    assert "--assets" in result.stderr
