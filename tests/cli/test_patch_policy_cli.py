"""`patchwarden repos|patches|approvals|rules|exceptions|compliance|baselines`
through the real command tree, on a fresh data directory and a real apt
repository served on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from patchwarden.cli import context, output
from patchwarden.cli.exceptions import parse_expiry
from patchwarden.cli.main import app
from patchwarden.errors import InvalidInput
from patchwarden.services import groups, users
from patchwarden.storage.db import transaction
from patchwarden.storage.tables import AuditEvent, Finding, RepositoryPackage
from tests.api.conftest import PASSWORD
from tests.api.test_patch_policy_api import closed_port_url
from tests.repos.repo_server import RepoServer
from tests.services.test_patch_policy import bullseye_assets, bullseye_mirror

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("data_dir")


@pytest.fixture(autouse=True)
def wide_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as a wide terminal shows them (at 80 columns Rich shortens cells)."""
    monkeypatch.setattr(output.console, "width", 250)


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def ok(*args: str) -> str:
    code, out, err = invoke(*args)
    assert code == 0, (args, out, err)
    return out


def as_json(*args: str) -> Any:
    return json.loads(ok(*args, "--format", "json"))


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[RepoServer]:
    with bullseye_mirror(tmp_path / "www") as server:
        yield server


@pytest.fixture
def fleet(tmp_path: Path) -> dict[str, int]:
    """Advisories, two bullseye assets, a group and users: no repositories yet."""
    factory = context.session_factory()
    web, db = bullseye_assets(factory, tmp_path)
    with transaction(factory) as session:
        group = groups.create_static(session, "test", "web", [web])
        groups.create_static(session, "test", "servers", [web, db])
        for name, role in (("alice", "approver"), ("bob", "approver"), ("olivia", "operator")):
            users.create_user(session, "test", name, PASSWORD, role)
    return {"web": web, "db": db, "group": group.id}


def add_debian(url: str) -> None:
    for suite in ("bullseye", "bullseye-security"):
        out = ok(
            "repos", "add", suite, "--type", "apt", "--url", url, "--suite", suite,
            "--component", "main", "--arch", "amd64", "--platform", "debian",
            "--interval", "3600",
        )  # fmt: skip
        assert out.startswith(f"added repository {suite} (id ")


@pytest.fixture
def synced(fleet: dict[str, int], mirror: RepoServer) -> dict[str, int]:
    add_debian(mirror.url())
    out = ok("repos", "sync")
    assert out.splitlines() == [
        "bullseye: updated (3 packages, 0 notices)",
        "bullseye-security: updated (2 packages, 0 notices)",
    ]
    return fleet


def patch_ids(asset_id: int) -> dict[str, int]:
    return {r["package"]: r["id"] for r in as_json("patches", "list", "--asset", str(asset_id))}


def test_repos_add_list_remove(fleet: dict[str, int], mirror: RepoServer) -> None:
    add_debian(mirror.url())
    ok("repos", "add", "alma", "--type", "rpm", "--url", mirror.url("alma/9"), "--group", "web")
    ok("repos", "add", "alpine", "--type", "apk", "--url", mirror.url("alpine/v3.20/main"))
    listed = as_json("repos", "list")
    assert [(r["name"], r["kind"], r["group"]) for r in listed] == [
        ("alma", "rpm", "web"),
        ("alpine", "apk", None),
        ("bullseye", "apt", None),
        ("bullseye-security", "apt", None),
    ]
    bullseye = listed[2]
    assert (bullseye["suite"], bullseye["components"], bullseye["platform"]) == (
        "bullseye",
        ["main"],
        "debian",
    )
    assert bullseye["sync_interval_seconds"] == 3600
    assert "bullseye-security" in ok("repos", "list")

    for args, message in (
        (("--type", "yum", "--url", mirror.url()), "unknown repository type 'yum'"),
        (("--type", "apt", "--url", mirror.url()), "needs --suite"),
        (("--type", "rpm", "--url", mirror.url(), "--suite", "x"), "apply to apt"),
        (("--type", "apk", "--url", "ftp://example.org/"), "http://"),
    ):
        code, _, err = invoke("repos", "add", "bad", *args)
        assert (code, message in err) == (2, True), (args, err)
    code, _, err = invoke("repos", "add", "alma", "--type", "rpm", "--url", mirror.url())
    assert (code, "exists" in err) == (2, True)

    assert ok("repos", "remove", "alpine") == "removed repository alpine\n"
    code, _, err = invoke("repos", "remove", "alpine")
    assert (code, "not found" in err) == (2, True)
    assert [r["name"] for r in as_json("repos", "list")] == [
        "alma",
        "bullseye",
        "bullseye-security",
    ]


def test_sync_failure_exits_1_and_keeps_the_last_good_data(
    fleet: dict[str, int], tmp_path: Path
) -> None:
    with bullseye_mirror(tmp_path / "www") as server:
        ok(
            "repos",
            "add",
            "bullseye",
            "--type",
            "apt",
            "--url",
            server.url(),
            "--suite",
            "bullseye",
        )
        assert ok("repos", "sync", "bullseye") == "bullseye: updated (3 packages, 0 notices)\n"
    # The server is gone: its port is closed now.
    code, out, err = invoke("repos", "sync", "bullseye", "--force")
    assert (code, out) == (1, "")
    assert err.startswith("bullseye: failed: ")
    assert "127.0.0.1" in err
    [repo] = as_json("repos", "list")
    assert repo["package_count"] == 3
    assert repo["last_error"] == err.removeprefix("bullseye: failed: ").strip()
    assert repo["last_success_at"] is not None
    with transaction(context.session_factory()) as session:
        kept = session.execute(select(RepositoryPackage.name)).scalars().all()
    assert sorted(kept) == ["bash", "libssl1.1", "tzdata"]

    # One failure among several still exits 1; an unknown name exits 2.
    ok("repos", "add", "down", "--type", "apk", "--url", closed_port_url())
    code, _, err = invoke("repos", "sync")
    assert code == 1
    assert "down: failed: " in err
    code, _, err = invoke("repos", "sync", "nope")
    assert (code, "repository nope not found" in err) == (2, True)


def test_patches_list_show_dossier_recompute(synced: dict[str, int]) -> None:
    # `--asset` brings the asset's findings and patches up to date first.
    rows = as_json("patches", "list", "--asset", str(synced["web"]))
    assert isinstance(rows, list)
    by_package = {r["package"]: r for r in rows}
    assert {
        k: (v["installed_version"], v["target_version"], v["classification"])
        for k, v in by_package.items()
    } == {
        "libssl1.1": ("1.1.1n-0+deb11u1", "1.1.1n-0+deb11u4", "security"),
        "policykit-1": ("0.105-31", "0.105-31+deb11u1", "security"),
        "bash": ("5.1-2+deb11u1", "5.1-2+deb11u2", "bugfix"),
        "tzdata": ("2021a-1+deb11u8", "2024a-0+deb11u1", "bugfix"),
    }
    for row in rows:
        assert isinstance(row["id"], int)
        assert row["asset_id"] == synced["web"]
        assert row["hostname"] == "web-1"
    assert by_package["policykit-1"]["closes"] == ["CVE-2021-4034"]
    assert as_json("patches", "list", "--asset", str(synced["db"])) == []
    assert [
        r["package"]
        for r in as_json("patches", "list", "--group", "web", "--classification", "security")
    ] == sorted(["libssl1.1", "policykit-1"], key=lambda p: -by_package[p]["risk_score"])
    assert [r["package"] for r in as_json("patches", "list", "--package", "bash")] == ["bash"]
    assert as_json("patches", "list", "--status", "applied") == []
    assert "libssl1.1" in ok("patches", "list", "--asset", str(synced["web"]))
    for args, message in (
        (("--classification", "urgent"), "unknown classification"),
        (("--status", "gone"), "--status must be one of"),
        (("--asset", "999999"), "asset 999999 not found"),
        (("--group", "nope"), "group 'nope' not found"),
    ):
        code, _, err = invoke("patches", "list", *args)
        assert (code, message in err) == (2, True), (args, err)

    ssl = by_package["libssl1.1"]["id"]
    shown = as_json("patches", "show", str(ssl))
    assert (shown["package"], shown["target_version"]) == ("libssl1.1", "1.1.1n-0+deb11u4")
    assert [a["hostname"] for a in shown["assets"]] == ["web-1"]
    assert "web-1" in ok("patches", "show", str(ssl))
    dossier = as_json("patches", "dossier", str(ssl))
    assert {v["id"] for v in dossier["vulnerabilities"]} == set(by_package["libssl1.1"]["closes"])
    assert dossier["approval"]["state"] is None
    text = ok("patches", "dossier", str(ssl))
    assert "CVE-2022-2068" in text
    assert "approval: not requested" in text
    code, _, err = invoke("patches", "show", "999999")
    assert (code, "patch 999999 not found" in err) == (2, True)

    # The upkeep round without repository syncs: the db asset is recomputed too.
    done = json.loads(ok("patches", "recompute", "--all"))
    assert done["patches"] == 2
    assert done["findings"] == 0


def test_approvals_with_four_eyes_and_users(synced: dict[str, int]) -> None:
    ids = patch_ids(synced["web"])
    ssl, bash = str(ids["libssl1.1"]), str(ids["bash"])

    # The CLI acts as the OS user, an approver: it cannot approve its own request.
    assert ok("approvals", "request", ssl, "--comment", "CVE-2022-2068") == (
        f"patch {ssl} (libssl1.1 1.1.1n-0+deb11u4): pending\n"
    )
    code, _, err = invoke("approvals", "approve", ssl)
    assert (code, "four-eyes approval is on" in err) == (2, True)
    # An operator may not approve; an approver who did not request may.
    code, _, err = invoke("approvals", "approve", ssl, "--as", "olivia")
    assert (code, "only an approver may approve" in err) == (2, True)
    code, _, err = invoke("approvals", "approve", ssl, "--as", "nobody")
    assert (code, "user 'nobody' not found" in err) == (2, True)
    ok("approvals", "approve", ssl, "--as", "alice", "--comment", "lab tested")
    [approved] = as_json("approvals", "list", "--state", "approved")
    assert (approved["patch_id"], approved["requested_by"], approved["decided_by"]) == (
        int(ssl),
        context.cli_actor(),
        "user:alice",
    )
    assert approved["comment"] == "lab tested"

    # Decline needs a reason; then lift and approve again, by other people.
    code, _, err = invoke("approvals", "decline", bash, "--as", "bob")
    assert (code, "needs a comment" in err) == (2, True)
    assert ok("approvals", "decline", bash, "--as", "bob", "--comment", "breaks login").endswith(
        ": declined\n"
    )
    code, _, err = invoke("approvals", "lift", bash, "--as", "olivia", "--comment", "x")
    assert code == 2
    ok("approvals", "lift", bash, "--as", "alice", "--comment", "scripts fixed")
    code, _, err = invoke("approvals", "approve", bash, "--as", "alice")
    assert (code, "you requested this patch" in err) == (2, True)

    assert ok("approvals", "four-eyes") == "four-eyes approval is on\n"
    assert ok("approvals", "four-eyes", "off") == "four-eyes approval is off\n"
    ok("approvals", "approve", bash, "--as", "alice")
    assert ok("approvals", "four-eyes", "on") == "four-eyes approval is on\n"
    code, _, err = invoke("approvals", "four-eyes", "maybe")
    assert (code, "on or off" in err) == (2, True)
    states = {a["package"]: a["state"] for a in as_json("approvals", "list")}
    assert states == {"libssl1.1": "approved", "bash": "approved"}
    assert "libssl1.1" in ok("approvals", "list")

    with transaction(context.session_factory()) as session:
        actors = session.execute(
            select(AuditEvent.actor, AuditEvent.action).where(
                AuditEvent.target_type == "patch", AuditEvent.target_id == bash
            )
        ).all()
    assert [tuple(a) for a in actors] == [
        ("user:bob", "approval.decline"),
        ("user:alice", "approval.lift"),
        ("user:alice", "approval.approve"),
    ]


def test_rules(synced: dict[str, int]) -> None:
    ids = patch_ids(synced["web"])
    out = ok(
        "rules", "add", "--group", "web", "--name", "security-fast",
        "--classification", "security",
        "--include", "lib*", "--include", "policykit-?", "--exclude", "libc6",
        "--days-after-release", "0", "--timezone", "Europe/Berlin",
    )  # fmt: skip
    assert out.startswith("added rule ") and out.endswith("'security-fast' to group web\n")
    ok("rules", "add", "--group", "web", "--name", "kev", "--kev-only", "--min-severity", "high",
       "--min-cvss", "7.5")  # fmt: skip
    [first, second] = as_json("rules", "list", "--group", "web")
    assert (first["name"], first["position"], first["classifications"]) == (
        "security-fast",
        1,
        ["security"],
    )
    assert (first["include"], first["exclude"], first["timezone"]) == (
        ["lib*", "policykit-?"],
        ["libc6"],
        "Europe/Berlin",
    )
    assert (second["name"], second["kev_only"], second["include"]) == ("kev", True, [])
    assert (second["min_severity"], second["min_cvss"]) == ("high", 7.5)
    dossier = as_json("patches", "dossier", str(ids["libssl1.1"]))
    assert [d["rule"] for d in dossier["approval"]["rule_decisions"]] == ["security-fast"]

    for args, message in (
        (("--name", "bad", "--include", "^lib.*$"), "invalid package pattern"),
        (("--name", "bad", "--classification", "urgent"), "unknown classification"),
        (("--name", "bad", "--timezone", "Mars/Olympus"), "unknown time zone"),
        (("--name", "kev"), "already has a rule named"),
    ):
        code, _, err = invoke("rules", "add", "--group", "web", *args)
        assert (code, message in err) == (2, True), (args, err)
    code, _, err = invoke("rules", "add", "--group", "nope", "--name", "x")
    assert (code, "not found" in err) == (2, True)
    assert len(as_json("rules", "list")) == 2

    assert ok("rules", "remove", str(first["id"])) == f"removed rule {first['id']}\n"
    assert [r["name"] for r in as_json("rules", "list")] == ["kev"]
    assert as_json("patches", "dossier", str(ids["libssl1.1"]))["approval"]["rule_decisions"] == []
    code, _, err = invoke("rules", "remove", str(first["id"]))
    assert (code, "not found" in err) == (2, True)


def test_exceptions_and_compliance(synced: dict[str, int]) -> None:
    policykit = str(patch_ids(synced["web"])["policykit-1"])
    before = as_json("compliance")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    justification = "pkexec is removed by our hardening role"

    for args, message in (
        (("--justification", justification, "--expires", tomorrow), "exactly one of"),
        (
            ("--patch", policykit, "--asset", "1", "--justification", justification,
             "--expires", tomorrow),
            "exactly one of",
        ),
        (("--patch", policykit, "--justification", " ", "--expires", tomorrow), "justification"),
        (("--patch", policykit, "--justification", justification, "--expires", "2020-01-01"),
         "not in the future"),
        (("--patch", policykit, "--justification", justification, "--expires", "soon"),
         "not an ISO 8601 date"),
        (("--patch", policykit, "--justification", justification, "--expires",
          "2030-01-01T10:00"), "no UTC offset"),
        (("--patch", policykit, "--justification", justification, "--expires", tomorrow,
          "--as", "olivia"), "may not accept"),
        (("--finding", "999999", "--justification", justification, "--expires", tomorrow),
         "finding 999999 not found"),
    ):  # fmt: skip
        code, _, err = invoke("exceptions", "add", *args)
        assert (code, message in err) == (2, True), (args, err)
    assert as_json("exceptions", "list") == []
    assert as_json("compliance") == before

    out = ok(
        "exceptions", "add", "--patch", policykit, "--justification", justification,
        "--expires", tomorrow, "--as", "alice",
    )  # fmt: skip
    assert out.endswith(f"accepted until {tomorrow}T23:59:59+00:00\n")
    [created] = as_json("exceptions", "list", "--state", "active")
    assert (created["scope"], created["target_id"], created["approved_by"]) == (
        "patch",
        int(policykit),
        "user:alice",
    )
    with transaction(context.session_factory()) as session:
        status = session.execute(
            select(Finding.status).where(Finding.vulnerability_id == "CVE-2021-4034")
        ).scalar_one()
    assert status == "excepted"
    after = as_json("compliance")
    assert after["excepted_findings"] == before["excepted_findings"] + 1
    assert after["open_findings"] == before["open_findings"] - 1
    assert "excepted findings: 1" in ok("compliance")
    assert "pkexec" in ok("exceptions", "list")

    ok("exceptions", "add", "--asset", str(synced["db"]), "--justification", justification,
       "--expires", f"{tomorrow}T12:00:00Z")  # fmt: skip
    assert ok("exceptions", "revoke", str(created["id"]), "--reason", "rolled back") == (
        f"exception {created['id']} revoked\n"
    )
    code, _, err = invoke("exceptions", "revoke", str(created["id"]))
    assert (code, "already revoked" in err) == (2, True)
    assert [e["id"] for e in as_json("exceptions", "list", "--state", "revoked")] == [created["id"]]
    code, _, err = invoke("exceptions", "list", "--state", "gone")
    assert code == 2


def test_parse_expiry() -> None:
    assert parse_expiry("2026-03-31") == datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC)
    moment = parse_expiry("2026-03-31T18:00:00+02:00")
    assert moment == datetime(2026, 3, 31, 16, 0, tzinfo=UTC)
    assert parse_expiry("2026-03-31T18:00Z") == datetime(2026, 3, 31, 18, 0, tzinfo=UTC)
    for bad in ("31.03.2026", "2026-03-31T18:00", "", str(date.today()) + "x"):
        with pytest.raises(InvalidInput):
            parse_expiry(bad)


def test_baselines(fleet: dict[str, int]) -> None:
    out = ok("baselines", "set", "--group", "servers", "--package", "libssl1.1",
             "--version", "1.1.1n-0+deb11u4")  # fmt: skip
    assert out.endswith("servers libssl1.1 minimum 1.1.1n-0+deb11u4\n")
    ok("baselines", "set", "--group", "servers", "--package", "bash", "--version",
       "5.1-2+deb11u2", "--mode", "desired", "--os-release", "debian:11")  # fmt: skip
    for args, message in (
        (("--package", "bash", "--version", "1", "--mode", "exact"), "not one of"),
        (("--package", "bash", "--version", "1", "--os-release", "plan9:4"), "unknown platform"),
        (
            ("--package", "bash", "--version", "1", "--os-release", "debian:" + "1" * 80),
            "at most 64 characters",
        ),
    ):
        code, _, err = invoke("baselines", "set", "--group", "servers", *args)
        assert (code, message in err) == (2, True), (args, err)
    entries = as_json("baselines", "list", "--group", "servers")
    assert [(e["package"], e["mode"], e["os_release"]) for e in entries] == [
        ("bash", "desired", "debian:11"),
        ("libssl1.1", "minimum", None),
    ]
    drift = as_json("baselines", "drift", "--group", "servers")
    assert {(d["hostname"], d["package"]): d["status"] for d in drift} == {
        ("web-1", "bash"): "differs",
        ("web-1", "libssl1.1"): "below_minimum",
    }
    assert len(as_json("baselines", "drift", "--group", "servers", "--all")) == 4
    assert "below_minimum" in ok("baselines", "drift", "--group", "servers")
    code, _, err = invoke("baselines", "drift", "--group", "web")
    assert (code, "has no baseline entries" in err) == (2, True)

    sprawl = as_json("baselines", "sprawl", "--group", "servers", "--limit", "2")
    assert [(s["package"], s["versions"], s["assets"]) for s in sprawl] == [
        ("bash", 2, 2),
        ("libssl1.1", 2, 2),
    ]
    [bash] = as_json("baselines", "sprawl", "--package", "bash")
    assert sorted(v["version"] for v in bash["by_version"]) == ["5.1-2+deb11u1", "5.1-2+deb11u2"]
    assert "5.1-2+deb11u1 (1)" in ok("baselines", "sprawl", "--package", "bash")

    assert ok("baselines", "remove", str(entries[0]["id"])) == (
        f"removed baseline {entries[0]['id']}\n"
    )
    assert [e["package"] for e in as_json("baselines", "list")] == ["libssl1.1"]
    code, _, err = invoke("baselines", "remove", str(entries[0]["id"]))
    assert (code, "not found" in err) == (2, True)
